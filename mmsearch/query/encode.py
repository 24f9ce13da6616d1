"""Turn a query into what the SQL search takes: keyword text, one vector per space, or the
id of a segment to search "more like".

Only the spaces that can encode the query load their models (`Embedders.supporting` reads
what each space takes from its embedder class). A "more like this segment" query needs no
model at all: the database reads the segment's stored vectors itself, as the caller.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from mmsearch.embed.base import normalize
from mmsearch.errors import UserError

if TYPE_CHECKING:
    from mmsearch.embed.registry import Embedders
    from mmsearch.ingest.types import Extracted
    from mmsearch.query.request import SearchOptions


def encode(
    embedders: Embedders,
    subject: str | Extracted | int,
    options: SearchOptions,
    registered: Collection[str],
    limits: Mapping[str, Any],
) -> dict[str, Any]:
    """The query fields of a search request: `query`, `vectors`, `like_segment`, `spaces`."""
    spaces = _spaces(embedders, options, registered)
    if isinstance(subject, bool):
        raise TypeError("a query is text, a Path or a segment id, not a bool")
    if isinstance(subject, int):
        return {"like_segment": subject, "spaces": spaces}
    if isinstance(subject, str):
        text = subject.strip()
        if not text:
            raise UserError("empty query")
        if "\x00" in text:  # PostgreSQL text cannot hold it, and no content contains it
            raise UserError("the query contains a NUL character")
        vectors = {} if options.mode == "keyword" else _encode_text(embedders, text, spaces)
    else:
        text = _example_text(subject, limits) if subject.media_type == "text" else ""
        vectors = {} if options.mode == "keyword" else _encode_example(embedders, subject, spaces)
    query = text if text and options.mode != "vector" else None
    if not vectors and query is None:
        raise UserError("no search leg applies to this query (no space encodes it)")
    return {
        "query": query,
        "vectors": {name: vector.tolist() for name, vector in vectors.items()} or None,
    }


def _spaces(embedders: Embedders, options: SearchOptions, registered: Collection[str]) -> list[str]:
    """The spaces a query may use: those asked for, else every configured one in the database."""
    available = [name for name in embedders.names() if name in registered]
    if not options.spaces:
        return available
    for name in options.spaces:
        if name not in available:
            raise UserError(
                f"cannot search space {name!r}: configured and registered are"
                f" {', '.join(available) or 'none'}"
            )
    return list(options.spaces)


def _encode_text(embedders: Embedders, text: str, names: list[str]) -> dict[str, np.ndarray]:
    takes_text = set(embedders.supporting("text", query=True))
    return {
        name: embedders.get(name).encode_texts([text], query=True)[0]
        for name in names
        if name in takes_text
    }


def _encode_example(
    embedders: Embedders, extracted: Extracted, names: list[str]
) -> dict[str, np.ndarray]:
    """Query by example: every space that takes the example's modality as a query, its
    segments' vectors pooled into one."""
    from mmsearch.ingest.embedding import embed_segments

    takes_it = set(embedders.supporting(extracted.media_type, query=True))
    out: dict[str, np.ndarray] = {}
    for name in names:
        if name not in takes_it:
            continue
        vectors = [v for _, v in embed_segments(embedders.get(name), extracted.segments)]
        if vectors:
            out[name] = normalize(np.mean(vectors, axis=0, keepdims=True))[0]
    return out


def _example_text(extracted: Extracted, limits: Mapping[str, Any]) -> str:
    """The start of an example document, as much as the keyword leg takes."""
    words = " ".join(s.content or "" for s in extracted.segments).split()
    text = " ".join(words[: int(limits["max_keyword_terms"])])
    return text[: int(limits["max_query_chars"])]


def encode_for_space(embedders: Embedders, subject: str | Extracted, space: str) -> np.ndarray:
    """One query's vector in one space (`mmsearch encode`), or a one-line error."""
    embedders.spec(space)
    if isinstance(subject, str):
        if not subject.strip():
            raise UserError("empty query")
        vectors = _encode_text(embedders, subject, [space])
        modality = "text"
    else:
        vectors = _encode_example(embedders, subject, [space])
        modality = subject.media_type
    if space not in vectors:
        raise UserError(f"space {space!r} does not encode {modality} queries")
    return vectors[space]
