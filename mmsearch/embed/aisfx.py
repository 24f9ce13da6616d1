"""Sound-effects embeddings from the `aisfx` wheel (Ma & Lerch, ISMIR 2022), offline.

A CNN trained on sound-effects libraries maps each ~2.3 s block of a log-mel spectrogram
to 512 numbers; a clip's vector is the mean over its blocks (half-overlapping by default,
as in the paper). It places sounds near similar sounds ("more like this"), not near words.

The wheel pins old librosa/numpy, so it is installed with `--no-deps` and its weights are
loaded here with `weights_only=False` (the checkpoint pickles a dict next to the tensors,
which the wheel's own loader cannot read under PyTorch >= 2.6). The spectrogram follows
the wheel's librosa recipe; its model reads time along the first axis, so the librosa
(mels, frames) array is transposed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np

from mmsearch.embed.base import Embedder, Modality, mono_clip, normalize, register
from mmsearch.embed.clap import resample

#: the wheel's analysis settings (aisfx.inference): 44.1 kHz, 2048/1024 STFT, 96 mel bands
SAMPLE_RATE = 44_100
N_FFT, HOP = 2048, 1024
N_MELS = 96
BLOCK_FRAMES = 100  # ≈ 2.3 s
#: the paper's min/max of log-mel values over its training data (spec_norm="original")
SPEC_MAX = 9.457798957824707


@register("aisfx")
class AisfxEmbedder(Embedder):
    """The packaged sound-effects CNN: audio documents, audio queries, 512-d.

    `hop` is the step between a clip's blocks as a fraction of a block: the paper's 0.5,
    or 1.0 for about 40% less work on 10-s clips (the CNN, ~80 ms a block on 2 cores, is
    nearly all the cost).
    """

    model_id: ClassVar[str] = "aisfx/X-Sequential-CE"
    modalities: ClassVar[frozenset[Modality]] = frozenset({"audio"})
    query_modalities: ClassVar[frozenset[Modality]] = frozenset({"audio"})
    dim: ClassVar[int] = 512
    batch_size: ClassVar[int] = 16
    #: spectrogram blocks per forward pass (bounds memory for long clips)
    blocks_per_pass: ClassVar[int] = 64

    def __init__(self, *, hop: float = 0.5) -> None:
        from importlib.metadata import version

        if not 0 < hop <= 1:
            raise ValueError("hop must be in (0, 1]")
        import librosa
        import torch
        from aisfx.inference import get_path_modelWeights, load_bestModel

        weights, datasets = torch.load(
            get_path_modelWeights(), map_location="cpu", weights_only=False
        )
        self._model = load_bestModel(weights, datasets, "cpu")
        # another hop gives other vectors, so it must name another space
        self.revision = version("aisfx") + ("" if hop == 0.5 else f"+hop{hop:g}")
        self._hop = max(1, round(hop * BLOCK_FRAMES))
        # the filterbank is built once: librosa compiles helpers on first use (~2 s)
        self._mel = librosa.filters.mel(
            sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=0.0, fmax=SAMPLE_RATE / 2,
            htk=True, norm=1.0,
        ).astype(np.float32)  # fmt: skip

    @property
    def sample_rate(self) -> int:
        """The rate the model was trained at; `encode_audio` resamples to it."""
        return SAMPLE_RATE

    def encode_audio(self, clips: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
        import torch

        blocks: list[np.ndarray] = []
        owner: list[int] = []
        for index, clip in enumerate(clips):
            clip = mono_clip(clip, index)
            spec = self._spectrogram(resample(clip, sample_rate, SAMPLE_RATE))
            for block in _blocks(spec, self._hop):
                blocks.append(block)
                owner.append(index)
        vectors = np.zeros((len(blocks), self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(blocks), self.blocks_per_pass):
                batch = torch.from_numpy(np.stack(blocks[start : start + self.blocks_per_pass]))
                vectors[start : start + len(batch)] = self._model.get_embedding(batch).numpy()
        pooled = np.zeros((len(clips), self.dim), dtype=np.float32)
        np.add.at(pooled, np.array(owner, dtype=np.int64), vectors)
        return normalize(pooled)

    def _spectrogram(self, clip: np.ndarray) -> np.ndarray:
        """(frames, mels) log-mel as the wheel computes it: peak-normalised input, log10 of
        10^4 power + 1, scaled by the training maximum."""
        import librosa

        peak = float(np.max(np.abs(clip)))
        clip = clip / peak if peak > 0 else clip
        power = np.abs(librosa.stft(clip, n_fft=N_FFT, hop_length=HOP, win_length=N_FFT)) ** 2
        return (np.log10(self._mel @ power * 10_000.0 + 1.0) / SPEC_MAX).T.astype(np.float32)


def _blocks(spec: np.ndarray, hop: int) -> list[np.ndarray]:
    """100-frame blocks every `hop` frames, the last one flush with the end so no tail is
    lost; a clip shorter than one block is zero-padded."""
    if len(spec) <= BLOCK_FRAMES:
        padded = np.zeros((BLOCK_FRAMES, spec.shape[1]), dtype=np.float32)
        padded[: len(spec)] = spec
        return [padded]
    last = len(spec) - BLOCK_FRAMES
    starts = [*range(0, last, hop), last]
    return [spec[s : s + BLOCK_FRAMES] for s in starts]
