"""Cursors that bind on the server, for the two kinds of statement Django's client-side
binding serves badly:

- `array_cursor`: statements that carry thousands of rows as column arrays (a settlement
  chunk's unnest(...) statements), sending the parameters apart from the statement in binary.
- `prepared_cursor`: a small read that a hot page runs on every request, prepared once per
  connection.

Django's psycopg cursors bind on the client: every element of every array is quoted into
the statement's text in Python (a regular expression per string), about 8 ms per array of
2,500 and some forty arrays per chunk, on the same two cores as Postgres. Sent in binary,
each element is packed by psycopg's C dumpers instead, two to three times faster, and the
server parses no literals. Statements are not prepared (psycopg would after five runs): a
generic plan for `= ANY($1)` guesses the array's size, and these statements are planned
for thousands of rows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connection
from django.db.backends.utils import CursorWrapper

# %s and %(name)s, not %%s: the same placeholders as Django's, each sent in binary.
_PLACEHOLDER = re.compile(r"(?<!%)%(\(\w+\))?s")


def binary_placeholders(sql: str) -> str:
    return _PLACEHOLDER.sub(lambda match: f"%{match.group(1) or ''}b", sql)


class _BinaryCursor(psycopg.Cursor):
    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(binary_placeholders(query), params, prepare=False, binary=binary)


@contextmanager
def array_cursor() -> Iterator[CursorWrapper]:
    """Like `connection.cursor()` (the same connection and transaction, the same execute
    wrappers and query log), with server-side binary binding."""
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    cursor = connection._prepare_cursor(_BinaryCursor(connection.connection))
    with cursor:
        yield cursor


class _PreparedCursor(psycopg.Cursor):
    def execute(self, query, params=None, *, prepare=None, binary=None):
        # Django's placeholders as they are (each value's format is psycopg's choice): the
        # query log composes the statement from them as from its own cursors'.
        return super().execute(query, params, prepare=True, binary=binary)


@contextmanager
def prepared_cursor() -> Iterator[CursorWrapper]:
    """Like `connection.cursor()`, with each statement prepared on the connection the first
    time it runs. Django binds on the client, so Postgres plans every statement anew: for the
    batch page's one per-fan query (a UNION of two joins) planning took 0.42 ms of its
    0.6 ms. Prepared, its generic plan is reused for as long as the connection lives
    (CONN_MAX_AGE); psycopg re-prepares after a schema change. Only for statements whose best
    plan does not depend on the values (point lookups by key)."""
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    cursor = connection._prepare_cursor(_PreparedCursor(connection.connection))
    with cursor:
        yield cursor
