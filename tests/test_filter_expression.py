"""The filter expression language: the parser alone, then the SQL search against an oracle.

The property tests generate expression trees with hostile keys, values, tags and
collection names (quotes, semicolons, `$$`, SQL fragments, unicode), render them as text,
parse them, run the resulting conditions on a real database, and compare the segments found
with a plain-Python evaluation of the same tree over the rows the test inserted.
"""

from __future__ import annotations

import json
import operator
import os
import random
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

from mmsearch.client import Client
from mmsearch.db.engine import Database
from mmsearch.errors import UserError
from mmsearch.query.expression import parse
from mmsearch.query.filters import (
    And,
    ColumnCompare,
    Filters,
    HasTags,
    MetaCompare,
    MetaExists,
    Not,
    Or,
)

# -- the parser alone ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        (
            'meta.camera = "north" and tags has "kitchen"',
            And((MetaCompare("camera", "=", "north"), HasTags(("kitchen",)))),
        ),
        (
            "meta.year >= 2020 AND meta.year < 2024.5",
            And((MetaCompare("year", ">=", 2020), MetaCompare("year", "<", 2024.5))),
        ),
        ("has meta.gps", MetaExists("gps")),
        (
            "media_type in (\"audio\", 'video')",
            Or(
                (
                    ColumnCompare("media_type", "=", "audio"),
                    ColumnCompare("media_type", "=", "video"),
                )
            ),
        ),
        (
            "start_s >= 30 and end_s <= 90",
            And((ColumnCompare("start_s", ">=", 30), ColumnCompare("end_s", "<=", 90))),
        ),
        (
            'ingested_at >= "2026-01-01"',
            ColumnCompare("ingested_at", ">=", datetime(2026, 1, 1, tzinfo=UTC)),
        ),
        (
            'created_at < "2026-01-01T12:00:00+02:00"',
            ColumnCompare("created_at", "<", datetime(2026, 1, 1, 10, tzinfo=UTC)),
        ),
        ('not tags has "draft"', Not(HasTags(("draft",)))),
        ('tags has all ("a", "b")', HasTags(("a", "b"), every=True)),
        ('tags has any ("a")', HasTags(("a",))),
        (
            'meta.a = 1 or meta.b = 2 and not meta.c = "x"',
            Or(
                (
                    MetaCompare("a", "=", 1),
                    And((MetaCompare("b", "=", 2), Not(MetaCompare("c", "=", "x")))),
                )
            ),
        ),
        (
            "(meta.a = 1 or meta.b = 2) and meta.c == -1.5e3",
            And(
                (
                    Or((MetaCompare("a", "=", 1), MetaCompare("b", "=", 2))),
                    MetaCompare("c", "=", -1500.0),
                )
            ),
        ),
        (
            "meta.x not in (true, null)",
            Not(Or((MetaCompare("x", "=", True), MetaCompare("x", "=", None)))),
        ),
        (
            r'meta["it\'s; DROP TABLE x"] != "say \"hi\""',
            MetaCompare("it's; DROP TABLE x", "!=", 'say "hi"'),
        ),
        ("meta.and = false", MetaCompare("and", "=", False)),
        ("meta.café = 'ü'", MetaCompare("café", "=", "ü")),
        ('collection = "c.2"', ColumnCompare("collection", "=", "c.2")),
        ("NOT NOT has meta[''] ", Not(Not(MetaExists("")))),
    ],
)
def test_parses(text: str, tree: object) -> None:
    assert parse(text) == tree


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ("", 1, "expected a field"),
        ("meta.x >= ", 11, "expected a string, number"),
        ("meta.x = 1 and", 15, "expected a field"),
        ("meta.x = 1 meta.y = 2", 12, "expected 'and', 'or' or the end"),
        ('meta.x = "abc', 10, "unterminated string"),
        ("((meta.a = 1)", 14, "expected ')' to close the '(' at column 1"),
        ("meta x = 1", 6, "expected '.' or '['"),
        ("meta.5 = 1", 6, "expected a key name"),
        ("meta[x] = 1", 6, "expected a quoted key"),
        ("bogus = 1", 1, "expected a field (meta.KEY, tags,"),
        ("meta.x ~ 1", 8, "unexpected character '~'"),
        ("meta.x ! 1", 8, "'!' must be followed by '='"),
        ("meta.x like 1", 8, "expected =, !=, <, <=, >, >= or in"),
        ("meta.x <= true", 11, "needs a number or a string, not true"),
        ('media_type = "hologram"', 14, "unknown media_type 'hologram'"),
        ('media_type > "audio"', 14, "supports = and != only"),
        ('kind in ("chunk", "page")', 19, "unknown kind 'page'"),
        ('start_s >= "30"', 12, "start_s compares with a number"),
        ('ingested_at >= "last week"', 16, "expected an ISO 8601 date"),
        ("ingested_at >= 2026", 16, "ISO 8601 date in quotes"),
        ("has tags", 5, "expected meta.KEY after 'has', got 'tags'"),
        ("tags = 'x'", 6, "expected 'has' after 'tags'"),
        ("tags has (1)", 10, "expected a string, number"),
        ("tags has any (1)", 15, "tags are strings, got '1'"),
        ("meta.x in ()", 12, "expected a string, number"),
        ("meta.x not 1", 12, "expected 'in' after 'not'"),
        ("meta.x = 1e999", 10, "out of range"),
        ('meta.x = "a\x00b"', 10, "NUL character"),
        ("meta.x = 1\x00", 11, "unexpected character '\\x00'"),
        ("(" * 70 + "has meta.x" + ")" * 70, 65, "nested deeper than 64 levels"),
        ("not " * 70 + "has meta.x", 257, "nested deeper than 64 levels"),
    ],
)
def test_bad_input_says_where(text: str, column: int, message: str) -> None:
    with pytest.raises(UserError) as caught:
        parse(text)
    text = str(caught.value)
    assert text.startswith(f"bad filter at column {column}: "), text
    assert message in text
    assert "\n" not in text


def test_long_input_is_refused_before_parsing() -> None:
    with pytest.raises(UserError, match="longer than 10000"):
        parse("has meta.x or " * 1000 + "has meta.x")


@given(st.text(max_size=80))
@settings(max_examples=300, deadline=None)
def test_arbitrary_text_parses_or_is_a_user_error(text: str) -> None:
    try:
        json.dumps(Filters(where=parse(text)).request())
    except UserError as exc:
        assert "\n" not in str(exc)


# -- against a database ----------------------------------------------------------------

KEYS = [
    "camera",
    "year",
    "score",
    "a b",
    "it's",
    'say "hi"',
    "x'; DROP TABLE mmsearch.record; --",
    "$$",
    "ключ",
    "🙂",
    "and",
    "0",
    "",
]
STRINGS = [
    "north",
    "south",
    "",
    "O'Brien",
    'quote"d',
    "back\\slash",
    "'; SELECT pg_sleep(1); --",
    "$$ $q$ \\x00",
    "Ünïcode",
    "🙂",
    "2020",
    "1e3",
    "%(f_w0)s",
    "{}",
]
NUMBERS: list[int | float] = [2019, 2020, 2023.5, -1, 0, 10**20, 0.1, 1e-7]
STORED: list[Any] = [*STRINGS, *NUMBERS, True, False, None, ["north", "x"], {"lat": 1.5}]
TAGS = ["kitchen", "draft", "it's", "a,b", "{x}", "NULL", '"', "ünï", "; --", ""]
COLLECTIONS = ["c1", "c.2", "C-3"]
KINDS = ["chunk", "image", "window", "shot", "transcript", "ocr"]
MEDIA = ["text", "image", "audio", "video"]
MIMES = ["text/plain", "image/png", "audio/x-wav", "video/mp4; codecs='x'"]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Row:
    """One segment with its record's fields: what the oracle evaluates a tree on."""

    segment_id: int
    record_id: int
    collection: str
    media_type: str
    mime: str
    kind: str
    metadata: dict[str, Any]
    tags: list[str]
    start_s: float | None
    end_s: float | None
    duration_s: float | None
    width: int | None
    height: int | None
    ingested_at: datetime
    created_at: datetime


class Rows(list[Row]):
    """The inserted rows; a short repr keeps hypothesis' failure reports readable."""

    def __repr__(self) -> str:
        return f"<{len(self)} rows>"


@pytest.fixture(scope="module")
def rows(db: Database) -> Rows:
    """60 records (two segments each) with hostile metadata, tags and collection names."""
    rng = random.Random(5)
    out = Rows()
    with db.transaction() as conn:
        ids = {
            name: conn.execute(
                "INSERT INTO mmsearch.collection (name) VALUES (%s) RETURNING id", (name,)
            ).fetchone()[0]
            for name in COLLECTIONS
        }
        for i in range(60):
            collection = rng.choice(COLLECTIONS)
            media_type, mime = rng.choice(list(zip(MEDIA, MIMES, strict=True)))
            metadata = {k: rng.choice(STORED) for k in rng.sample(KEYS, rng.randint(0, 4))}
            tags = rng.sample(TAGS, rng.randint(0, 3))
            duration = rng.choice([None, 12.5, 90.0, 3600.0])
            width, height = rng.choice([(None, None), (640, 480), (1, 4000)])
            ingested = T0 + timedelta(days=rng.randint(-400, 400), seconds=rng.randint(0, 86399))
            created = ingested - timedelta(days=rng.randint(0, 30))
            record_id = conn.execute(
                "INSERT INTO mmsearch.record (collection_id, uri, sha256, media_type, mime, bytes,"
                " duration_s, width, height, metadata, tags, ingested_at, created_at)"
                " VALUES (%s, %s, %s, %s, %s, 1, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (
                    ids[collection],
                    f"/f/{i}",
                    f"{i:064x}",
                    media_type,
                    mime,
                    duration,
                    width,
                    height,
                    Jsonb(metadata),
                    tags,
                    ingested,
                    created,
                ),
            ).fetchone()[0]
            for ordinal in range(2):
                start = rng.choice([None, 0.0, 29.5, 30.0, 61.25, 95.0])
                end = None if start is None or rng.random() < 0.2 else start + rng.choice([5, 30])
                kind = rng.choice(KINDS)
                segment_id = conn.execute(
                    "INSERT INTO mmsearch.segment (record_id, collection_id, ordinal, kind,"
                    " start_s, end_s, content) VALUES (%s, 0, %s, %s, %s, %s, %s) RETURNING id",
                    (record_id, ordinal, kind, start, end, f"needle {kind} {i}"),
                ).fetchone()[0]
                row = (segment_id, record_id, collection, media_type, mime, kind, metadata)
                out.append(Row(*row, tags, start, end, duration, width, height, ingested, created))
    return out


def matching(db: Database, text: str) -> set[int]:
    """The segments a search finds with this filter (every segment holds the word "needle"):
    the tree goes through the SQL search's own filter compiler, as every search's does."""
    request = {"query": "needle", "filter": parse(text).to_json(), "segments": True, "k": 1000}
    with db.reader() as conn:
        found = conn.execute(
            "SELECT segment_id FROM mmsearch.search_request(%s)", (Jsonb(request),)
        ).fetchall()
    return {row[0] for row in found}


# An expression tree as plain tuples; `render` writes it as filter text, `holds` is the oracle.
Node = tuple[Any, ...]
COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
NUMBER_COLUMNS = ["start_s", "end_s", "duration_s", "width", "height"]


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def literal(value: Any) -> str:
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, datetime):
        return quote(value.isoformat())
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return repr(value)


def is_name(key: str) -> bool:
    return (
        bool(key)
        and (key[0].isalpha() or key[0] == "_")
        and all(c.isalnum() or c == "_" for c in key)
    )


def render(node: Node) -> str:
    match node:
        case ("and" | "or" as glue, items):
            return f" {glue} ".join(f"({render(item)})" for item in items)
        case ("not", item):
            return f"not ({render(item)})"
        case ("exists", key):
            return f"has meta.{key}" if is_name(key) else f"has meta[{quote(key)}]"
        case ("tags", how, tags):
            if how == "one":
                return f"tags has {quote(tags[0])}"
            return f"tags has {how} ({', '.join(map(quote, tags))})"
        case ("cmp", field, op, value):
            return f"{name(field)} {op} {literal(value)}"
        case ("in", field, values):
            return f"{name(field)} in ({', '.join(map(literal, values))})"
    raise AssertionError(node)


def name(field: str) -> str:
    key = field.removeprefix("meta.")
    return field if key == field or is_name(key) else f"meta[{quote(key)}]"


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(value)]


def number(value: int | float) -> Decimal:
    return Decimal(value) if isinstance(value, int) else Decimal(repr(value))


def meta_holds(metadata: dict[str, Any], key: str, op: str, value: Any) -> bool:
    if op in ("=", "!="):
        equal = (
            key in metadata
            and json_type(metadata[key]) == json_type(value)
            and (
                number(metadata[key]) == number(value)
                if json_type(value) == "number"
                else metadata[key] == value
            )
        )
        return equal if op == "=" else not equal
    if key not in metadata or json_type(metadata[key]) != json_type(value):
        return False
    if isinstance(value, str):
        return COMPARE[op](metadata[key], value)
    return COMPARE[op](number(metadata[key]), number(value))


def holds(node: Node, row: Row) -> bool:
    match node:
        case ("and", items):
            return all(holds(item, row) for item in items)
        case ("or", items):
            return any(holds(item, row) for item in items)
        case ("not", item):
            return not holds(item, row)
        case ("exists", key):
            return key in row.metadata
        case ("tags", how, tags):
            found = [tag in row.tags for tag in tags]
            return all(found) if how == "all" else any(found)
        case ("in", field, values):
            return any(holds(("cmp", field, "=", value), row) for value in values)
        case ("cmp", field, op, value) if field.startswith("meta."):
            return meta_holds(row.metadata, field[5:], op, value)
        case ("cmp", field, op, value):
            stored = getattr(row, field)
            if isinstance(value, datetime) and value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            return stored is not None and COMPARE[op](stored, value)
    raise AssertionError(node)


CHARS = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
text_values = st.one_of(st.sampled_from(STRINGS), st.text(CHARS, max_size=12))
keys = st.one_of(st.sampled_from(KEYS), st.text(CHARS, max_size=12))
numbers = st.one_of(
    st.sampled_from(NUMBERS),
    st.integers(-(10**6), 10**6),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
)
scalars = st.one_of(text_values, numbers, st.sampled_from([True, False, None]))
ops = st.sampled_from(list(COMPARE))
equality = st.sampled_from(["=", "!="])
zones = st.sampled_from(
    [None, UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)
moments = st.builds(
    lambda dt, zone: dt.replace(tzinfo=zone),
    st.datetimes(datetime(2024, 6, 1), datetime(2027, 6, 1)),
    zones,
)


def meta_compare(key: str, op: str, value: Any) -> Node:
    if op not in ("=", "!=") and (value is None or isinstance(value, bool)):
        op = "="  # ordering of true/false/null is a parse error, tested above
    return ("cmp", f"meta.{key}", op, value)


atoms = st.one_of(
    st.builds(meta_compare, keys, ops, scalars),
    st.builds(lambda key: ("exists", key), keys),
    st.builds(
        lambda k, values: ("in", f"meta.{k}", values),
        keys,
        st.lists(scalars, min_size=1, max_size=3),
    ),
    st.builds(
        lambda how, tags: ("tags", how, tags[:1] if how == "one" else tags),
        st.sampled_from(["one", "any", "all"]),
        st.lists(
            st.one_of(st.sampled_from(TAGS), st.text(CHARS, max_size=8)), min_size=1, max_size=3
        ),
    ),
    st.builds(
        lambda op, v: ("cmp", "collection", op, v),
        equality,
        st.one_of(st.sampled_from(COLLECTIONS), text_values),
    ),
    st.builds(lambda op, v: ("cmp", "media_type", op, v), equality, st.sampled_from(MEDIA)),
    st.builds(lambda op, v: ("cmp", "kind", op, v), equality, st.sampled_from(KINDS)),
    st.builds(
        lambda op, v: ("cmp", "mime", op, v),
        equality,
        st.one_of(st.sampled_from(MIMES), text_values),
    ),
    st.builds(
        lambda values: ("in", "media_type", values),
        st.lists(st.sampled_from(MEDIA), min_size=1, max_size=3),
    ),
    st.builds(
        lambda field, op, value: ("cmp", field, op, value),
        st.sampled_from(NUMBER_COLUMNS),
        ops,
        st.one_of(st.sampled_from([0, 30, 30.0, 29.5, 61.25, 90, 640, 4000]), numbers),
    ),
    st.builds(
        lambda field, op, value: ("cmp", field, op, value),
        st.sampled_from(["ingested_at", "created_at"]),
        ops,
        moments,
    ),
)
trees = st.recursive(
    atoms,
    lambda children: st.one_of(
        st.tuples(st.sampled_from(["and", "or"]), st.lists(children, min_size=2, max_size=3)),
        st.tuples(st.just("not"), children),
    ),
    max_leaves=6,
)


@given(trees)
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_results_equal_the_oracle(db: Database, rows: list[Row], tree: Node) -> None:
    text = render(tree)
    expected = {row.segment_id for row in rows if holds(tree, row)}
    assert matching(db, text) == expected, text


def test_complements_cover_every_row(db: Database, rows: list[Row]) -> None:
    for text in (
        'meta.camera = "north" or meta.camera != "north"',
        "has meta.year or not has meta.year",
    ):
        assert len(matching(db, text)) == len(rows)


def test_hostile_key_is_a_value_not_sql(db: Database, rows: list[Row]) -> None:
    key = "x'; DROP TABLE mmsearch.record; --"
    text = f"has meta[{quote(key)}] or meta[{quote(key)}] >= 0"
    assert matching(db, text) == {r.segment_id for r in rows if key in r.metadata}
    assert len(matching(db, "not has meta.nothing")) == len(rows)  # the table is still there


def test_metadata_values_of_other_types_never_raise(db: Database, rows: list[Row]) -> None:
    """`"north" >= 2` or `["north"] < 3` are false, not a cast error."""
    found = matching(db, "meta.camera >= -1e30 or meta.year < 'zzzz' or meta.score > 0")
    expected = {
        r.segment_id
        for r in rows
        if meta_holds(r.metadata, "camera", ">=", -1e30)
        or meta_holds(r.metadata, "year", "<", "zzzz")
        or meta_holds(r.metadata, "score", ">", 0)
    }
    assert found == expected


FILTER = 'media_type in ("text", "image") and not tags has "draft"'


def filtered_records(rows: list[Row], collection: str) -> set[int]:
    return {
        r.record_id
        for r in rows
        if r.collection == collection
        and r.media_type in ("text", "image")
        and "draft" not in r.tags
    }


def test_search_combines_filter_with_other_options(client: Client, rows: list[Row]) -> None:
    hits = client.search("needle", mode="keyword", collection="c1", filter=FILTER, k=100)
    assert {hit.record_id for hit in hits} == filtered_records(rows, "c1") != set()


def test_cli_filter_option(client: Client, rows: list[Row]) -> None:
    env = {**os.environ, "MMSEARCH_DATABASE_URL": client.db.dsn}
    command = [sys.executable, "-m", "mmsearch", "search", "needle", "--mode", "keyword"]
    good = subprocess.run(
        [*command, "-c", "c.2", "--json", "-k", "200", "--filter", FILTER],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert good.returncode == 0, good.stderr
    found = {json.loads(line)["record_id"] for line in good.stdout.splitlines()}
    assert found == filtered_records(rows, "c.2") != set()
    bad = subprocess.run(
        [*command, "--filter", "meta.year >="], env=env, capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 1
    assert bad.stderr == (
        "error: bad filter at column 13: expected a string, number, true, false or null,"
        " got the end\n"
    )
