"""Django's PostgreSQL backend, with the connection health check (`CONN_HEALTH_CHECKS`) made
once per idle spell instead of once per request: Django pings a persistent connection with
`SELECT 1` at the start of every request that uses it, a round trip that a busy worker pays
hundreds of times a second for a connection it used a moment ago. Here a connection used in
the last `IDLE_SECONDS` is trusted; one idle for longer (when a database restart or a
dropped connection is likely) is pinged, and replaced if the ping fails, as before. A
connection that breaks mid-request is closed at the end of it by Django as always.

The query log (DEBUG, tests' CaptureQueriesContext) also shows the statements of prepared
cursors, whose text psycopg does not keep."""

import time

from django.db.backends.postgresql import base, operations

IDLE_SECONDS = 5.0


class DatabaseOperations(operations.DatabaseOperations):
    def last_executed_query(self, cursor, sql, params):
        """Django reads the statement psycopg sent; a prepared one (rowsql.arrays'
        prepared_cursor) leaves none, so the query log composes it as Django's own would."""
        sent = super().last_executed_query(cursor, sql, params)
        return sent if sent is not None else self.compose_sql(sql, params)


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
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
