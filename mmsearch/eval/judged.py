"""The shape of a judged query set: documents to ingest, queries, and what is relevant.

Every set is built by a script from data other people made and labelled. Documents are
files under opaque names (`<doc id><suffix>`, the id never derived from the original
name), so a file name cannot leak the answer; a query is a text or an example file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Mode = Literal["keyword", "vector", "hybrid"]
TEXT_MODES: tuple[Mode, ...] = ("keyword", "vector", "hybrid")
#: a query by example (a file) has no words for a keyword leg
EXAMPLE_MODES: tuple[Mode, ...] = ("vector",)


class DataUnavailable(RuntimeError):
    """A set's source (a Debian package, a wheel) cannot be fetched on this machine."""


@dataclass(frozen=True)
class Judgment:
    """One relevant document; `span` (seconds) is where in it the answer is, if timed."""

    doc: str
    grade: int = 1
    span: tuple[float, float] | None = None


@dataclass(frozen=True)
class Query:
    qid: str
    relevant: tuple[Judgment, ...]
    text: str | None = None
    #: a query by example: search for what is like this file
    example: Path | None = None


@dataclass
class JudgedSet:
    """A corpus and its judged queries, ready to ingest into one collection."""

    #: short id, also the collection name: "text-image", "text-speech", ...
    name: str
    #: how the set was built, in a sentence or two, for the report
    description: str
    #: opaque doc id → file to ingest (its stem is the doc id)
    documents: dict[str, Path]
    queries: list[Query]
    modes: tuple[Mode, ...] = TEXT_MODES
    #: a document is "found at the right time" when a hit's start_s lies in the judged span
    #: widened by this many seconds on each side (segments are cut at their own boundaries)
    span_tolerance_s: float = 1.0
    #: the name of an earlier set with the same documents: search its collection instead of
    #: ingesting them again
    reuses: str | None = None

    @property
    def collection(self) -> str:
        return self.reuses or self.name


def opaque_id(prefix: str, content: bytes) -> str:
    """A content-derived id: identical files from two sources merge, names never show."""
    return f"{prefix}-{hashlib.sha256(content).hexdigest()[:16]}"


def query_id(text: str) -> str:
    return "q-" + hashlib.sha256(text.encode()).hexdigest()[:10]
