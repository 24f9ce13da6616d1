"""A cross-encoder reranker: the query and each candidate's text read together by one model.

A cross-encoder (e.g. `cross-encoder/ms-marco-MiniLM-L-6-v2`, or any local directory of a
sentence-transformers `CrossEncoder`) scores a (query, passage) pair jointly, which a
bi-encoder index cannot. No package ships one, so it is opt-in by configuration:

    [rerank]
    name = "cross-encoder"
    model = "cross-encoder/ms-marco-MiniLM-L-6-v2"

The passage is the hit's segment text (a chunk, a transcript sentence, OCR), read as the
caller; hits without text (a photo, a sound) keep their search rank (see `fuse_orders`).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from mmsearch.rerank import RerankContext, Reranker, fuse_orders, register

if TYPE_CHECKING:
    from mmsearch.query.search import Hit

#: characters of a segment's text given to the model (its input limit is in tokens)
MAX_CHARS = 2000


@register("cross-encoder")
class CrossEncoderReranker(Reranker):
    """Orders candidates by a cross-encoder's score of (query, segment text)."""

    def __init__(
        self,
        model: str = "cross-encoder/ms-marco-MiniLM-L-6-v2",
        *,
        depth: int = 20,
        revision: str | None = None,
        weight: float = 1.0,
        rrf_k: float = 10.0,
    ) -> None:
        super().__init__(depth=depth)
        self.model, self.revision = model, revision
        self.weight, self.rrf_k = weight, rrf_k

    def order(self, query: str, hits: list[Hit], context: RerankContext) -> list[int]:
        with context.db.reader(context.principals) as conn:
            texts = dict(
                conn.execute(
                    "SELECT id, left(content, %s) FROM mmsearch.segment WHERE id = ANY(%s)",
                    (MAX_CHARS, [h.segment_id for h in hits]),
                ).fetchall()
            )
        with_text = [i for i, h in enumerate(hits) if texts.get(h.segment_id)]
        scores: list[float | None] = [None] * len(hits)
        if with_text:
            pairs = [(query, texts[hits[i].segment_id]) for i in with_text]
            for i, score in zip(
                with_text, _model(self.model, self.revision).predict(pairs), strict=True
            ):
                scores[i] = float(score)
        return fuse_orders(scores, self.rrf_k, self.weight)


@cache
def _model(model: str, revision: str | None) -> Any:
    """One model per process and checkpoint."""
    from sentence_transformers import CrossEncoder

    return CrossEncoder(model, device="cpu", revision=revision)
