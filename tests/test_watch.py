"""`mmsearch watch`: a watched folder's changes reach the collection, in Python and the CLI.

Each step waits for the report of the pass the change caused and then reads the tables, so
a change the watcher missed, or a pass that did the wrong thing, fails the test.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmsearch.client import Client
from mmsearch.ingest.files import OUTSIDE
from mmsearch.ingest.pipeline import IngestReport

pytestmark = pytest.mark.model

ZEBRA = "Zebras graze on the savanna at dawn; their stripes confuse the lions that hunt them."
GIRAFFE = "Giraffes browse acacia leaves high above the ground with their long necks."
OTTER = "Sea otters float on their backs and crack shellfish open with small stones."
WAIT_S = 120


def records(client: Client, collection: str) -> dict[str, int]:
    with client.db.writer() as conn:
        found = conn.execute(
            "SELECT r.uri, r.id FROM mmsearch.record r JOIN mmsearch.collection c"
            " ON c.id = r.collection_id WHERE c.name = %s",
            (collection,),
        ).fetchall()
    return {Path(uri).name: rid for uri, rid in found}


@pytest.fixture
def watched(client: Client, tmp_path: Path) -> Iterator[tuple[Path, queue.Queue]]:
    """A folder holding zebra.txt, watched into collection "watched" by a thread."""
    folder = tmp_path / "drop"
    folder.mkdir()
    (folder / "zebra.txt").write_text(ZEBRA)
    reports: queue.Queue[IngestReport] = queue.Queue()
    stop = threading.Event()

    def run() -> None:
        for report in client.watch(folder, collection="watched", stop=stop):
            reports.put(report)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield folder, reports
    stop.set()
    thread.join(timeout=WAIT_S)
    assert not thread.is_alive(), "the watcher did not stop"


def test_watch_follows_adds_changes_and_deletes(client: Client, watched, tmp_path: Path) -> None:
    folder, reports = watched
    first = reports.get(timeout=WAIT_S)
    assert (first.ingested, first.failed) == (1, 0)
    zebra_id = records(client, "watched")["zebra.txt"]

    (folder / "giraffe.txt").write_text(GIRAFFE)
    (folder / ".draft.txt").write_text(OTTER)  # hidden: left out, as a folder walk does
    added = reports.get(timeout=WAIT_S)
    assert (added.ingested, added.failed) == (1, 0)
    assert set(records(client, "watched")) == {"zebra.txt", "giraffe.txt"}

    (folder / "zebra.txt").write_text(OTTER)
    changed = reports.get(timeout=WAIT_S)
    assert changed.updated == 1
    assert records(client, "watched")["zebra.txt"] == zebra_id  # the id survives the change

    (folder / "giraffe.txt").unlink()
    removed = reports.get(timeout=WAIT_S)
    assert removed.removed == 1
    assert set(records(client, "watched")) == {"zebra.txt"}

    secret = tmp_path / "secret.txt"
    secret.write_text("The board meets on Friday to approve the acquisition.")
    (folder / "notes.txt").symlink_to(secret)
    linked = reports.get(timeout=WAIT_S)
    assert linked.failed == 1 and OUTSIDE in linked.errors[0]["message"]
    assert "notes.txt" not in records(client, "watched")


def interruptible() -> None:
    """SIGINT back to its default in the child: a test run started in the background (`&` in
    a script, nohup) ignores it, Python then installs no KeyboardInterrupt handler, and the
    watcher would never see the interrupt this test sends."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_watch_command_prints_a_summary_per_pass_and_stops_on_interrupt(
    client: Client, tmp_path: Path
) -> None:
    folder = tmp_path / "inbox"
    folder.mkdir()
    env = {**os.environ, "MMSEARCH_DATABASE_URL": client.db.dsn}
    command = [sys.executable, "-m", "mmsearch", "watch", str(folder), "-c", "cli-watch"]
    with subprocess.Popen(
        [*command, "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=interruptible,
    ) as watcher:
        deadline = threading.Timer(WAIT_S, watcher.kill)  # a hung watcher fails, not hangs
        deadline.start()
        try:
            assert watcher.stdout is not None
            assert json.loads(watcher.stdout.readline())["ingested"] == 0  # the first sync
            (folder / "otter.txt").write_text(OTTER)
            assert json.loads(watcher.stdout.readline())["ingested"] == 1
        finally:
            watcher.send_signal(signal.SIGINT)
            _, stderr = watcher.communicate(timeout=WAIT_S)
            deadline.cancel()
    assert watcher.returncode == 0, stderr
    assert set(records(client, "cli-watch")) == {"otter.txt"}
