"""Text from files and the database, made safe to print on a terminal.

File names, titles and snippets come from whoever wrote the files. Printed raw, an escape
sequence in one can rewrite the screen, hide a line, set the window title or forge output
(a newline); bidirectional overrides can reorder what a reader sees. Human output passes
them through `printable`, which shows each as a visible escape; `--json` output is already
escaped by the JSON encoder.
"""

from __future__ import annotations

import unicodedata

#: Unicode's bidirectional embedding, override and isolate controls (not category Cc)
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(text: str) -> str:
    """`text` with every control character (C0, DEL, C1, bidi) written as `\\xNN`/`\\uNNNN`."""
    return "".join(_escaped(ch) for ch in text)


def _escaped(ch: str) -> str:
    if ch in _BIDI or unicodedata.category(ch) == "Cc":
        code = ord(ch)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return ch
