"""Split a SQL script into its statements, the way psql does, without parsing SQL.

The idempotent SQL files are applied one statement at a time: Citus forwards some DDL on
distributed tables (ALTER TABLE … ROW LEVEL SECURITY, DROP POLICY, triggers) to the workers
as the client's whole query string, which a worker refuses when it holds several
statements ("cannot insert multiple commands into a prepared statement").

Semicolons end a statement unless they sit in a quoted string or identifier, a
dollar-quoted body ($$ … $$, $tag$ … $tag$) or a comment.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(
    r"""
      (?P<dollar>\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$)   # opening of a dollar-quoted string
    | (?P<quote>'(?:[^']|'')*')                      # 'string' ('' inside)
    | (?P<ident>"(?:[^"]|"")*")                      # "identifier"
    | (?P<line>--[^\n]*)                             # -- comment
    | (?P<block>/\*.*?\*/)                           # /* comment */
    | (?P<end>;)
    """,
    re.VERBOSE | re.DOTALL,
)


def split_statements(script: str) -> list[str]:
    """The statements of `script`, each without its final semicolon; empty ones dropped."""
    statements: list[str] = []
    start = position = 0
    while (match := _TOKEN.search(script, position)) is not None:
        position = match.end()
        if match.lastgroup == "dollar":
            closing = script.find(match.group(), position)
            if closing < 0:
                raise ValueError(f"unterminated dollar-quoted string {match.group()}")
            position = closing + len(match.group())
        elif match.lastgroup == "end":
            statements.append(script[start : match.start()])
            start = position
    statements.append(script[start:])
    return [s.strip() for s in statements if _has_code(s)]


def _has_code(statement: str) -> bool:
    """Whether anything but whitespace and comments is left."""
    without_comments = re.sub(r"--[^\n]*|/\*.*?\*/", "", statement, flags=re.DOTALL)
    return bool(without_comments.strip())
