"""The ingestion pipeline end to end on real files, real models and the real database.

The module shares one database: each test reads only its own collection (or the
`first_report` corpus, which no other test changes), so the tests pass in any order.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from mmsearch.client import Client
from mmsearch.ingest import pipeline, store
from mmsearch.ingest.extract import Extractors
from tests.media import write_photo, write_text_image, write_truncated

pytestmark = pytest.mark.model

ESSAY = "\n\n".join(
    f"Paragraph {i} talks about topic number {i}. "
    + " ".join(
        f"Sentence {j} of paragraph {i} adds a detail about item {i * 100 + j}." for j in range(12)
    )
    for i in range(12)
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    (root / "docs").mkdir()
    (root / "docs" / "essay.txt").write_text(ESSAY)
    (root / "docs" / "kitchen.md").write_text(
        "# Kitchen rules\n\nGrease fires must be smothered with a lid, never water.\n"
    )
    (root / "docs" / ".hidden.txt").write_text("never ingested")
    (root / "docs" / "blob.bin").write_bytes(bytes(range(256)) * 40)
    (root / "img").mkdir()
    cat = write_photo(root / "img" / "a.jpg", "chelsea")
    write_photo(root / "img" / "b.jpg", "rocket")
    write_text_image(root / "img" / "slide.png", ["Quarterly revenue grew", "twelve percent"])
    write_truncated(root / "img" / "broken.jpg", cat)
    (root / "img" / "empty.png").write_bytes(b"")
    return root


@pytest.fixture(scope="module")
def first_report(client: Client, corpus: Path):
    return client.ingest([corpus], collection="ingest", tags=["t1"], acl=["group:eng"])


def rows(client: Client, query: str, *args: object) -> list[tuple]:
    with client.db.transaction() as conn:
        return conn.execute(query, args).fetchall()


def test_summary_counts(first_report) -> None:
    assert (first_report.ingested, first_report.skipped, first_report.failed) == (5, 1, 2)
    failed = {Path(e["uri"]).name: e for e in first_report.errors}
    assert set(failed) == {"broken.jpg", "empty.png"}
    assert all(e["message"] and "\n" not in e["message"] for e in failed.values())


def errors_of(client: Client, collection: str) -> dict[str, tuple[str, str]]:
    """{file name: (stage, message)} of the collection's ingest_error rows."""
    found = rows(
        client,
        "SELECT e.uri, e.stage, e.message FROM mmsearch.ingest_error e"
        " JOIN mmsearch.collection c ON c.id = e.collection_id WHERE c.name = %s",
        collection,
    )
    return {Path(uri).name: (stage, message) for uri, stage, message in found}


def test_bad_files_are_recorded_with_reasons(client: Client, first_report) -> None:
    errors = errors_of(client, "ingest")
    assert sorted(errors) == ["broken.jpg", "empty.png"]
    stage, message = errors["broken.jpg"]
    assert stage == "decode" and message.startswith("image is truncated or corrupt: "), message


def test_chunk_offsets_round_trip_into_the_source(
    client: Client, corpus: Path, first_report
) -> None:
    chunks = rows(
        client,
        "SELECT s.content, s.char_start, s.char_end FROM mmsearch.segment s"
        " JOIN mmsearch.record r ON r.id = s.record_id WHERE r.uri = %s ORDER BY s.ordinal",
        str(corpus / "docs" / "essay.txt"),
    )
    assert len(chunks) > 3  # the essay is longer than one chunk
    for content, start, end in chunks:
        assert ESSAY[start:end] == content
    covered = set().union(*(range(s, e) for _, s, e in chunks))
    assert all(i in covered for i, ch in enumerate(ESSAY) if not ch.isspace())


#: the segments of the `first_report` corpus (`s`, with its record `r`), for a WHERE to follow
CORPUS_SEGMENTS = (
    " FROM mmsearch.segment s JOIN mmsearch.record r ON r.id = s.record_id"
    " JOIN mmsearch.collection c ON c.id = r.collection_id WHERE c.name = 'ingest'"
)


def test_every_segment_has_the_vectors_its_payload_allows(client: Client, first_report) -> None:
    kinds = dict(
        rows(
            client,
            "SELECT s.kind, bool_and(s.text_vec IS NOT NULL) AND bool_and(s.image_vec IS NULL)"
            + CORPUS_SEGMENTS
            + " AND s.kind IN ('chunk', 'ocr') GROUP BY s.kind",
        )
    )
    assert kinds == {"chunk": True, "ocr": True}
    images = rows(
        client,
        "SELECT count(*), count(s.image_vec), count(s.visual_vec)"
        + CORPUS_SEGMENTS
        + " AND s.kind = 'image'",
    )[0]
    assert images == (3, 3, 3)


def test_ocr_text_is_keyword_searchable(client: Client, first_report) -> None:
    found = rows(
        client,
        "SELECT r.uri"
        + CORPUS_SEGMENTS
        + " AND s.kind = 'ocr' AND s.content_tsv @@ websearch_to_tsquery('english', 'revenue')",
    )
    assert [Path(u).name for (u,) in found] == ["slide.png"]


def test_records_carry_tags_acl_and_segments_inherit_acl(client: Client, first_report) -> None:
    assert rows(client, "SELECT DISTINCT r.tags, r.acl" + CORPUS_SEGMENTS) == [
        (["t1"], ["group:eng"])
    ]
    assert rows(client, "SELECT DISTINCT s.acl" + CORPUS_SEGMENTS) == [(["group:eng"],)]


def test_reingest_unchanged_is_a_no_op(client: Client, corpus: Path, first_report) -> None:
    before = rows(
        client,
        "SELECT s.id, r.ingested_at FROM mmsearch.segment s JOIN mmsearch.record r"
        " ON r.id = s.record_id ORDER BY 1",
    )
    again = client.ingest([corpus], collection="ingest", tags=["t1"], acl=["group:eng"])
    assert (again.ingested, again.unchanged, again.failed) == (0, 5, 2)
    after = rows(
        client,
        "SELECT s.id, r.ingested_at FROM mmsearch.segment s JOIN mmsearch.record r"
        " ON r.id = s.record_id ORDER BY 1",
    )
    assert before == after


def test_reingest_unchanged_decodes_and_embeds_nothing(
    client: Client, corpus: Path, first_report, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sha256 check comes before any decoding: an unchanged file costs a hash, not a
    decode, OCR and model pass that the database write would then throw away."""
    decoded: list[str] = []
    embedded: list[int] = []
    real_extract, real_embed = Extractors.extract, pipeline.embed_segments

    def counting_extract(self: Extractors, path: Path, *args: object, **kw: object) -> object:
        decoded.append(path.name)
        return real_extract(self, path, *args, **kw)

    def counting_embed(embedder: object, segments: list) -> object:
        embedded.append(len(segments))
        return real_embed(embedder, segments)

    monkeypatch.setattr(Extractors, "extract", counting_extract)
    monkeypatch.setattr(pipeline, "embed_segments", counting_embed)
    again = client.ingest([corpus], collection="ingest", tags=["t1"], acl=["group:eng"])
    assert (again.ingested, again.updated, again.unchanged, again.failed) == (0, 0, 5, 2)
    assert sorted(decoded) == ["broken.jpg", "empty.png"]  # only failed files are tried again
    assert embedded == []


def test_changed_acl_updates_record_and_segments(client: Client, tmp_path: Path) -> None:
    doc = tmp_path / "kitchen.md"
    doc.write_text("# Kitchen rules\n\nGrease fires must be smothered with a lid.\n")
    client.ingest([doc], collection="acl-change", tags=["t1"], acl=["group:eng"])
    report = client.ingest([doc], collection="acl-change", tags=["t1"], acl=["user:zoe"])
    assert (report.updated, report.unchanged) == (1, 0)
    assert rows(
        client,
        "SELECT DISTINCT s.acl FROM mmsearch.segment s JOIN mmsearch.record r"
        " ON r.id = s.record_id WHERE r.uri = %s",
        str(doc),
    ) == [(["user:zoe"],)]


def test_fixed_file_clears_its_ingest_error(client: Client, tmp_path: Path) -> None:
    photo = tmp_path / "IMG_0042.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    assert client.ingest([photo], collection="fixed").failed == 1
    [(stage, message)] = errors_of(client, "fixed").values()
    assert stage == "decode" and message.startswith("not a readable image: "), message
    write_photo(photo, "coffee")
    assert client.ingest([photo], collection="fixed").ingested == 1
    assert errors_of(client, "fixed") == {}


def test_changed_file_keeps_its_id_and_replaces_its_segments(
    client: Client, tmp_path: Path
) -> None:
    doc = tmp_path / "notes.txt"
    doc.write_text("The first version mentions apples.")
    client.ingest([doc], collection="replace")
    ((rid, created, ingested),) = rows(
        client, "SELECT id, created_at, ingested_at FROM mmsearch.record WHERE uri = %s", str(doc)
    )
    ((old_segment,),) = rows(client, "SELECT id FROM mmsearch.segment WHERE record_id = %s", rid)
    doc.write_text("The second version mentions oranges instead.")
    report = client.ingest([doc], collection="replace")
    assert report.updated == 1
    ((new_rid, new_created, new_ingested),) = rows(
        client, "SELECT id, created_at, ingested_at FROM mmsearch.record WHERE uri = %s", str(doc)
    )
    assert (new_rid, new_created) == (rid, created)
    assert new_ingested > ingested
    segments = rows(client, "SELECT id, content FROM mmsearch.segment WHERE record_id = %s", rid)
    assert [content for _, content in segments] == ["The second version mentions oranges instead."]
    assert segments[0][0] != old_segment
    hits = client.search("oranges", collection="replace", mode="keyword")
    assert [h.record_id for h in hits] == [rid]
    assert client.search("apples", collection="replace", mode="keyword") == []


def test_a_write_that_fails_midway_leaves_the_old_version_whole(
    client: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Record and segments commit together: a failure while inserting the segments (after
    the record row is written) rolls the record back too, for a new file and a changed one."""
    old, new = tmp_path / "old.txt", tmp_path / "new.txt"
    old.write_text("The first version mentions apples.")
    client.ingest([old], collection="atomic")
    before = rows(
        client,
        "SELECT r.sha256, s.content FROM mmsearch.record r"
        " JOIN mmsearch.segment s ON s.record_id = r.id WHERE r.uri = %s",
        str(old),
    )
    old.write_text("The second version mentions oranges.")
    new.write_text("A new file about pears.")

    def insert_then_fail(conn: psycopg.Connection, record_id: int, *args: object) -> None:
        real_insert(conn, record_id, *args)
        raise OSError("disk full while copying segments")

    real_insert = store.insert_segments
    monkeypatch.setattr(store, "insert_segments", insert_then_fail)
    report = client.ingest([old, new], collection="atomic")
    assert (report.failed, report.ingested, report.updated) == (2, 0, 0)
    after = rows(
        client,
        "SELECT r.sha256, s.content FROM mmsearch.record r"
        " LEFT JOIN mmsearch.segment s ON s.record_id = r.id"
        " JOIN mmsearch.collection c ON c.id = r.collection_id WHERE c.name = 'atomic'",
    )
    assert after == before


def test_killed_ingest_leaves_no_partial_record_and_rerun_finishes(
    client: Client, tmp_path: Path
) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(40):
        (folder / f"doc{i:02}.txt").write_text(ESSAY[: 2000 + 40 * i])
    env = {**os.environ, "MMSEARCH_DATABASE_URL": client.db.dsn, "CI": "1"}
    cmd = [sys.executable, "-m", "mmsearch", "ingest", str(folder), "-c", "killed"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill once some, but not all, records are in
        done = rows(
            client,
            "SELECT count(*) FROM mmsearch.record r JOIN mmsearch.collection c"
            " ON c.id = r.collection_id WHERE c.name = 'killed'",
        )[0][0]
        if done >= 3 or proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    orphans = rows(
        client,
        "SELECT r.uri FROM mmsearch.record r JOIN mmsearch.collection c ON c.id = r.collection_id"
        " WHERE c.name = 'killed' AND NOT EXISTS"
        " (SELECT 1 FROM mmsearch.segment s WHERE s.record_id = r.id)",
    )
    assert orphans == []
    partial = rows(
        client,
        "SELECT count(*) FROM mmsearch.record r JOIN mmsearch.collection c"
        " ON c.id = r.collection_id WHERE c.name = 'killed'",
    )[0][0]
    assert partial < 40, "the kill came too late to test anything"
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=600)
    per_record = rows(
        client,
        "SELECT r.uri, count(s.id), max(s.ordinal) + 1 FROM mmsearch.record r"
        " JOIN mmsearch.collection c ON c.id = r.collection_id"
        " JOIN mmsearch.segment s ON s.record_id = r.id WHERE c.name = 'killed' GROUP BY r.uri",
    )
    assert len(per_record) == 40
    assert all(count == ordinals for _, count, ordinals in per_record)


def test_cli_ingest_prints_summary_and_exit_code(client: Client, tmp_path: Path) -> None:
    env = {**os.environ, "MMSEARCH_DATABASE_URL": client.db.dsn}
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    result = subprocess.run(
        [sys.executable, "-m", "mmsearch", "ingest", str(bad), "-c", "cli"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1  # nothing could be processed at all
    assert "failed 1" in result.stdout
    assert "bad.jpg" in result.stderr and "Traceback" not in result.stderr
    with psycopg.connect(client.db.dsn) as conn:
        assert conn.execute(
            "SELECT stage FROM mmsearch.ingest_error WHERE uri = %s", (str(bad),)
        ).fetchone() == ("decode",)
