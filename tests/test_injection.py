"""Hostile input, property-based: whatever a caller types, no SQL error reaches it.

Query text, filter expressions, collection names, tags, metadata keys and values,
principals and file names are drawn by hypothesis (with SQL-injection classics mixed in).
The API may refuse an input with a `UserError` (one line, fit for a user) or answer it;
a `psycopg.Error` (or any other exception) escaping is a failure. Where an input is
accepted it must mean what it says: a metadata value full of quotes round-trips, a filter
on it finds exactly the record that carries it, and any accepted filter ANDed with a
condition nothing meets finds nothing, ORed with one everything meets changes nothing.
"""

from __future__ import annotations

import itertools
import os
import string
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmsearch.client import Client
from mmsearch.config import SpaceSpec
from mmsearch.db.engine import PRINCIPAL
from mmsearch.errors import InvalidPrincipal, UserError

pytestmark = pytest.mark.model

EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SQLI = [
    "'",
    '"',
    "\\",
    "' OR '1'='1",
    "'; DROP TABLE mmsearch.record; --",
    '"); DELETE FROM mmsearch.segment; --',
    "1; SELECT pg_sleep(5)",
    "$$; select 1; $$",
    "%s %(x)s {x} {}",
    "\\x00",
    "/* */ UNION SELECT content FROM mmsearch.segment --",
    "E'\\\\'",
    "meta.a = 1 or 1=1",
    "ünïcødé ☃ 漢字 \u200b\u202e",
    "a\nb\rc\td",
    "x" * 3000,
]
hostile_text = st.one_of(st.sampled_from(SQLI), st.text(max_size=80))
_counter = itertools.count()


def unique_word() -> str:
    """A fresh letters-only word, so a keyword search finds one file and nothing else."""
    n = next(_counter) + os.getpid() * 1000
    letters = []
    while True:
        n, r = divmod(n, 26)
        letters.append(string.ascii_lowercase[r])
        if n == 0:
            break
    return "zqv" + "".join(letters) + "x"


def quoted(value: str) -> str:
    """A STRING literal of the filter language (backslash escapes the next character)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return quoted(value)
    return repr(value)


def has_nul(*values: Any) -> bool:
    return any(isinstance(v, str) and "\x00" in v for v in values)


@pytest.fixture(scope="module")
def tclient(client: Client) -> Client:
    """The module client with only the `text` space: each ingest loads one small model."""
    settings_ = replace(client.settings, spaces=(SpaceSpec("text", "sentence-transformers"),))
    text_only = Client(client.db, settings_)
    text_only.register_spaces(["text"])
    return text_only


@pytest.fixture(scope="module")
def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="mmsinj-"))


@pytest.fixture(scope="module")
def seeded(tclient: Client, workdir: Path) -> str:
    """A few ordinary documents, so searches have something to (not) find."""
    root = workdir / "seed"
    root.mkdir()
    for i, text in enumerate(["quarterly revenue grew", "the cat sat on the mat", "drop tables"]):
        (root / f"d{i}.txt").write_text(text)
    tclient.ingest([root], collection="inj", metadata={"k": "v"}, tags=["t"])
    return "inj"


def search_or_refuse(tclient: Client, query: Any, **options: Any) -> list | None:
    """Run a search; a UserError is an acceptable answer, anything else propagates."""
    try:
        return tclient.search(query, **options)
    except UserError as exc:
        assert str(exc) and "\n" not in str(exc), repr(str(exc))
        return None


def ingest_one(
    tclient: Client, workdir: Path, text: str, *, name: str | None = None, **options: Any
) -> tuple[Path, Any]:
    folder = Path(tempfile.mkdtemp(dir=workdir))
    path = folder / (name or "doc.txt")
    path.write_text(text)
    return path, tclient.ingest([path], **options)


# -- query text and filter expressions -----------------------------------------------------


@EXAMPLES
@given(query=hostile_text, mode=st.sampled_from(["keyword", "hybrid", "vector"]))
def test_query_text_never_raises_sql_errors(
    tclient: Client, seeded: str, query: str, mode: str
) -> None:
    hits = search_or_refuse(tclient, query, mode=mode, collection=seeded, k=5)
    if hits is not None:
        assert all(h.collection == seeded for h in hits)


@EXAMPLES
@given(expression=hostile_text)
def test_arbitrary_filter_text_is_parsed_or_refused(
    tclient: Client, seeded: str, expression: str
) -> None:
    hits = search_or_refuse(
        tclient, "revenue", mode="keyword", filter=expression, collection=seeded
    )
    if hits is not None:
        assert_filter_means_it(tclient, seeded, "revenue", "keyword", expression)


def uris(hits: list) -> set[str]:
    return {h.uri for h in hits}


def assert_filter_means_it(
    tclient: Client, collection: str, query: str, mode: str, expression: str
) -> None:
    """An accepted filter is applied: AND a condition no record meets and nothing is left;
    OR one every record of the collection meets and the hits are those of no filter."""
    unfiltered = uris(tclient.search(query, mode=mode, collection=collection))
    assert unfiltered, "the seeded collection answers the query without a filter"
    nothing = f'({expression}) and collection = "no-such-collection"'
    assert tclient.search(query, mode=mode, collection=collection, filter=nothing) == []
    everything = f"({expression}) or collection = {quoted(collection)}"
    assert uris(tclient.search(query, mode=mode, collection=collection, filter=everything)) == (
        unfiltered
    )


FIELDS = ["collection", "media_type", "mime", "kind", "start_s", "duration_s", "ingested_at"]
scalar = st.one_of(
    hostile_text,
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)


@st.composite
def filter_expressions(draw: st.DrawFn) -> str:
    """Well-formed expressions whose keys and values are hostile."""
    parts = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["meta", "has", "tags", "field", "in"]))
        if kind == "meta":
            key, op = draw(hostile_text), draw(st.sampled_from(["=", "!=", "<", ">="]))
            parts.append(f"meta[{quoted(key)}] {op} {literal(draw(scalar))}")
        elif kind == "has":
            parts.append(f"has meta[{quoted(draw(hostile_text))}]")
        elif kind == "tags":
            values = ", ".join(quoted(draw(hostile_text)) for _ in range(draw(st.integers(1, 3))))
            parts.append(f"tags has {draw(st.sampled_from(['any', 'all']))} ({values})")
        elif kind == "field":
            parts.append(f"{draw(st.sampled_from(FIELDS))} = {literal(draw(scalar))}")
        else:
            values = ", ".join(literal(draw(scalar)) for _ in range(draw(st.integers(1, 3))))
            parts.append(f"{draw(st.sampled_from(FIELDS))} not in ({values})")
    joiner = draw(st.sampled_from([" and ", " or ", " and not "]))
    return joiner.join(parts)


@EXAMPLES
@given(expression=filter_expressions(), mode=st.sampled_from(["keyword", "hybrid"]))
def test_structured_filters_with_hostile_values(
    tclient: Client, seeded: str, expression: str, mode: str
) -> None:
    hits = search_or_refuse(tclient, "revenue cat", mode=mode, filter=expression, collection=seeded)
    if hits is not None:
        assert_filter_means_it(tclient, seeded, "revenue", mode, expression)


# -- collection names, tags, metadata: stored as given, found exactly -----------------------

metadata_key = st.one_of(st.sampled_from(SQLI[:-1]), st.text(min_size=1, max_size=40))
metadata_value = st.one_of(
    st.sampled_from(SQLI),
    st.text(max_size=60),
    st.integers(-(10**15), 10**15),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(),
    st.none(),
)


@EXAMPLES
@given(key=metadata_key, value=metadata_value, tag=hostile_text)
def test_metadata_and_tags_round_trip_and_filter_exactly(
    tclient: Client, workdir: Path, key: str, value: Any, tag: str
) -> None:
    collection = f"meta{next(_counter)}"
    word = unique_word()
    try:
        path, report = ingest_one(
            tclient, workdir, f"{word} memo", collection=collection,
            metadata={key: value}, tags=[tag],
        )  # fmt: skip
    except UserError:
        assert has_nul(key, value, tag), "refused an input PostgreSQL can hold"
        return
    if has_nul(key, value, tag):
        # PostgreSQL text cannot hold NUL: refusing the file with a reason is the answer
        assert report.failed == 1 and report.errors, report
        return
    assert report.ingested == 1, report.errors
    with tclient.db.reader() as conn:
        stored = conn.execute(
            "SELECT metadata, tags FROM mmsearch.record WHERE uri = %s", (str(path),)
        ).fetchone()
    got = stored[0][key]
    if isinstance(value, float) and not isinstance(value, bool):
        # jsonb keeps numbers as numeric: 3.6e16 comes back as the integer 36028797018963970
        assert isinstance(got, int | float) and float(got) == value, (got, value)
    else:
        assert got == value and type(got) is type(value), (got, value)
    assert stored[1] == [tag]

    def found(**options: Any) -> set[str]:
        hits = tclient.search(word, mode="keyword", collection=collection, **options)
        return {h.uri for h in hits}

    assert found(metadata={key: value}) == {str(path)}
    assert found(filter=f"meta[{quoted(key)}] = {literal(value)}") == {str(path)}
    assert found(filter=f"has meta[{quoted(key)}]") == {str(path)}
    assert found(filter=f"not meta[{quoted(key)}] = {literal(value)}") == set()
    assert found(metadata={key: f"{value}-other"}) == set()
    assert found(tags=[tag]) == {str(path)}
    assert found(filter=f"tags has {quoted(tag)}") == {str(path)}
    assert found(tags=[tag + "-other"]) == set()


collection_names = st.one_of(
    st.sampled_from(SQLI),
    st.text(max_size=70),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}", fullmatch=True),
)


@EXAMPLES
@given(name=collection_names)
def test_collection_names_are_stored_as_given_or_refused(
    tclient: Client, workdir: Path, name: str
) -> None:
    hits = search_or_refuse(tclient, "memo", mode="keyword", collection=name)
    assert hits is None or all(h.collection == name for h in hits)
    word = unique_word()
    try:
        path, report = ingest_one(tclient, workdir, f"{word} memo", collection=name)
    except UserError as exc:
        assert "collection" in str(exc)
        return
    assert report.ingested == 1, report.errors
    hits = tclient.search(word, mode="keyword", collection=name)
    assert [(h.uri, h.collection) for h in hits] == [(str(path), name)]


# -- principals ----------------------------------------------------------------------------


@EXAMPLES
@given(principal=st.one_of(hostile_text, st.from_regex(r"(user|group):[a-z][a-z0-9.]{0,20}")))
def test_principals_are_valid_or_refused_and_grant_exactly_themselves(
    tclient: Client, workdir: Path, principal: str
) -> None:
    word = unique_word()
    try:
        path, report = ingest_one(
            tclient, workdir, f"{word} memo", collection="injacl", acl=[principal]
        )
    except InvalidPrincipal:
        assert not PRINCIPAL.fullmatch(principal)
        with pytest.raises(InvalidPrincipal):
            tclient.search(word, mode="keyword", principals=[principal])
        return
    assert PRINCIPAL.fullmatch(principal)
    assert report.ingested == 1, report.errors
    mine = tclient.search(word, mode="keyword", principals=[principal])
    assert [h.uri for h in mine] == [str(path)]
    if principal != "public":
        assert tclient.search(word, mode="keyword", principals=["user:someone-else"]) == []
        assert tclient.search(word, mode="keyword") == []


# -- file paths ----------------------------------------------------------------------------

file_names = st.one_of(
    st.sampled_from(["it's.txt", 'say "hi".txt', "a;b;c.txt", "x'); drop table r; --.txt",
                     "naïve café ☃.txt", "line\nbreak.txt", "tab\there.txt", "%s%%.txt",
                     "\\back\\slash.txt", "$(whoami).txt", "*?[].txt", " lead space.txt"]),
    st.text(
        alphabet=st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)),
        min_size=1,
        max_size=60,
    ).map(lambda s: s + ".txt"),
)  # fmt: skip


@EXAMPLES
@given(name=file_names)
def test_weird_file_names_ingest_and_round_trip(tclient: Client, workdir: Path, name: str) -> None:
    if len(os.fsencode(name)) > 250:
        return
    word = unique_word()
    path, report = ingest_one(tclient, workdir, f"{word} memo", name=name, collection="injfile")
    assert report.ingested == 1, report.errors
    hits = tclient.search(word, mode="keyword", collection="injfile")
    assert [h.uri for h in hits] == [str(path)]
    assert Path(hits[0].uri).read_text() == f"{word} memo"
    # filters on the exact uri-bearing record work too: its own mime, found by the word
    hits = tclient.search(word, mode="keyword", filter='mime = "text/plain"', collection="injfile")
    assert [h.uri for h in hits] == [str(path)]


def test_sql_errors_are_not_user_errors() -> None:
    """Guard for this module's logic: a psycopg error is not swallowed as a refusal."""
    assert not issubclass(psycopg.Error, UserError)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c, d: c.search("ca\x00t", mode="keyword"), "query contains a NUL"),
        (lambda c, d: c.ingest([d], collection="\x00"), "invalid collection name"),
        (lambda c, d: c.ingest([d], collection="nul", tags=["a\x00"]), "tags contains a NUL"),
        (lambda c, d: c.ingest([d], collection="nul", metadata={"k": "v\x00"}), "metadata.k"),
        (lambda c, d: c.ingest([d], collection="nul", metadata={"k\x00": 1}), "contains a NUL"),
    ],
)
def test_nul_characters_are_refused_up_front(
    tclient: Client, workdir: Path, call: Any, message: str
) -> None:
    """Found by hypothesis: a NUL reached PostgreSQL (which cannot store it) as a DataError."""
    doc = workdir / "nul"
    doc.mkdir(exist_ok=True)
    (doc / "a.txt").write_text("hello")
    with pytest.raises(UserError, match=message):
        call(tclient, doc)
