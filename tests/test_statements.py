"""Splitting the idempotent SQL files into statements (applied one by one for Citus)."""

from __future__ import annotations

import pytest

from mmsearch.db.schema import sql_files
from mmsearch.db.statements import split_statements


def test_semicolons_inside_quotes_bodies_and_comments_do_not_split() -> None:
    script = """
    -- a comment; with a semicolon
    CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT 'a;b' $$;
    /* block; comment */ SELECT 'it''s; fine', "odd;name" FROM t;
    DO $body$ BEGIN PERFORM 1; PERFORM $$x;y$$; END $body$;
    SELECT $1::int
    """
    assert [s.split("\n")[-1].strip()[:20] for s in split_statements(script)] == [
        "CREATE FUNCTION f() ",
        "/* block; comment */",
        "DO $body$ BEGIN PERF",
        "SELECT $1::int",
    ]


def test_empty_statements_and_trailing_comments_are_dropped() -> None:
    assert split_statements(";;\n-- only a comment\n") == []
    assert split_statements("SELECT 1;\n-- end\n") == ["SELECT 1"]


def test_an_unterminated_dollar_quote_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"\$fn\$"):
        split_statements("CREATE FUNCTION f() AS $fn$ SELECT 1;")


def test_the_shipped_files_split_into_whole_statements() -> None:
    """Every statement of every file starts with a keyword (after its comments)."""
    for name, body in sql_files():
        statements = split_statements(body)
        assert statements, name
        for statement in statements:
            code = "\n".join(
                line for line in statement.splitlines() if not line.lstrip().startswith("--")
            ).strip()
            first = code.split()[0].upper()
            assert first in {"CREATE", "DROP", "ALTER", "COMMENT", "GRANT", "REVOKE", "DO"}, (
                name,
                code[:60],
            )
