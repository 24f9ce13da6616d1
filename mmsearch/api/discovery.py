"""How a local CLI finds a running server: `$MMSEARCH_HOME/server.json`, mode 0600.

The server writes its URL, pid, the database it serves (a fingerprint, not the DSN) and its
local key when it starts, and removes the file when it stops. A CLI trusts the file only if
it belongs to the same user, nobody else can read or write it, the pid is alive and the
database is the one the CLI itself would use.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

from mmsearch.config import Settings

SERVER_FILE = "server.json"


@dataclass(frozen=True)
class LocalServer:
    url: str
    pid: int
    database: str
    key: str


def database_fingerprint(settings: Settings) -> str:
    """Which database a process would use, without writing its DSN (and password) down."""
    target = settings.database_url or f"embedded:{settings.pgdata}"
    return hashlib.sha256(target.encode("utf-8")).hexdigest()[:32]


def server_file(settings: Settings) -> Path:
    return settings.home / SERVER_FILE


def publish(settings: Settings, server: LocalServer) -> Path:
    """Write the file atomically, created 0600 (never readable by others, even briefly)."""
    path = server_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{SERVER_FILE}.{os.getpid()}")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(asdict(server), out)
    os.replace(partial, path)
    return path


def withdraw(settings: Settings, pid: int) -> None:
    """Remove the file if it is still ours (a newer server may have replaced it)."""
    found = _read(server_file(settings))
    if found is not None and found.pid == pid:
        server_file(settings).unlink(missing_ok=True)


def find(settings: Settings) -> LocalServer | None:
    """The running server for this home and database, if its file can be trusted."""
    found = _read(server_file(settings))
    if found is None or found.database != database_fingerprint(settings):
        return None
    try:
        os.kill(found.pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, but another user's process: not our server
        return None
    return found


def _read(path: Path) -> LocalServer | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd) as handle:
        info = os.fstat(handle.fileno())
        if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
            return None
        try:
            return LocalServer(**json.load(handle))
        except (ValueError, TypeError):
            return None
