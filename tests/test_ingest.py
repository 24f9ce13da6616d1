"""The ingestion pipeline end to end on real files, real models and the real database."""

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


def test_bad_files_are_recorded_with_reasons(client: Client, first_report) -> None:
    errors = rows(client, "SELECT uri, stage, message FROM mmsearch.ingest_error")
    assert sorted(Path(u).name for u, _, _ in errors) == ["broken.jpg", "empty.png"]


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


def test_every_segment_has_the_vectors_its_payload_allows(client: Client, first_report) -> None:
    kinds = dict(
        rows(
            client,
            "SELECT kind, bool_and(text_vec IS NOT NULL) AND bool_and(image_vec IS NULL)"
            " FROM mmsearch.segment WHERE kind IN ('chunk', 'ocr') GROUP BY kind",
        )
    )
    assert kinds == {"chunk": True, "ocr": True}
    images = rows(
        client,
        "SELECT count(*), count(image_vec), count(visual_vec) FROM mmsearch.segment"
        " WHERE kind = 'image'",
    )[0]
    assert images == (3, 3, 3)


def test_ocr_text_is_keyword_searchable(client: Client, first_report) -> None:
    found = rows(
        client,
        "SELECT r.uri FROM mmsearch.segment s JOIN mmsearch.record r ON r.id = s.record_id"
        " WHERE s.kind = 'ocr' AND s.content_tsv @@ websearch_to_tsquery('english', 'revenue')",
    )
    assert [Path(u).name for (u,) in found] == ["slide.png"]


def test_records_carry_tags_acl_and_segments_inherit_acl(client: Client, first_report) -> None:
    assert rows(client, "SELECT DISTINCT tags, acl FROM mmsearch.record") == [
        (["t1"], ["group:eng"])
    ]
    assert rows(client, "SELECT DISTINCT acl FROM mmsearch.segment") == [(["group:eng"],)]


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


def test_changed_acl_updates_record_and_segments(
    client: Client, corpus: Path, first_report
) -> None:
    doc = corpus / "docs" / "kitchen.md"
    report = client.ingest([doc], collection="ingest", tags=["t1"], acl=["user:zoe"])
    assert report.updated == 1
    assert rows(
        client,
        "SELECT DISTINCT s.acl FROM mmsearch.segment s JOIN mmsearch.record r"
        " ON r.id = s.record_id WHERE r.uri = %s",
        str(doc),
    ) == [(["user:zoe"],)]


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
