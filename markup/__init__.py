"""User-written text rendered to safe HTML. A library package (no models), importable from
every layer."""
