"""Django's PostgreSQL backend, with the connection health check (`CONN_HEALTH_CHECKS`) made
once per idle spell instead of once per request: Django pings a persistent connection with
`SELECT 1` at the start of every request that uses it, a round trip that a busy worker pays
hundreds of times a second for a connection it used a moment ago. Here a connection used in
the last `IDLE_SECONDS` is trusted; one idle for longer (when a database restart or a
dropped connection is likely) is pinged, and replaced if the ping fails, as before. A
connection that breaks mid-request is closed at the end of it by Django as always."""

import time

from django.db.backends.postgresql import base

IDLE_SECONDS = 5.0


class DatabaseWrapper(base.DatabaseWrapper):
    _checked_at = 0.0  # when this connection was last known to work

    def close_if_health_check_failed(self) -> None:
        if (
            self.connection is not None
            and not self.health_check_done
            and time.monotonic() - self._checked_at < IDLE_SECONDS
        ):
            self.health_check_done = True  # used a moment ago: no ping
        super().close_if_health_check_failed()
        self._checked_at = time.monotonic()
