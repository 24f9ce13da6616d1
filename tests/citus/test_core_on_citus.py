"""The suite's core through a Citus coordinator, against one server holding the same data.

The same files go through `Client.ingest` (the real text model) into a database on the local
cluster and into one on the embedded single server, then the lifecycle commands run on both:
re-ingest, a changed file, a corrupt one, acl and tag changes, removal, backfill. After each
step the two databases must hold the same rows (uris, acls, tags, segments, vectors), the
same counts in the views and `collection list`, and every caller must see exactly the rows
its principals allow, through the service login and through people's own logins.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from mmsearch.client import Client
from mmsearch.db import schema
from mmsearch.db.logins import add_person
from tests.citus.clients import text_client

pytestmark = [pytest.mark.citus, pytest.mark.model]

WORDS = ("cat", "dog", "rocket", "launch", "espresso", "audit", "revenue", "kitchen", "glass")
GROUPS = ["group:eng", "group:ops", "group:board", "user:ann", "user:bob"]
ROWS = (
    "SELECT r.uri, r.acl, r.tags, r.title, r.media_type, s.ordinal, s.kind, s.content, s.acl,"
    " c.name, s.text_vec::text FROM mmsearch.record AS r"
    " JOIN mmsearch.segment AS s ON s.record_id = r.id"
    " JOIN mmsearch.collection AS c ON c.id = s.collection_id ORDER BY r.uri, s.ordinal"
)


@dataclass
class Side:
    """One database of the pair: its client, and the owner's DSN."""

    name: str
    dsn: str
    client: Client

    def rows(self, query: str = ROWS) -> list[tuple[object, ...]]:
        with psycopg.connect(self.dsn) as conn:
            return conn.execute(query).fetchall()

    def acls(self) -> dict[str, frozenset[str]]:
        """The oracle's input: each record's acl, read as the owner."""
        rows = self.rows("SELECT uri, acl FROM mmsearch.record")
        return {uri: frozenset(acl) for uri, acl in rows}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("citus-corpus")
    rng = random.Random(16)
    for i in range(12):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 400)))
        (folder / f"doc{i:02d}.txt").write_text(f"Document {i}.\n\n{words}\n")
    return folder


@pytest.fixture(scope="module")
def sides(dsn: str, citus_dsn: str, test_home: Path, corpus: Path) -> Iterator[list[Side]]:
    """The single server and the cluster, each with the corpus ingested: four files per
    acl, in the same order."""
    schema.upgrade(citus_dsn)
    pair = [Side("single", dsn, text_client(dsn, test_home))]
    pair.append(Side("citus", citus_dsn, text_client(citus_dsn, test_home)))
    files = sorted(corpus.iterdir())
    for side in pair:
        for n, acl in enumerate((["public"], ["group:eng"], ["group:ops", "user:ann"])):
            report = side.client.ingest(files[4 * n : 4 * n + 4], collection="docs", acl=acl)
            assert (report.ingested, report.failed) == (4, 0), (side.name, report.errors)
    yield pair
    for side in pair:
        side.client.close()


def assert_same(sides: list[Side]) -> None:
    single, citus = sides
    assert citus.rows() == single.rows()
    stats = []
    for side in sides:  # the view as the app sees it (a superuser bypasses RLS on the shards)
        with side.client.db.reader(GROUPS[:2]) as conn:
            stats.append(conn.execute("SELECT * FROM mmsearch.collection_stats").fetchall())
    assert stats[1] == stats[0]
    listed = [[(c.name, c.records, c.ingest_errors) for c in s.client.collections()] for s in sides]
    assert listed[1] == listed[0]


def visible(acls: dict[str, frozenset[str]], principals: list[str]) -> set[str]:
    mine = {*principals, "public"}
    return {uri for uri, acl in acls.items() if acl & mine}


def test_ingest_through_the_coordinator_writes_what_one_server_writes(sides: list[Side]) -> None:
    assert len(sides[1].rows()) > 12
    assert_same(sides)


def test_reingest_changed_and_corrupt_files(sides: list[Side], corpus: Path) -> None:
    """Unchanged files are skipped, a changed one keeps its record id and acl, a corrupt
    one becomes an ingest error that a good file of the same name clears."""
    changed, broken = corpus / "doc05.txt", corpus / "broken.png"
    before = {s.name: dict(s.rows("SELECT uri, id FROM mmsearch.record")) for s in sides}
    changed.write_text("Document 5, rewritten: the espresso machine needs descaling.\n")
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not an image" * 10)
    for side in sides:
        report = side.client.ingest(corpus, collection="docs")
        assert (report.unchanged, report.updated, report.failed) == (11, 1, 1), side.name
        after = dict(side.rows("SELECT uri, id FROM mmsearch.record"))
        assert after[str(changed)] == before[side.name][str(changed)]
    assert_same(sides)
    errors = "SELECT uri, stage, acl FROM mmsearch.ingest_error"
    assert sides[1].rows(errors) == sides[0].rows(errors) == [(str(broken), "decode", ["public"])]
    broken.unlink()
    (corpus / "broken.txt").write_text("no longer broken")
    for side in sides:
        side.client.ingest(corpus, collection="docs", prune=True)
        assert side.rows(errors) == []
    assert_same(sides)


def test_acl_and_tag_changes_and_removal(sides: list[Side], corpus: Path) -> None:
    for side in sides:
        client = side.client
        assert client.add_acl(["group:board"], collection="docs", uris=[corpus / "doc01.txt"]) == 1
        assert client.set_acl(["user:bob"], collection="docs", uris=[corpus / "doc09.txt"]) == 1
        assert client.remove_acl(["user:ann"], collection="docs", uris=[corpus / "doc10.txt"]) == 1
        assert client.add_tags(["kept"], collection="docs") == 13
        removal = client.remove(["/nowhere.txt", corpus / "doc03.txt"], collection="docs")
        assert removal.as_dict() == {"removed": 1, "missing": ["/nowhere.txt"]}
        report = side.client.ingest(corpus, collection="docs")  # doc03 back, as public
        assert (report.ingested, report.unchanged) == (1, 12)
    assert_same(sides)
    acls = sides[1].acls()
    assert acls[str(corpus / "doc09.txt")] == {"user:bob"}
    assert acls[str(corpus / "doc10.txt")] == {"group:ops"}


def test_backfill_through_the_coordinator(sides: list[Side]) -> None:
    """Vectors lost from two records come back, the same on both servers."""
    for side in sides:
        with psycopg.connect(side.dsn) as conn:
            lost = conn.execute(
                "UPDATE mmsearch.segment SET text_vec = NULL WHERE record_id IN"
                " (SELECT id FROM mmsearch.record WHERE uri LIKE '%doc0_.txt' ORDER BY uri"
                "  LIMIT 2)"
            ).rowcount
        assert lost > 0
        [space] = side.client.spaces()
        assert side.client.coverage(space).missing == lost
        report = side.client.backfill("text")
        assert (report.embedded, report.skipped) == (lost, 0)
        assert side.client.coverage(space).missing == 0
    assert_same(sides)


def test_every_reader_sees_exactly_its_rows(sides: list[Side], dsn: str) -> None:
    """Service login with per-request principals, and people's own logins (whose own
    setting of principals counts for nothing): tables and views, against the oracle."""
    rng = random.Random(7)
    reads = {
        "records": "SELECT r.uri FROM mmsearch.record AS r",
        "segments": "SELECT DISTINCT g.uri FROM mmsearch.segments AS g",
        "view": "SELECT v.uri FROM mmsearch.records AS v",
        "join": "SELECT DISTINCT r.uri FROM mmsearch.segment AS s"
        " JOIN mmsearch.record AS r ON r.id = s.record_id",
    }
    for side in sides:
        acls = side.acls()
        for _ in range(12):
            principals = rng.sample(GROUPS, rng.randint(0, 3))
            want = visible(acls, principals)
            with side.client.db.reader(principals) as conn:
                for label, query in reads.items():
                    got = {uri for (uri,) in conn.execute(query)}
                    assert got == want, (side.name, label, principals)
        for i, principals in enumerate((["group:eng"], ["group:ops", "user:bob"], [])):
            login = add_person(side.dsn, f"reader{i}", "analyst", principals)
            with psycopg.connect(login, autocommit=True) as conn:
                conn.execute(
                    "SELECT set_config('mmsearch.principals', %s, false)",
                    (json.dumps(GROUPS),),  # ignored: a person sees with its own
                )
                for label, query in reads.items():
                    got = {uri for (uri,) in conn.execute(query)}
                    assert got == visible(acls, principals), (side.name, label, principals)
            bi = add_person(side.dsn, f"board{i}", "bi", principals)
            with psycopg.connect(bi, autocommit=True) as conn:  # the metadata views only
                got = {uri for (uri,) in conn.execute(reads["view"])}
                assert got == visible(acls, principals), (side.name, "bi", principals)
                (records,) = conn.execute(
                    "SELECT coalesce(sum(records), 0) FROM mmsearch.collection_stats"
                ).fetchone()
                assert records == len(got), (side.name, "bi stats", principals)


def test_bi_reads_metadata_columns_and_nothing_more(sides: list[Side]) -> None:
    """On Citus BI holds the views role's column grants (a view's shard queries run as the
    caller): still no content, no vectors, no logins' principals."""
    citus = sides[1]
    bi = add_person(citus.dsn, "auditor", "bi", ["group:eng"])
    refused = (
        "SELECT content FROM mmsearch.segment",
        "SELECT text_vec FROM mmsearch.segment",
        "SELECT content_tsv FROM mmsearch.segment",
        "SELECT * FROM mmsearch.person",
        "SELECT message FROM mmsearch.ingest_error",
    )
    with psycopg.connect(bi, autocommit=True) as conn:
        for query in refused:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(query)
        titles = conn.execute("SELECT count(title) FROM mmsearch.record").fetchone()[0]
        assert titles == len(visible(citus.acls(), ["group:eng"]))
