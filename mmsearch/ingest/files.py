"""Walking the inputs of an ingest: which files, in which order, and their content hash."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Candidate:
    """A file to consider, or a path that could not be walked (`problem` says why)."""

    path: Path
    problem: str | None = None


def walk(paths: list[Path], *, recursive: bool = True) -> Iterator[Candidate]:
    """Files under `paths` in a stable order; hidden entries skipped, symlinked dirs not followed.

    Paths are made absolute (not resolved): the uri a user sees is the path they gave.
    """
    seen: set[Path] = set()
    for given in paths:
        path = Path(os.path.abspath(given))
        if path.is_dir():
            if not recursive:
                entries = sorted(p for p in path.iterdir() if p.is_file())
                yield from _unique(entries, seen)
                continue
            for root, dirs, files in os.walk(path, followlinks=False):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                entries = [Path(root) / f for f in sorted(files) if not f.startswith(".")]
                yield from _unique(entries, seen)
        elif path.exists():
            yield from _unique([path], seen)
        elif path.is_symlink():
            yield Candidate(path, "broken symbolic link")
        else:
            yield Candidate(path, "no such file or directory")


def _unique(entries: list[Path], seen: set[Path]) -> Iterator[Candidate]:
    for entry in entries:
        if entry not in seen:
            seen.add(entry)
            yield _candidate(entry)


def _candidate(entry: Path) -> Candidate:
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
    return Candidate(entry)


def sha256_of(path: Path, chunk: int = 1 << 20) -> tuple[str, int]:
    """Hex digest and size, read in chunks so large media never sit in memory whole."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size
