"""Typo tolerance for every search box (products, communities, posts), as Meilisearch and
Algolia do it: a query word of 5 to 8 letters may carry one typo, of 9 or more two, and two
neighbouring letters swapped count as one ("fogre" finds Forge, "haedphones" Headphones).

The words that can be corrected to are kept in `SearchWord`, one row per distinct word of the
catalogue and of the communities, each with its deletion neighbourhood (the strings left
after deleting up to two letters, as SymSpell does): a query word's corrections are the words
whose neighbourhood meets its own, found through a GIN index in one query for the whole
search, then checked with the optimal-string-alignment distance. A word that is in the
dictionary is taken as typed; only the others are corrected.

Words are added by the services that write searchable text (products, communities, posts);
none is ever removed, since a word nothing contains any more only finds nothing."""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.db import connection

MIN_WORD, MAX_WORD = 3, 32  # shorter words are never corrected, longer ones not stored
# Letters only (no digits, no underscore): "x2" and "128gb" are matched as typed.
_WORD = re.compile(r"[^\W\d_]+")


def words_of(text: str) -> list[str]:
    """The lowercase words of `text`, in order (duplicates kept)."""
    return _WORD.findall(text.lower())


def typo_budget(word: str) -> int:
    """How many typos a query word may carry: none under 5 letters, one up to 8, then two."""
    if len(word) >= 9:
        return 2
    return 1 if len(word) >= 5 else 0


def _depth(word: str) -> int:
    """How deep a stored word's neighbourhood goes: a query word within two typos of it has
    9+ letters, so it is at least 7 letters long itself."""
    return 2 if len(word) >= 7 else 1


def deletes(word: str, depth: int) -> set[str]:
    """`word` and every string left after deleting up to `depth` of its letters."""
    found, frontier = {word}, {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier if len(w) > 1 for i in range(len(w))}
        found |= frontier
    return found


def distance(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions, and swaps of
    two neighbouring letters, each counting one."""
    if a == b:
        return 0
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


def search_words_add(*, texts: Iterable[str]) -> None:
    """Put the words of `texts` in the dictionary (those already there are left alone; safe
    to run twice at once)."""
    words = {w for text in texts for w in words_of(text) if MIN_WORD <= len(w) <= MAX_WORD}
    if not words:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT word FROM catalog_searchword WHERE word = ANY(%s)", [list(words)])
        missing = sorted(words - {row[0] for row in cursor.fetchall()})
        if not missing:
            return
        cursor.executemany(
            "INSERT INTO catalog_searchword (word, deletes) VALUES (%s, %s) "
            "ON CONFLICT (word) DO NOTHING",
            [(word, sorted(deletes(word, _depth(word)))) for word in missing],
        )


def search_words_from_sql(*, sql: str, params: list | None = None) -> None:
    """Add the words of every text a query returns (one text column), read in the database
    as distinct words: for whole tables (a migration, the benchmark's catalogue)."""
    with connection.cursor() as cursor:
        cursor.execute(
            # Split at spaces here, into letters by words_of(): one rule for both.
            "SELECT DISTINCT word FROM (SELECT regexp_split_to_table(lower(t.text), "  # noqa: S608
            f"'\\s+') AS word FROM ({sql}) AS t(text)) AS words WHERE length(word) >= %s",
            [*(params or []), MIN_WORD],
        )
        words = [row[0] for row in cursor.fetchall()]
    for start in range(0, len(words), 2000):
        search_words_add(texts=words[start : start + 2000])


def corrections(words: list[str]) -> list[list[str]]:
    """For each query word, the words to search for: itself when the dictionary has it (or it
    is too short to correct), else the dictionary words within its typo budget, nearest
    first, and itself. One query for the whole search; none when no word can carry a typo."""
    cleaned = [" ".join(words_of(word)) or word for word in words]
    fallible = {w for w in cleaned if typo_budget(w) and _WORD.fullmatch(w)}
    if not fallible:
        return [[word] for word in words]
    neighbourhood = set().union(*(deletes(w, typo_budget(w)) for w in fallible))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT word FROM catalog_searchword WHERE word = ANY(%s) OR deletes && %s::varchar[]",
            [list(fallible), sorted(neighbourhood)],
        )
        known = [row[0] for row in cursor.fetchall()]
    known_set = set(known)
    result = []
    for word, clean in zip(words, cleaned, strict=True):
        if clean not in fallible or clean in known_set:
            result.append([word])
            continue
        near = sorted(
            (d, candidate)
            for candidate in known
            if (d := distance(clean, candidate)) <= typo_budget(clean)
        )
        result.append([candidate for _, candidate in near] + [word])
    return result
