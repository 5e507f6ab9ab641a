"""Verified user uploads. A library package (no models), importable from every layer."""
