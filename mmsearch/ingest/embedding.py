"""Embedding segments: which payload each space takes, batched, pooled per segment."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from mmsearch.embed.base import normalize
from mmsearch.ingest import limits

if TYPE_CHECKING:
    from mmsearch.embed.base import Embedder


def embed_segments(embedder: Embedder, segments: list[Any]) -> Iterator[tuple[int, np.ndarray]]:
    """(segment index, vector) for every segment with a payload this embedder takes.

    Several images of one segment (a shot's keyframes) are mean-pooled, then normalised.
    Each batch is within the file's time and memory budget (`limits.check`).
    """
    if embedder.supports("text"):
        texts = [(i, s.content) for i, s in enumerate(segments) if s.content and s.content.strip()]
        for start in range(0, len(texts), embedder.batch_size):
            limits.check()
            batch = texts[start : start + embedder.batch_size]
            vectors = embedder.encode_texts([t for _, t in batch])
            yield from ((i, v) for (i, _), v in zip(batch, vectors, strict=True))
    if embedder.supports("image"):
        owners = [(i, img) for i, s in enumerate(segments) for img in s.images]
        pooled: dict[int, list[np.ndarray]] = {}
        for start in range(0, len(owners), embedder.batch_size):
            limits.check()
            batch = owners[start : start + embedder.batch_size]
            vectors = embedder.encode_images([img for _, img in batch])
            for (i, _), v in zip(batch, vectors, strict=True):
                pooled.setdefault(i, []).append(v)
        for i, vs in pooled.items():
            yield i, normalize(np.mean(vs, axis=0, keepdims=True))[0]
    if embedder.supports("audio"):
        clips = [(i, s) for i, s in enumerate(segments) if s.audio is not None]
        for start in range(0, len(clips), embedder.batch_size):
            limits.check()
            batch = clips[start : start + embedder.batch_size]
            for rate in {s.sample_rate for _, s in batch}:
                same = [(i, s) for i, s in batch if s.sample_rate == rate]
                vectors = embedder.encode_audio([s.audio for _, s in same], rate)
                yield from ((i, v) for (i, _), v in zip(same, vectors, strict=True))
    limits.check()  # the last batch counts too
