"""The shape of a judged query set: documents, queries, and what is relevant.

Two kinds exist. A user's own judged queries (`load_queries`, a JSON-lines file) name
relevant records by `uri` in a collection that is already ingested. The built-in sets of
`bench.evalsets` ship their documents as files under opaque names (`<doc id><suffix>`, the id
never derived from the original name, so a file name cannot leak the answer), ingested first.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mmsearch.errors import UserError

Mode = Literal["keyword", "vector", "hybrid"]
TEXT_MODES: tuple[Mode, ...] = ("keyword", "vector", "hybrid")
#: a query by example (a file) has no words for a keyword leg
EXAMPLE_MODES: tuple[Mode, ...] = ("vector",)


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

    #: relevant documents are named by the hit's uri (a user's file), not by the file stem
    by_uri: bool = False

    @property
    def collection(self) -> str:
        return self.reuses or self.name

    def doc_id(self, uri: str) -> str:
        """The id under which a hit's record is judged."""
        return uri if self.by_uri else Path(uri).stem


def opaque_id(prefix: str, content: bytes) -> str:
    """A content-derived id: identical files from two sources merge, names never show."""
    return f"{prefix}-{hashlib.sha256(content).hexdigest()[:16]}"


def query_id(text: str) -> str:
    return "q-" + hashlib.sha256(text.encode()).hexdigest()[:10]


def load_queries(path: Path, collection: str) -> JudgedSet:
    """A user's judged queries over an ingested collection, from a JSON-lines file.

    One object per line: `{"query": TEXT}` or `{"like": FILE}` (query by example), an
    optional `"id"`, and `"relevant"`: uris, or objects `{"uri", "grade", "start_s",
    "end_s"}` (grade 1 by default; the span, for audio and video, is where the answer is).
    A malformed line is a one-line error naming the line.
    """
    queries: list[Query] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            queries.append(_query(json.loads(line), number))
        except (ValueError, TypeError, KeyError) as exc:
            raise UserError(f"{path.name} line {number}: {exc}") from None
    if not queries:
        raise UserError(f"{path.name} holds no judged queries")
    text_only = all(q.example is None for q in queries)
    return JudgedSet(
        name=collection,
        description=f"judged queries from {path.name}",
        documents={},
        queries=queries,
        modes=TEXT_MODES if text_only else EXAMPLE_MODES,
        reuses=collection,
        by_uri=True,
    )


def _query(item: dict[str, Any], number: int) -> Query:
    if not isinstance(item, dict) or ("query" in item) == ("like" in item):
        raise ValueError('each line needs exactly one of "query" and "like"')
    relevant = tuple(_judgment(j) for j in item.get("relevant") or ())
    if not relevant:
        raise ValueError('"relevant" names no document')
    qid = str(item.get("id") or f"q{number}")
    if "like" in item:
        return Query(qid, relevant, example=Path(str(item["like"])))
    return Query(qid, relevant, text=str(item["query"]))


def _judgment(item: str | dict[str, Any]) -> Judgment:
    if isinstance(item, str):
        return Judgment(item)
    span = None
    if item.get("start_s") is not None:
        span = (float(item["start_s"]), float(item.get("end_s", item["start_s"])))
    return Judgment(str(item["uri"]), int(item.get("grade", 1)), span)
