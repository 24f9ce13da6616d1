"""Walking the inputs of an ingest: which files, in which order, and their content hash.

A folder being ingested is a boundary: a symbolic link in it that leads outside is not
followed (unless asked), and the check is made again on the file actually opened, so a
file swapped for a link after the walk is refused too. What is extracted is a private copy
made while hashing (`snapshot`): a file that changes meanwhile can never leave the hash of
one version stored with the content of another.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mmsearch.ingest.types import ExtractError

OUTSIDE = "a symbolic link out of the folder being ingested (--follow-symlinks follows it)"


@dataclass(frozen=True)
class Candidate:
    """A file to consider, or a path that could not be walked (`problem` says why)."""

    path: Path
    problem: str | None = None
    #: the resolved folder it was found in, which it must stay inside (None: a named file,
    #: or links may be followed)
    root: Path | None = None


@dataclass(frozen=True)
class Snapshot:
    """A private copy of a file (same name) and the hash and size of exactly its bytes."""

    path: Path
    sha256: str
    size: int


def walk(
    paths: list[Path],
    *,
    recursive: bool = True,
    follow_symlinks: bool = False,
    within: Sequence[Path] = (),
) -> Iterator[Candidate]:
    """Files under `paths` in a stable order; hidden entries skipped, symlinked dirs not
    followed, symlinked files only when they stay in the folder (or `follow_symlinks`).

    A path inside one of the folders `within` (a watched folder's changed files) is held
    to that folder as if it had been found by walking it. Paths are made absolute (not
    resolved): the uri a user sees is the path they gave.
    """
    seen: set[Path] = set()
    for given in paths:
        path = Path(os.path.abspath(given))
        root = None if follow_symlinks else _enclosing(path, within)
        if path.is_dir():
            root = root or (None if follow_symlinks else path.resolve())
            if not recursive:
                entries = sorted(p for p in path.iterdir() if p.is_file())
                yield from _unique(entries, seen, root)
                continue
            for folder, dirs, files in os.walk(path, followlinks=False):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                entries = [Path(folder) / f for f in sorted(files) if not f.startswith(".")]
                yield from _unique(entries, seen, root)
        elif path.exists():
            yield from _unique([path], seen, root)
        elif path.is_symlink():
            yield Candidate(path, "broken symbolic link")
        else:
            yield Candidate(path, "no such file or directory")


def _enclosing(path: Path, folders: Sequence[Path]) -> Path | None:
    """The resolved folder of `folders` that `path` lies in (by its unresolved parents)."""
    for folder in folders:
        absolute = Path(os.path.abspath(folder))
        if path.is_relative_to(absolute):
            return absolute.resolve()
    return None


def _unique(entries: list[Path], seen: set[Path], root: Path | None) -> Iterator[Candidate]:
    for entry in entries:
        if entry not in seen:
            seen.add(entry)
            yield _candidate(entry, root)


def _candidate(entry: Path, root: Path | None) -> Candidate:
    """Refuse up front what would hang (a FIFO blocks `open`) or cannot be stored as a uri
    (a name that is not UTF-8 arrives with surrogate escapes PostgreSQL text cannot hold)."""
    name = str(entry)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(entry).decode("utf-8", "backslashreplace")
        return Candidate(Path(shown), "file name is not valid UTF-8; rename the file")
    try:
        mode = entry.stat().st_mode
    except OSError:
        return Candidate(entry)  # a loop or a vanished file: reading it says why
    if not stat.S_ISREG(mode):
        return Candidate(entry, "not a regular file (a FIFO, socket or device)")
    if root is not None and entry.is_symlink() and not entry.resolve().is_relative_to(root):
        return Candidate(entry, OUTSIDE, root)
    return Candidate(entry, None, root)


def open_regular(path: Path, root: Path | None, max_bytes: int) -> int:
    """A descriptor of `path` to read, refusing what is no longer what the walk saw: not a
    regular file, over `max_bytes`, or (inside a folder being ingested) resolving outside it."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO cannot hang it
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ExtractError("not a regular file (a FIFO, socket or device)", stage="read")
        if info.st_size > max_bytes:
            raise ExtractError(f"file is larger than the {max_bytes}-byte limit", stage="read")
        if root is not None and not _opened_path(fd, path).is_relative_to(root):
            raise ExtractError(OUTSIDE, stage="read")
    except BaseException:
        os.close(fd)
        raise
    return fd


def sha256_of(
    path: Path, root: Path | None = None, max_bytes: int = 1 << 62, chunk: int = 1 << 20
) -> tuple[str, int]:
    """Hex digest and size, read in chunks so large media never sit in memory whole."""
    digest = hashlib.sha256()
    size = 0
    with os.fdopen(open_regular(path, root, max_bytes), "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


@contextmanager
def snapshot(path: Path, root: Path | None, workdir: Path, max_bytes: int) -> Iterator[Snapshot]:
    """A private copy of `path` under `workdir`, hashed while it is copied; removed after."""
    workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=workdir))
    try:
        copy = folder / path.name
        digest, size = hashlib.sha256(), 0
        source = os.fdopen(open_regular(path, root, max_bytes), "rb")
        target = os.fdopen(os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")
        with source, target:
            while block := source.read(1 << 20):
                size += len(block)
                if size > max_bytes:  # it grew since it was opened
                    raise ExtractError(
                        f"file is larger than the {max_bytes}-byte limit", stage="read"
                    )
                digest.update(block)
                target.write(block)
        yield Snapshot(copy, digest.hexdigest(), size)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _opened_path(fd: int, path: Path) -> Path:
    """The real path of an open file (Linux's /proc knows it; elsewhere, resolve the name)."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return path.resolve()
