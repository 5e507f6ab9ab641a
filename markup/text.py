"""Plain text that people read as one line (names, titles, subjects): no control characters,
no bidirectional overrides (U+202E reverses what follows it, so a title can pass for another),
no line breaks (a newline in a mail subject is a header injection), and no leading or
trailing blanks."""

import unicodedata

# Bidirectional embeddings, overrides and isolates, and the invisible marks beside them.
_BIDI = {
    "\u200e",
    "\u200f",
    "\u061c",  # LRM, RLM, ALM
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",  # LRE RLE PDF LRO RLO
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",  # LRI RLI FSI PDI
}


def text_clean_line(value: str) -> str:
    """One line of visible text: controls and bidi overrides dropped, line breaks and tabs
    turned into spaces, runs of spaces collapsed."""
    kept = []
    for char in value:
        if char in "\r\n\t\u2028\u2029\x0b\x0c\x85":
            kept.append(" ")
        elif char in _BIDI or unicodedata.category(char) in ("Cc", "Cf") and char != "\u200d":
            continue
        else:
            kept.append(char)
    return " ".join("".join(kept).split())
