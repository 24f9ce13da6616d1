"""Searches keep answering while an ingest writes to the same collection.

Ingest holds one short transaction per record and an advisory lock per uri; readers take
no locks that conflict with those, so a search must never fail or block behind a write.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mmsearch.client import Client

pytestmark = pytest.mark.model

THREADS = 3
QUERIES = ["harbour lantern", "copper violin", "glacier orchard", "thunder"]
WORDS = ["harbour", "lantern", "copper", "meadow", "violin", "glacier", "orchard", "thunder"]


def well_formed(hit: object, collection: str) -> bool:
    """The fields a caller relies on are present and of the right type."""
    return (
        isinstance(hit.record_id, int)
        and isinstance(hit.segment_id, int)
        and hit.collection == collection
        and isinstance(hit.uri, str)
        and hit.uri.endswith(".txt")
        and hit.media_type == "text"
        and isinstance(hit.score, float)
        and hit.score > 0
        and isinstance(hit.ranks, dict)
        and bool(hit.ranks)
    )


def test_searches_answer_while_an_ingest_runs(client: Client, tmp_path: Path) -> None:
    seed = tmp_path / "seed.txt"
    seed.write_text("harbour lantern copper violin glacier orchard thunder meadow")
    assert client.ingest([seed], collection="live").ingested == 1
    client.search("warm up the models", collection="live", k=5)
    folder = tmp_path / "incoming"
    folder.mkdir()
    for i in range(60):
        words = [WORDS[(i * 7 + j) % len(WORDS)] for j in range(30 + 5 * (i % 9))]
        (folder / f"doc{i:02}.txt").write_text(" ".join(words))
    env = {**os.environ, "MMSEARCH_DATABASE_URL": client.db.dsn, "CI": "1"}
    ingest = subprocess.Popen(
        [sys.executable, "-m", "mmsearch", "ingest", str(folder), "-c", "live", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stop = threading.Event()
    errors: list[str] = []
    malformed: list[str] = []
    answered = [0] * THREADS
    records_seen: set[int] = set()

    def searcher(index: int) -> None:
        n = 0
        while not stop.is_set():
            try:
                hits = client.search(QUERIES[(index + n) % len(QUERIES)], collection="live", k=5)
            except Exception as exc:  # any failure at all is what this test looks for
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            finally:
                n += 1
            answered[index] += 1
            if not hits:
                malformed.append("no hits although the seed record matches")
            malformed.extend(repr(h) for h in hits if not well_formed(h, "live"))
            records_seen.update(h.record_id for h in hits)

    threads = [threading.Thread(target=searcher, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    try:
        _out, err = ingest.communicate(timeout=90)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        if ingest.poll() is None:
            ingest.kill()
    assert ingest.returncode == 0, err
    assert errors == []
    assert malformed == []
    assert min(answered) > 0, answered
    assert len(records_seen) > 1  # searches saw records the running ingest had committed
    print(f"\nsearches answered during the ingest: {sum(answered)} ({answered}), 0 errors")
