"""Parts of the service that need no server: discovery of a local server, proxy trust."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from fastapi import HTTPException
from starlette.requests import Request

from mmsearch.api import discovery
from mmsearch.api.auth import ProxyTrust
from mmsearch.config import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.load(home=tmp_path, database_url="postgresql://db.example/one")


def published(settings: Settings, pid: int | None = None) -> Path:
    database = discovery.database_fingerprint(settings)
    server = discovery.LocalServer("http://127.0.0.1:1", pid or os.getpid(), database, "k")
    return discovery.publish(settings, server)


def test_a_local_server_is_found_only_through_a_private_live_file(settings: Settings) -> None:
    path = published(settings)
    assert path.stat().st_mode & 0o777 == 0o600
    assert discovery.find(settings) == discovery.LocalServer(
        "http://127.0.0.1:1", os.getpid(), discovery.database_fingerprint(settings), "k"
    )
    assert "db.example" not in path.read_text()  # the DSN is not written down
    path.chmod(0o644)
    assert discovery.find(settings) is None  # readable by others: not trusted
    path.chmod(0o600)
    other = Settings.load(home=settings.home, database_url="postgresql://db.example/two")
    assert discovery.find(other) is None  # another database
    dead = subprocess.Popen(["true"])
    dead.wait()
    published(settings, dead.pid)
    assert discovery.find(settings) is None  # the server is gone
    discovery.withdraw(settings, os.getpid())
    assert path.exists()  # not ours to remove
    discovery.withdraw(settings, dead.pid)
    assert not path.exists()


def request_from(host: str, headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "method": "GET", "headers": raw, "client": (host, 5000)})


def test_proxy_principals_are_believed_only_from_trusted_addresses() -> None:
    trust = ProxyTrust.parse("X-Mmsearch-Principals", ["10.0.0.0/8", "::1/128"])
    header = {"X-Mmsearch-Principals": "user:alice, group:eng"}
    assert trust.principals(request_from("10.1.2.3", header)) == ("user:alice", "group:eng")
    assert trust.principals(request_from("::1", header)) == ("user:alice", "group:eng")
    assert trust.principals(request_from("192.168.1.5", header)) is None
    assert trust.principals(request_from("10.1.2.3", {})) is None
    with pytest.raises(HTTPException) as refused:
        trust.principals(request_from("10.1.2.3", {"X-Mmsearch-Principals": "user:a,admin"}))
    assert refused.value.status_code == 400
