"""A backfill killed halfway continues where it stopped; searches answer while one runs.

Both need a backfill that lasts: a few thousand stored text segments (written directly, as
a bulk load would) without vectors in the new space, filled by the real text model.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from mmsearch.client import Client
from mmsearch.config import SpaceSpec

pytestmark = pytest.mark.model

RECORDS, PER_RECORD = 20, 30
WORDS = [
    *("harbour", "lantern", "copper", "violin", "meadow", "glacier", "orchard", "thunder"),
    *("kettle", "ferry", "island", "battery", "garden", "tomato", "rocket", "budget"),
]
#: pause between one thread's searches: the point is that none fails, not to starve the run
PAUSE_S = 0.2


@pytest.fixture(scope="module")
def bulk(client: Client) -> int:
    """RECORDS × PER_RECORD short text segments in collection "bulk", without vectors (as
    a bulk load leaves them); returns their count."""
    rng = random.Random(11)
    with client.db.writer() as conn:
        (cid,) = conn.execute(
            "INSERT INTO mmsearch.collection (name) VALUES ('bulk') RETURNING id"
        ).fetchone()
        for r in range(RECORDS):
            (rid,) = conn.execute(
                "INSERT INTO mmsearch.record (collection_id, uri, sha256, media_type, mime, bytes)"
                " VALUES (%s, %s, %s, 'text', 'text/plain', 100) RETURNING id",
                (cid, f"/bulk/doc{r:03}.txt", f"{r:064x}"),
            ).fetchone()
            sentences = [" ".join(rng.choices(WORDS, k=12)) + "." for _ in range(PER_RECORD)]
            conn.cursor().executemany(
                "INSERT INTO mmsearch.segment (record_id, ordinal, kind, content)"
                " VALUES (%s, %s, 'chunk', %s)",
                [(rid, i, text) for i, text in enumerate(sentences)],
            )
    return RECORDS * PER_RECORD


def configured(client: Client, home: Path, name: str) -> tuple[Client, dict[str, str]]:
    """A client and a CLI environment that have space `name` (MiniLM) configured."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(f'[spaces.{name}]\nfamily = "sentence-transformers"\n')
    env = {
        **os.environ,
        "MMSEARCH_DATABASE_URL": client.db.dsn,
        "MMSEARCH_HOME": str(home),
        "CI": "1",
    }
    spaces = (*client.settings.spaces, SpaceSpec(name, "sentence-transformers"))
    return Client(client.db, replace(client.settings, spaces=spaces)), env


def filled(client: Client, name: str) -> int | None:
    """Segments with a vector in `name`, None while the space is not registered yet."""
    from psycopg import sql

    with client.db.writer() as conn:
        if not conn.execute("SELECT 1 FROM mmsearch.space WHERE name = %s", (name,)).fetchone():
            return None
        query = sql.SQL("SELECT count({}) FROM mmsearch.segment").format(
            sql.Identifier(f"{name}_vec")
        )
        return conn.execute(query).fetchone()[0]


def backfill_process(env: dict[str, str], name: str, batch: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mmsearch", "space", "backfill", name, "--batch-size", str(batch)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_killed_backfill_resumes_where_it_stopped(
    client: Client, bulk: int, tmp_path: Path
) -> None:
    grown, env = configured(client, tmp_path / "home", "text_k")
    proc = backfill_process(env, "text_k", 8)
    deadline = time.monotonic() + 900  # a loaded machine loads the model slowly
    while time.monotonic() < deadline and proc.poll() is None:
        if (filled(client, "text_k") or 0) >= 16:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with client.db.writer() as conn:
        kept = conn.execute(
            "SELECT id, text_k_vec::text FROM mmsearch.segment WHERE text_k_vec IS NOT NULL"
        ).fetchall()
    assert 16 <= len(kept) < bulk, "the kill came too late (or too early) to test anything"

    rerun = grown.backfill("text_k")
    assert (rerun.embedded, rerun.skipped) == (bulk - len(kept), 0)
    assert filled(client, "text_k") == bulk
    with client.db.writer() as conn:
        again = conn.execute(
            "SELECT id, text_k_vec::text FROM mmsearch.segment WHERE id = ANY(%s)",
            ([sid for sid, _ in kept],),
        ).fetchall()
    assert sorted(again) == sorted(kept)  # what the killed run wrote was kept, not redone


def test_searches_answer_while_a_backfill_runs(client: Client, bulk: int, tmp_path: Path) -> None:
    grown, env = configured(client, tmp_path / "home", "text_s")
    stop = threading.Event()
    errors: list[str] = []
    answered = {"default": 0, "text_s": 0}
    legs_seen: set[str] = set()

    def searcher(kind: str) -> None:
        spaces = ["text_s"] if kind == "text_s" else None
        n = 0
        while not stop.is_set():
            if kind == "text_s" and filled(client, "text_s") is None:
                time.sleep(0.05)  # the space is registered by the backfill itself
                continue
            query = " ".join(WORDS[(n * 3 + j) % len(WORDS)] for j in range(3))
            n += 1
            try:
                hits = grown.search(query, collection="bulk", spaces=spaces, k=5)
            except Exception as exc:  # any failure at all is what this test looks for
                errors.append(f"{kind}: {type(exc).__name__}: {exc}")
                continue
            answered[kind] += 1
            legs_seen.update(leg for hit in hits for leg in hit.ranks)
            time.sleep(PAUSE_S)

    threads = [threading.Thread(target=searcher, args=(k,)) for k in answered]
    for thread in threads:
        thread.start()
    proc = backfill_process(env, "text_s", 16)
    try:
        _out, err = proc.communicate(timeout=1800)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert errors == []
    assert min(answered.values()) > 0, answered
    assert "text_s" in legs_seen  # the new space answered while it was being filled
    assert filled(client, "text_s") == bulk
    print(f"\nsearches answered during the backfill: {answered}, 0 errors")
