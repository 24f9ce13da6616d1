"""A real `mmsearch serve` process over a small corpus with two audiences, for the API and
browser tests (a pytest plugin: `pytest_plugins` in conftest.py).

group:eng sees a cat photo, a video whose shot at 6-9 s shows the cat, a note about grease
fires and an HTML page; group:board sees a rocket photo, a video of the rocket and the
merger minutes. The server runs in its own MMSEARCH_HOME (keyframes live under it), on a
free port, with real models; tokens come from the real `mmsearch token add`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg
import pytest

from bench.media import write_video
from mmsearch.client import Client
from mmsearch.config import Settings
from mmsearch.db import schema
from mmsearch.db.engine import Database
from tests.media import photo, write_photo

VIDEO_SIZE = (640, 360)
CAT_SHOT_S = (6.0, 9.0)
STARTUP_TIMEOUT_S = 300


@dataclass(frozen=True)
class ApiServer:
    url: str
    home: Path
    dsn: str
    env: dict[str, str]
    log: Path
    local_key: str
    eng_token: str
    board_token: str
    corpus: Path

    def cli(self, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mmsearch", *args],
            env={**self.env, **extra_env},
            capture_output=True,
            text=True,
            timeout=600,
        )

    def one(self, query: str, *params: object) -> object:
        """One value from the database, as the owner (test set-up facts, not the API)."""
        with psycopg.connect(self.dsn) as conn:
            row = conn.execute(query, params).fetchone()
        assert row is not None, query
        return row[0]

    def record_id(self, name: str) -> int:
        return int(self.one("SELECT id FROM mmsearch.record WHERE uri LIKE %s", f"%/{name}"))

    def segment_id(self, name: str, kind: str, start_s: float | None = None) -> int:
        return int(
            self.one(
                "SELECT s.id FROM mmsearch.segment s JOIN mmsearch.record r ON r.id = s.record_id"
                " WHERE r.uri LIKE %s AND s.kind = %s"
                " AND (%s::float8 IS NULL OR s.start_s = %s::float8) ORDER BY s.ordinal LIMIT 1",
                f"%/{name}",
                kind,
                start_s,
                start_s,
            )
        )


def build_corpus(root: Path) -> tuple[Path, Path]:
    eng, board = root / "eng", root / "board"
    eng.mkdir(parents=True)
    board.mkdir()
    write_photo(eng / "IMG_0001.jpg", "chelsea")
    write_photo(board / "IMG_0002.jpg", "rocket")
    shots = [("astronaut", 3.0), ("coffee", 3.0), ("chelsea", 3.0), ("camera", 3.0)]
    pictures = [(np.asarray(photo(name).resize(VIDEO_SIZE)), s) for name, s in shots]
    write_video(eng / "clip.mp4", pictures, fps=10)
    rocket = [(np.asarray(photo(n).resize(VIDEO_SIZE)), 3.0) for n in ("rocket", "coffee")]
    write_video(board / "launch.mp4", rocket, fps=10)
    (eng / "fire.txt").write_text(
        "How to put out a grease fire in the kitchen: cover the pan with a lid, turn off the"
        " stove and never pour water on burning oil."
    )
    (eng / "notes.html").write_text(
        "<html><body><h1>Release notes</h1><script>alert(1)</script>"
        "<p>The harbour crane schedule moved to Tuesday.</p></body></html>"
    )
    (board / "minutes.txt").write_text(
        "Board minutes: the merger with Contoso is approved. Keep the merger confidential."
    )
    return eng, board


@pytest.fixture(scope="session")
def api_server(server_dsn: str) -> Iterator[ApiServer]:
    from tests.conftest import drop_database, new_database

    root = Path(tempfile.mkdtemp(prefix="mmsapi-", dir="/tmp"))
    home = root / "home"
    dsn = new_database(server_dsn, "api")
    schema.upgrade(dsn)
    eng, board = build_corpus(root / "corpus")
    settings = Settings.load(home=home, database_url=dsn)
    with Client(Database(dsn), settings) as client:
        for folder, group in ((eng, "group:eng"), (board, "group:board")):
            report = client.ingest([folder], collection="web", acl=[group])
            assert report.failed == 0, report
    env = {
        **os.environ,
        "MMSEARCH_HOME": str(home),
        "MMSEARCH_DATABASE_URL": dsn,
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("MMSEARCH_URL", None)
    env.pop("MMSEARCH_TOKEN", None)
    log = root / "serve.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "mmsearch", "serve", "--port", "0", "--max-upload-mb", "1"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        published = _wait_for_server_file(home / "server.json", process, log)
        tokens = {}
        for name, principal in (("eng", "group:eng"), ("board", "group:board")):
            made = subprocess.run(
                [sys.executable, "-m", "mmsearch", "token", "add", name, "--principal", principal],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            tokens[name] = made.stdout.strip().splitlines()[-1]
        yield ApiServer(
            url=published["url"],
            home=home,
            dsn=dsn,
            env=env,
            log=log,
            local_key=published["key"],
            eng_token=tokens["eng"],
            board_token=tokens["board"],
            corpus=root / "corpus",
        )
    finally:
        process.terminate()
        process.wait(timeout=60)
        drop_database(server_dsn, dsn)


def _wait_for_server_file(path: Path, process: subprocess.Popen, log: Path) -> dict:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"mmsearch serve exited {process.returncode}: {log.read_text()}")
        if path.exists():
            return json.loads(path.read_text())
        time.sleep(0.2)
    raise AssertionError(f"mmsearch serve did not start in {STARTUP_TIMEOUT_S} s")
