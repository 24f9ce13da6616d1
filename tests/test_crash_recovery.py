"""Crashes and concurrency: kill -9 of the ingest, kill -9 of PostgreSQL, two racing ingests.

Each test drives the real CLI in subprocesses against a real server and then checks the
database itself: a record commits with all its segments or not at all (one transaction per
record), so after any crash every record must be whole and consistent with the file
version its sha256 names, and a rerun must converge to exactly the files on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from mmsearch.client import Client
from mmsearch.db import embedded
from tests.media import write_photo, write_text_image

pytestmark = pytest.mark.model

WORDS = ["harbour", "lantern", "copper", "meadow", "violin"]
WORDS += ["glacier", "orchard", "saffron", "thunder", "pebble"]


def paragraph(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) + ("." if rng.random() < 0.1 else "") for _ in range(words))


def write_text(path: Path, rng: random.Random) -> None:
    """A small text file whose length (and so its number of chunks) varies per version."""
    path.write_text(
        "\n\n".join(paragraph(rng, rng.randint(40, 160)) for _ in range(rng.randint(1, 6)))
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "mmsearch", *args]


def query(dsn: str, text: str, *args: object) -> list[tuple]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(text, args).fetchall()


@dataclass
class Integrity:
    """What one look at a collection found; the test asserts every list is empty."""

    records: int = 0
    partial: list[str] = field(default_factory=list)  # segments missing or ordinals out of step
    mixed: list[str] = field(default_factory=list)  # a segment that is not its version's text
    orphans: int = 0  # segments without a record
    leftovers: list[str] = field(default_factory=list)  # staging tables, advisory locks


def check_integrity(dsn: str, collection: str, versions: dict[str, str]) -> Integrity:
    """Every record whole, every text segment equal to its sha's text at its offsets.

    `versions` maps sha256 -> text of every text-file version the test ever wrote, so a
    record that pairs a new sha with old segments (or the reverse) is caught too.
    """
    found = Integrity()
    rows = query(
        dsn,
        "SELECT r.uri, r.sha256, count(s.id), coalesce(max(s.ordinal) + 1, 0),"
        " array_agg(array[s.content, s.char_start::text, s.char_end::text] ORDER BY s.ordinal)"
        " FILTER (WHERE s.kind = 'chunk')"
        " FROM mmsearch.record r JOIN mmsearch.collection c ON c.id = r.collection_id"
        " LEFT JOIN mmsearch.segment s ON s.record_id = r.id WHERE c.name = %s"
        " GROUP BY r.uri, r.sha256",
        collection,
    )
    found.records = len(rows)
    for uri, sha, count, ordinals, chunks in rows:
        if count == 0 or count != ordinals:
            found.partial.append(uri)
        text = versions.get(sha)
        if text is not None and any(
            text[int(a) : int(b)] != content for content, a, b in chunks or ()
        ):
            found.mixed.append(uri)
    found.orphans = query(
        dsn,
        "SELECT count(*) FROM mmsearch.segment s"
        " WHERE NOT EXISTS (SELECT 1 FROM mmsearch.record r WHERE r.id = s.record_id)",
    )[0][0]
    found.leftovers = leftovers(dsn)
    return found


def leftovers(dsn: str, wait_s: float = 15.0) -> list[str]:
    """Staging tables or advisory locks still held once the killed client's backend is gone.

    A backend notices its client died at its next read, so give busy sessions a moment
    (idle ones are the test's own pool).
    """
    deadline = time.monotonic() + wait_s
    while True:
        others = query(
            dsn,
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND backend_type = 'client backend' AND state IS DISTINCT FROM 'idle'",
        )[0][0]
        if others == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    found = [
        f"table {name}"
        for (name,) in query(dsn, "SELECT relname FROM pg_class WHERE relname = 'segment_stage'")
    ]
    found += [
        f"advisory lock {objid} held by {pid}"
        for pid, objid in query(
            dsn, "SELECT pid, objid FROM pg_locks WHERE locktype = 'advisory' AND granted"
        )
    ]
    return found


def fresh_count(dsn: str, collection: str, shas: dict[str, str]) -> int:
    """How many files have a record that matches their current bytes."""
    stored = dict(
        query(
            dsn,
            "SELECT r.uri, r.sha256 FROM mmsearch.record r JOIN mmsearch.collection c"
            " ON c.id = r.collection_id WHERE c.name = %s",
            collection,
        )
    )
    return sum(stored.get(uri) == sha for uri, sha in shas.items())


def segment_counts(dsn: str, collection: str) -> dict[str, int]:
    return dict(
        query(
            dsn,
            "SELECT r.uri, count(s.id) FROM mmsearch.record r JOIN mmsearch.collection c"
            " ON c.id = r.collection_id JOIN mmsearch.segment s ON s.record_id = r.id"
            " WHERE c.name = %s GROUP BY r.uri",
            collection,
        )
    )


@dataclass
class KillFigures:
    trials: int = 0
    kills: int = 0
    mid_batch: int = 0  # some but not all of the trial's pending files had been written
    before_first_write: int = 0
    records_checked: int = 0
    partial_found: int = 0
    mixed_found: int = 0
    orphans_found: int = 0
    leftovers_found: int = 0


def kill_loop(
    client: Client,
    folder: Path,
    *,
    trials: int,
    rewrite: Callable[[random.Random, int], dict[str, str]],
    seed: int,
) -> KillFigures:
    """`trials` rounds of: rewrite some files, start the CLI ingest, SIGKILL it, check.

    Half the kills come after a random delay (0.3-4 s, often still loading models), half
    once a random number of the pending files has been written (so mid-batch, often
    mid-transaction). Then one clean rerun must converge; its segment counts must equal an
    in-process ingest of the same folder into a fresh collection.
    """
    rng = random.Random(seed)
    dsn = client.db.dsn
    collection = f"killed{seed}"
    env = {**os.environ, "MMSEARCH_DATABASE_URL": dsn, "CI": "1"}
    cmd = cli("ingest", str(folder), "-c", collection)
    figures = KillFigures()
    versions: dict[str, str] = {}
    for trial in range(trials):
        versions.update(rewrite(rng, trial))
        shas = {str(p): sha256(p) for p in sorted(folder.iterdir())}
        before = fresh_count(dsn, collection, shas)
        pending = len(shas) - before
        by_count = rng.random() < 0.5 and pending > 1
        target = before + rng.randint(1, pending - 1) if by_count else None
        delay = rng.uniform(0.3, 4.0)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        started = time.monotonic()
        while proc.poll() is None and time.monotonic() - started < 300:
            if target is None and time.monotonic() - started >= delay:
                break
            if target is not None and fresh_count(dsn, collection, shas) >= target:
                break
            time.sleep(0.02)
        finished_first = proc.poll() is not None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert not finished_first or proc.returncode == 0, proc.stderr.read().decode()
        proc.stderr.close()
        figures.trials += 1
        figures.kills += not finished_first
        after = fresh_count(dsn, collection, shas)
        figures.mid_batch += before < after < len(shas)
        figures.before_first_write += after == before
        found = check_integrity(dsn, collection, versions)
        figures.records_checked += found.records
        figures.partial_found += len(found.partial)
        figures.mixed_found += len(found.mixed)
        figures.orphans_found += found.orphans
        figures.leftovers_found += len(found.leftovers)
        assert (found.partial, found.mixed, found.orphans, found.leftovers) == ([], [], 0, []), (
            f"trial {trial}: {found}"
        )
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    final = check_integrity(dsn, collection, versions)
    assert (final.partial, final.mixed, final.orphans, final.leftovers) == ([], [], 0, [])
    figures.records_checked += final.records
    shas = {str(p): sha256(p) for p in sorted(folder.iterdir())}
    assert fresh_count(dsn, collection, shas) == len(shas)
    got = segment_counts(dsn, collection)
    assert set(got) == set(shas)  # exactly the files on disk, no more, no fewer
    clean = client.ingest([folder], collection=f"clean{seed}")
    assert clean.failed == 0
    assert got == segment_counts(dsn, f"clean{seed}")
    assert figures.kills >= trials // 2, f"most runs finished before the kill: {figures}"
    print(f"\nkill -9 ingest figures: {json.dumps(figures.__dict__)}")
    return figures


def text_rewriter(folder: Path, files: int) -> Callable[[random.Random, int], dict[str, str]]:
    """Trial 0 writes `files` text files; each later trial rewrites a third of them."""

    def rewrite(rng: random.Random, trial: int) -> dict[str, str]:
        names = [f"doc{i:02}.txt" for i in range(files)]
        chosen = names if trial == 0 else rng.sample(names, max(2, files // 3))
        written = {}
        for name in chosen:
            write_text(folder / name, rng)
            written[sha256(folder / name)] = (folder / name).read_text()
        return written

    return rewrite


def until_a_kill_lands_mid_batch(
    client: Client,
    root: Path,
    *,
    trials: int,
    rewriter: Callable[[Path], Callable[[random.Random, int], dict[str, str]]],
    seeds: tuple[int, ...],
) -> KillFigures:
    """The kill loop, again with the next seed (in a fresh folder and collection) until at
    least one kill lands mid-batch: a loop whose kills all came before the first write or
    after the last proves nothing about atomicity. Prints how many did, per seed."""
    for seed in seeds:
        folder = root / f"seed{seed}"
        folder.mkdir()
        figures = kill_loop(client, folder, trials=trials, rewrite=rewriter(folder), seed=seed)
        print(f"seed {seed}: {figures.mid_batch} of {figures.kills} kills landed mid-batch")
        if figures.mid_batch:
            return figures
    pytest.fail(f"no kill landed mid-batch with seeds {seeds}: the loop proved nothing")


def test_kill9_ingest_loop_quick(client: Client, tmp_path: Path) -> None:
    """5 trials on 40 small text files: no partial record, rerun converges."""
    figures = until_a_kill_lands_mid_batch(
        client, tmp_path, trials=5, rewriter=lambda d: text_rewriter(d, 40), seeds=(7, 8, 9)
    )
    assert figures.partial_found == figures.mixed_found == figures.orphans_found == 0


@pytest.mark.slow
def test_kill9_ingest_loop_mixed_media(client: Client, tmp_path: Path) -> None:
    """20 trials on text files and images (photos, an OCR slide): same guarantees."""
    photos = ["chelsea", "rocket", "coffee", "astronaut", "camera"]

    def rewriter(folder: Path) -> Callable[[random.Random, int], dict[str, str]]:
        text = text_rewriter(folder, 30)

        def rewrite(rng: random.Random, trial: int) -> dict[str, str]:
            written = text(rng, trial)
            for i in range(4) if trial == 0 else rng.sample(range(4), 2):
                quality = rng.randint(60, 95)
                write_photo(folder / f"img{i}.jpg", rng.choice(photos), quality=quality)
            if trial == 0 or rng.random() < 0.5:
                write_text_image(folder / "slide.png", [paragraph(rng, 3), paragraph(rng, 2)])
            return written

        return rewrite

    figures = until_a_kill_lands_mid_batch(
        client, tmp_path, trials=20, rewriter=rewriter, seeds=(11, 12, 13)
    )
    assert figures.trials == 20


# -- kill -9 of the embedded PostgreSQL ------------------------------------------------


@pytest.fixture
def own_server() -> Iterator[tuple[Path, str]]:
    """A private embedded server: killing the session's server would take every test down."""
    home = Path(tempfile.mkdtemp(prefix="mmsk-", dir="/tmp"))
    url = embedded.ensure_running(home / "pg")
    yield home, url
    embedded.remove(home / "pg")
    shutil.rmtree(home, ignore_errors=True)


def test_kill9_postgres_mid_ingest_next_command_recovers(
    own_server: tuple[Path, str], tmp_path: Path
) -> None:
    home, url = own_server
    rng = random.Random(3)
    for i in range(40):
        write_text(tmp_path / f"doc{i:02}.txt", rng)
    versions = {sha256(p): p.read_text() for p in tmp_path.iterdir()}
    env = {k: v for k, v in os.environ.items() if k != "MMSEARCH_DATABASE_URL"}
    env |= {"MMSEARCH_HOME": str(home), "CI": "1"}
    cmd = cli("ingest", str(tmp_path), "-c", "pgkill")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    done = 0
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            done = query(url, "SELECT count(*) FROM mmsearch.record")[0][0]
        except psycopg.errors.UndefinedTable:
            done = 0  # the CLI has not created the schema yet
        if done >= 5:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the ingest finished before the kill"
    postmaster = int((home / "pg" / "postmaster.pid").read_text().splitlines()[0])
    os.kill(postmaster, signal.SIGKILL)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode in (1, 2), (out, err)
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    # the next command restarts the server (crash recovery replays the WAL) and finishes
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    url = embedded.running_url(home / "pg")
    assert url is not None
    found = check_integrity(url, "pgkill", versions)
    assert (found.records, found.partial, found.mixed, found.orphans) == (40, [], [], 0)
    assert found.leftovers == []
    print(f"\nkilled postgres after {done} records; rerun: {rerun.stdout.strip()}")


# -- two ingests at once ---------------------------------------------------------------


def test_two_overlapping_ingests_at_once(client: Client, tmp_path: Path) -> None:
    """Both start on the same 20 shared files: each file is stored once, nobody errors."""
    rng = random.Random(5)
    files = []
    for i in range(50):
        path = tmp_path / f"doc{i:02}.txt"
        write_text(path, rng)
        files.append(str(path))
    shared, only_a, only_b = files[:20], files[20:35], files[35:]
    env = {**os.environ, "MMSEARCH_DATABASE_URL": client.db.dsn, "CI": "1"}
    procs = [
        subprocess.Popen(
            cli("ingest", *paths, "-c", "race", "--json"),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for paths in (shared + only_a, shared + only_b)
    ]
    results = [p.communicate(timeout=600) for p in procs]
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert "deadlock" not in err.lower() and "unique" not in err.lower(), err
    a, b = (json.loads(out.strip().splitlines()[-1]) for out, _ in results)
    assert a["failed"] == b["failed"] == 0
    assert a["ingested"] + b["ingested"] == len(files)
    assert a["unchanged"] + b["unchanged"] == len(shared)
    assert a["ingested"] >= len(only_a) and b["ingested"] >= len(only_b)
    dsn = client.db.dsn
    uris = [
        uri
        for (uri,) in query(
            dsn,
            "SELECT r.uri FROM mmsearch.record r JOIN mmsearch.collection c"
            " ON c.id = r.collection_id WHERE c.name = 'race'",
        )
    ]
    assert sorted(uris) == sorted(files)  # no duplicates, none missing
    versions = {sha256(Path(f)): Path(f).read_text() for f in files}
    found = check_integrity(dsn, "race", versions)
    assert (found.partial, found.mixed, found.orphans, found.leftovers) == ([], [], 0, [])
    print(f"\nrace: a={a['ingested']}+{a['unchanged']} b={b['ingested']}+{b['unchanged']}")


def test_integrity_check_catches_partial_and_mixed_records(client: Client, tmp_path: Path) -> None:
    """The checker the crash tests rely on must see damage when there is some."""
    rng = random.Random(9)
    doc = tmp_path / "whole.txt"
    write_text(doc, rng)
    while len(doc.read_text()) < 2500:  # long enough for several chunks
        write_text(doc, rng)
    versions = {sha256(doc): doc.read_text()}
    client.ingest([doc], collection="damaged")
    dsn = client.db.dsn
    assert check_integrity(dsn, "damaged", versions).partial == []
    query(
        dsn,
        "UPDATE mmsearch.segment SET content = 'not from this file' WHERE record_id ="
        " (SELECT id FROM mmsearch.record WHERE uri = %s) AND ordinal = 0 RETURNING id",
        str(doc),
    )
    assert check_integrity(dsn, "damaged", versions).mixed == [str(doc)]
    query(
        dsn,
        "DELETE FROM mmsearch.segment WHERE record_id ="
        " (SELECT id FROM mmsearch.record WHERE uri = %s) AND ordinal = 1 RETURNING id",
        str(doc),
    )
    assert check_integrity(dsn, "damaged", versions).partial == [str(doc)]
