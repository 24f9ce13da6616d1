"""The one small interface every embedder implements, and the registry that names them.

A space in the database is backed by exactly one embedder; the embedder's `model_id`
and `revision` are recorded with the space, so a model change becomes a new space and
vectors of two models never share a column.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np

if TYPE_CHECKING:
    from PIL.Image import Image

Modality = Literal["text", "image", "audio", "video"]
Distance = Literal["cosine", "ip", "l2"]


class Embedder(ABC):
    """Maps documents of some modalities (and queries of some modalities) into one space.

    Subclasses set the class attributes and implement the `encode_*` methods for the
    modalities they declare. Heavy libraries are imported inside `__init__`, never at
    module import, so `import mmsearch` stays fast.
    """

    model_id: ClassVar[str]
    revision: ClassVar[str] = "packaged"
    #: modalities whose documents this embedder can place in the space
    modalities: ClassVar[frozenset[Modality]]
    #: modalities a query may have (e.g. text queries into an image space)
    query_modalities: ClassVar[frozenset[Modality]]
    dim: ClassVar[int]
    distance: ClassVar[Distance] = "cosine"
    batch_size: ClassVar[int] = 32
    #: Similarity under which a query match in this space is noise, not a weak hit. Vector
    #: legs always return their k nearest; without a floor a leg with nothing relevant
    #: still hands rank 1 to something and fusion rewards it. None: no floor.
    min_similarity: ClassVar[float | None] = None

    def supports(self, modality: Modality, *, query: bool = False) -> bool:
        return modality in (self.query_modalities if query else self.modalities)

    def encode_texts(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        """Return a float32 array of shape (len(texts), dim)."""
        raise NotImplementedError(f"{type(self).__name__} does not encode text")

    def encode_images(self, images: Sequence[Image]) -> np.ndarray:
        """Return a float32 array of shape (len(images), dim); images are RGB PIL images."""
        raise NotImplementedError(f"{type(self).__name__} does not encode images")

    def encode_audio(self, clips: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
        """Return a float32 array of shape (len(clips), dim); clips are mono float32 PCM."""
        raise NotImplementedError(f"{type(self).__name__} does not encode audio")


EmbedderFactory = Callable[..., Embedder]
_REGISTRY: dict[str, EmbedderFactory] = {}


def register(name: str) -> Callable[[EmbedderFactory], EmbedderFactory]:
    """Class decorator: make an embedder family selectable by `name` in configuration."""

    def wrap(factory: EmbedderFactory) -> EmbedderFactory:
        _REGISTRY[name] = factory
        return factory

    return wrap


def factory(name: str) -> EmbedderFactory:
    from mmsearch.embed import load_builtin_families

    load_builtin_families()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise KeyError(f"unknown embedder family {name!r} (known: {known})") from None


def mono_clip(clip: np.ndarray, index: int) -> np.ndarray:
    """A clip as float32 mono PCM, or a ValueError that says which clip is wrong."""
    clip = np.asarray(clip, dtype=np.float32)
    if clip.ndim != 1 or clip.size == 0:
        raise ValueError(f"audio clip {index} must be non-empty mono PCM, got {clip.shape}")
    return clip


def normalize(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise rows (cosine spaces store unit vectors so ip and cosine agree)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
