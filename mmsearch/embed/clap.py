"""Audio–text dual encoders from the hub (CLAP, e.g. `laion/clap-htsat-unfused`).

Opt-in by configuration like CLIP: no package ships CLAP weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import gcd
from typing import ClassVar

import numpy as np

from mmsearch.embed.base import Embedder, Modality, mono_clip, normalize, register
from mmsearch.embed.clip import projected


def resample(clip: np.ndarray, rate: int, target: int) -> np.ndarray:
    """Polyphase resampling: exact rational ratio and an anti-alias filter when downsampling."""
    if rate == target:
        return clip
    from scipy.signal import resample_poly

    g = gcd(rate, target)
    return resample_poly(clip, target // g, rate // g).astype(np.float32)


@register("clap")
class ClapEmbedder(Embedder):
    """A CLAP checkpoint: audio clips are documents; text or a clip is the query.

    CLAP sees at most `max_length_s` seconds (10 s for LAION's models). Longer clips are
    cut into consecutive pieces of that length whose embeddings are averaged, weighted by
    duration, instead of the processor's random crop, so a clip always gets one vector
    from all of its sound, and the same vector every time.
    """

    modalities: ClassVar[frozenset[Modality]] = frozenset({"audio"})
    query_modalities: ClassVar[frozenset[Modality]] = frozenset({"text", "audio"})
    batch_size: ClassVar[int] = 16

    def __init__(self, model: str = "laion/clap-htsat-unfused", *, revision: str | None = None):
        from transformers import ClapModel, ClapProcessor

        # float32 whatever the checkpoint stores: half precision is slow or unsupported on CPU.
        self._model = ClapModel.from_pretrained(model, revision=revision).float().eval()
        self._processor = ClapProcessor.from_pretrained(model, revision=revision)
        self.model_id = model
        self.revision = revision or "main"
        self.dim = int(self._model.config.projection_dim)
        # RoBERTa positions start after the padding index, so two positions are unusable.
        self._max_tokens = int(self._model.config.text_config.max_position_embeddings) - 2

    @property
    def sample_rate(self) -> int:
        """The rate the model was trained at; `encode_audio` resamples to it."""
        return int(self._processor.feature_extractor.sampling_rate)

    def encode_texts(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        """Queries and documents share one text tower, so `query` changes nothing here."""
        import torch

        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                inputs = self._processor.tokenizer(
                    list(texts[start : start + self.batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=self._max_tokens,
                    return_tensors="pt",
                )
                features = self._model.get_text_features(
                    input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]
                )
                parts.append(projected(features).float().numpy())
        return normalize(np.concatenate(parts))

    def encode_audio(self, clips: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
        import torch

        if len(clips) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        extractor = self._processor.feature_extractor
        piece = int(extractor.nb_max_samples)
        pieces: list[np.ndarray] = []
        owner: list[int] = []
        for index, clip in enumerate(clips):
            clip = mono_clip(clip, index)
            clip = resample(clip, sample_rate, self.sample_rate)
            for start in range(0, len(clip), piece):
                pieces.append(clip[start : start + piece])
                owner.append(index)

        parts = []
        with torch.inference_mode():
            for start in range(0, len(pieces), self.batch_size):
                batch = pieces[start : start + self.batch_size]
                inputs = extractor(batch, sampling_rate=self.sample_rate, return_tensors="pt")
                # No piece exceeds the model's window; say so explicitly, because in "fusion"
                # mode the extractor otherwise flags a random item as longer, which would
                # make a vector depend on chance and on its batch neighbours.
                is_longer = torch.zeros((len(batch), 1), dtype=torch.bool)
                features = self._model.get_audio_features(
                    input_features=inputs["input_features"], is_longer=is_longer
                )
                parts.append(projected(features).float().numpy())
        vectors = normalize(np.concatenate(parts))

        weights = np.array([len(p) for p in pieces], dtype=np.float32)
        pooled = np.zeros((len(clips), self.dim), dtype=np.float32)
        np.add.at(pooled, np.array(owner), vectors * weights[:, None])
        return normalize(pooled)
