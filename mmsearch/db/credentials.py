"""Generated passwords, kept in one 0600 JSON file under `$MMSEARCH_HOME`.

The embedded server's owner and the service and ingest logins mmsearch creates on any server
get passwords nobody types; they live here, keyed by server and database, so the next process
finds them. A person's password is printed once by `mmsearch user add` and never stored.
The file is rewritten atomically (write a sibling, rename) under an exclusive lock, so two
processes provisioning at once cannot lose each other's entries.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mmsearch.errors import UserError

FILE_NAME = "credentials.json"


def new_password() -> str:
    """A random password that needs no quoting in a URI, a conninfo string or a shell."""
    return secrets.token_urlsafe(24)


def server_key(params: dict[str, str]) -> str:
    """`host:port` of a DSN's server (libpq's defaults for what it leaves out)."""
    host = params.get("host") or params.get("hostaddr") or "localhost"
    return f"{host}:{params.get('port') or '5432'}"


class CredentialStore:
    """`{server: {database: {login: password}}}` in `path`, readable by its owner only."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def in_home(cls, home: Path) -> CredentialStore:
        return cls(home / FILE_NAME)

    def get(self, server: str, database: str, login: str) -> str | None:
        return self._read().get(server, {}).get(database, {}).get(login)

    def put(self, server: str, database: str, login: str, password: str) -> None:
        with self.edit(server, database) as logins:
            logins[login] = password

    @contextlib.contextmanager
    def edit(self, server: str, database: str) -> Iterator[dict[str, str]]:
        """The `{login: password}` of one database, written back when the block ends; the
        file stays locked meanwhile, so provisioning in two processes happens one at a time."""
        with self._locked():
            data = self._read()
            logins = data.setdefault(server, {}).setdefault(database, {})
            before = dict(logins)
            yield logins
            if logins != before:
                self._write(data)

    def _read(self) -> dict[str, Any]:
        try:
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            return {}
        if mode & 0o077:
            raise UserError(
                f"{self.path} is readable by other users (mode {mode & 0o777:o}); "
                f"run: chmod 600 {self.path}"
            )
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read {self.path}: {exc}") from exc
        return data if isinstance(data, dict) else {}

    def _write(self, data: dict[str, Any]) -> None:
        staging = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(staging, self.path)

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return exclusive_lock(self.path)


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `.<name>.lock` beside `path` (a private 0600 file, never
    followed through a link): one process at a time writes `path` or the folder it names."""
    lock = path.with_name(f".{path.name}.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
