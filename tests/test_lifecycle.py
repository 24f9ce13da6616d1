"""Keeping a collection in step with the disk: prune, rm, collection rm, thumbnails.

A removed record must be gone everywhere a reader could meet it: the API's three search
modes, the analyst SQL functions, the views, the tables. Each check first sees the record
there, so it can fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mmsearch.client import Client
from tests.media import write_photo, write_truncated

pytestmark = pytest.mark.model

ZEBRA = "Zebras graze on the savanna at dawn; their stripes confuse the lions that hunt them."
GIRAFFE = "Giraffes browse acacia leaves high above the ground with their long necks."
OTTER = "Sea otters float on their backs and crack shellfish open with small stones."


def rows(client: Client, query: str, *args: object) -> list[tuple]:
    with client.db.writer() as conn:
        return conn.execute(query, args).fetchall()


def cli(client: Client, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "MMSEARCH_DATABASE_URL": client.db.dsn, "CI": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mmsearch", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )


def everywhere(client: Client, collection: str, uri: str, segment_of_other: int) -> dict[str, bool]:
    """Where `uri` shows up: each search mode, each SQL function, each view, the tables."""
    found = {
        mode: uri in {h.uri for h in client.search(ZEBRA, collection=collection, mode=mode, k=20)}
        for mode in ("hybrid", "vector", "keyword")
    }
    functions = {
        "keyword_search": ("SELECT uri FROM mmsearch.keyword_search('zebras', %s, 20)", collection),
        "hybrid_search": (
            "SELECT uri FROM mmsearch.hybrid_search('zebras', NULL, 'text', %s, 20)",
            collection,
        ),
        "more_like_this": (
            "SELECT uri FROM mmsearch.more_like_this(%s, 'text', 20)",
            segment_of_other,
        ),
        "records view": ("SELECT uri FROM mmsearch.records WHERE collection = %s", collection),
        "segments view": ("SELECT uri FROM mmsearch.segments WHERE collection = %s", collection),
    }
    with client.db.reader(["public"]) as conn:
        for name, (query, arg) in functions.items():
            found[name] = uri in {u for (u,) in conn.execute(query, (arg,))}
    found["segment table"] = bool(
        rows(
            client,
            "SELECT 1 FROM mmsearch.segment s JOIN mmsearch.record r ON r.id = s.record_id"
            " WHERE r.uri = %s",
            uri,
        )
    )
    return found


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "synced"
    (root / "sub").mkdir(parents=True)
    (root / "zebra.txt").write_text(ZEBRA)
    (root / "giraffe.txt").write_text(GIRAFFE)
    (root / "sub" / "otter.txt").write_text(OTTER)
    photo = write_photo(root / "cat.jpg", "chelsea")
    write_truncated(root / "broken.jpg", photo)
    return root


def test_prune_removes_vanished_files_from_every_search_path(client: Client, folder: Path) -> None:
    first = client.ingest([folder], collection="prune")
    assert (first.ingested, first.failed) == (4, 1)
    zebra = str(folder / "zebra.txt")
    ((giraffe_segment,),) = rows(
        client,
        "SELECT s.id FROM mmsearch.segment s JOIN mmsearch.record r ON r.id = s.record_id"
        " WHERE r.uri = %s",
        str(folder / "giraffe.txt"),
    )
    before = everywhere(client, "prune", zebra, giraffe_segment)
    assert all(before.values()), before

    (folder / "zebra.txt").unlink()
    (folder / "broken.jpg").unlink()
    shutil.rmtree(folder / "sub")
    report = client.ingest([folder], collection="prune", prune=True)
    assert (report.removed, report.unchanged, report.failed) == (2, 2, 0)

    after = everywhere(client, "prune", zebra, giraffe_segment)
    assert not any(after.values()), after
    assert (
        rows(client, "SELECT uri FROM mmsearch.ingest_error WHERE uri LIKE %s", f"{folder}%") == []
    )
    with client.db.reader(["public"]) as conn:
        stats = conn.execute(
            "SELECT records, ingest_errors FROM mmsearch.collection_stats"
            " WHERE collection = 'prune'"
        ).fetchall()
    assert stats == [(2, 0)]
    kept = rows(client, "SELECT uri FROM mmsearch.record WHERE uri LIKE %s", f"{folder}%")
    assert sorted(Path(u).name for (u,) in kept) == ["cat.jpg", "giraffe.txt"]


def test_prune_leaves_files_outside_the_paths_and_other_collections(
    client: Client, folder: Path
) -> None:
    client.ingest([folder], collection="keep-a")
    client.ingest([folder / "giraffe.txt"], collection="keep-b")
    (folder / "giraffe.txt").unlink()
    report = client.ingest([folder / "sub"], collection="keep-a", prune=True)
    assert report.removed == 0  # giraffe.txt is not under sub/
    report = client.ingest([folder / "zebra.txt"], collection="keep-a", prune=True)
    assert report.removed == 0  # the path given is zebra.txt alone
    report = client.ingest([folder], collection="keep-a", prune=True)
    assert report.removed == 1
    assert rows(
        client,
        "SELECT c.name FROM mmsearch.record r JOIN mmsearch.collection c ON c.id = r.collection_id"
        " WHERE r.uri = %s",
        str(folder / "giraffe.txt"),
    ) == [("keep-b",)]


def test_cli_prune_of_a_deleted_folder(client: Client, folder: Path) -> None:
    assert cli(client, "ingest", str(folder), "-c", "gone").returncode == 0
    shutil.rmtree(folder)
    result = cli(client, "ingest", str(folder), "-c", "gone", "--prune")
    assert result.returncode == 0, result.stderr
    assert "removed 4" in result.stdout and "failed 0" in result.stdout
    assert rows(
        client,
        "SELECT count(*) FROM mmsearch.record r JOIN mmsearch.collection c"
        " ON c.id = r.collection_id WHERE c.name = 'gone'",
    ) == [(0,)]


def test_rm_by_uri_relative_or_absolute(client: Client, folder: Path) -> None:
    client.ingest([folder], collection="rm")
    removal = client.remove([folder / "zebra.txt", "/no/such/file.txt"], collection="rm")
    assert (removal.removed, removal.missing) == (1, ["/no/such/file.txt"])
    assert (folder / "zebra.txt").exists()  # the file itself is not touched

    result = cli(client, "rm", "-c", "rm", "giraffe.txt", "sub/otter.txt", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "removed 2"
    result = cli(client, "rm", "-c", "rm", "giraffe.txt", "cat.jpg", cwd=folder)
    assert result.returncode == 1
    assert result.stdout.strip() == "removed 1" and "giraffe.txt" in result.stderr
    assert rows(
        client,
        "SELECT count(*) FROM mmsearch.record r JOIN mmsearch.collection c"
        " ON c.id = r.collection_id WHERE c.name = 'rm'",
    ) == [(0,)]
    assert (
        cli(client, "rm", "-c", "nope", "x").stderr.strip() == "error: no collection named 'nope'"
    )


def test_collection_rm_removes_records_segments_and_errors(client: Client, folder: Path) -> None:
    client.ingest([folder], collection="doomed")
    listed = cli(client, "collection", "list", "--json")
    assert '"name": "doomed", "records": 4, "ingest_errors": 1' in listed.stdout

    refused = cli(client, "collection", "rm", "doomed")
    assert refused.returncode == 1 and "--yes" in refused.stderr
    result = cli(client, "collection", "rm", "doomed", "--yes")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "removed 4"
    assert "doomed" not in {c.name for c in client.collections()}
    assert rows(
        client,
        "SELECT count(*) FROM mmsearch.segment s WHERE NOT EXISTS"
        " (SELECT 1 FROM mmsearch.record r WHERE r.id = s.record_id)",
    ) == [(0,)]
    assert rows(
        client,
        "SELECT count(*) FROM mmsearch.ingest_error WHERE uri = %s",
        str(folder / "broken.jpg"),
    ) == [(0,)]


def test_thumbnails_go_with_the_last_record_of_their_bytes(client: Client, folder: Path) -> None:
    """Thumbnails are shared by content: they stay while another record has the same bytes."""
    original, copy = folder / "only-here.txt", folder / "sub" / "copy.txt"
    original.write_text("Bytes no other test ingests: a lighthouse keeper's logbook.")
    shutil.copy(original, copy)
    client.ingest([original, copy], collection="thumbs")
    ((sha,),) = rows(
        client, "SELECT DISTINCT sha256 FROM mmsearch.record WHERE uri = %s", str(copy)
    )
    thumbs = client.settings.thumbs_dir(sha)
    thumbs.mkdir(parents=True)
    (thumbs / "0.jpg").write_bytes(b"\xff\xd8 a keyframe")

    assert client.remove([copy], collection="thumbs").removed == 1
    assert thumbs.exists()  # the original still has these bytes
    assert client.remove([original], collection="thumbs").removed == 1
    assert not thumbs.exists()
