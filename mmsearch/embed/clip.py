"""Image–text dual encoders from the hub (CLIP, SigLIP) through transformers.

No package ships such weights, so these spaces are opt-in by configuration, e.g.
`openai/clip-vit-base-patch32` or `google/siglip-base-patch16-224`, or a local directory
holding a saved checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from mmsearch.embed.base import Embedder, Modality, normalize, register

if TYPE_CHECKING:
    from PIL.Image import Image

#: model types trained on text padded to the full context, which must be encoded the same way
_MAX_LENGTH_PADDING = frozenset({"siglip", "siglip2"})


def projected(output: Any) -> Any:
    """The projected embedding of a `get_*_features` call.

    transformers 4.x returns the tensor itself; 5.x returns an output object whose
    `pooler_output` holds the projection.
    """
    return getattr(output, "pooler_output", output)


@register("clip")
class ClipEmbedder(Embedder):
    """A CLIP or SigLIP checkpoint: images are documents; text or an image is the query.

    Both towers project into one space, so a text query ranks images directly and an
    image query finds similar images.
    """

    modalities: ClassVar[frozenset[Modality]] = frozenset({"image"})
    query_modalities: ClassVar[frozenset[Modality]] = frozenset({"text", "image"})
    batch_size: ClassVar[int] = 32

    def __init__(self, model: str = "openai/clip-vit-base-patch32", *, revision: str | None = None):
        from transformers import AutoModel, AutoProcessor

        # float32 whatever the checkpoint stores: half precision is slow or unsupported on CPU.
        self._model = AutoModel.from_pretrained(model, revision=revision).float().eval()
        if not all(hasattr(self._model, m) for m in ("get_text_features", "get_image_features")):
            raise ValueError(f"{model!r} is not an image–text dual encoder such as CLIP or SigLIP")
        self._processor = AutoProcessor.from_pretrained(model, revision=revision)
        self.model_id = model
        self.revision = revision or "main"
        config = self._model.config
        # CLIP projects both towers to projection_dim; SigLIP has no projection and its
        # towers meet at the vision width.
        self.dim = int(getattr(config, "projection_dim", None) or config.vision_config.hidden_size)
        self._model_type = config.model_type
        self._max_length = int(config.text_config.max_position_embeddings)

    def encode_texts(self, texts: Sequence[str], *, query: bool = False) -> np.ndarray:
        """Queries and documents share one text tower, so `query` changes nothing here."""
        if self._model_type == "siglip2":
            # SigLIP 2 was trained on lowercased text.
            texts = [t.lower() for t in texts]
        padding = "max_length" if self._model_type in _MAX_LENGTH_PADDING else True
        return self._encode(
            texts,
            lambda batch: self._processor.tokenizer(
                list(batch),
                padding=padding,
                truncation=True,
                max_length=self._max_length,
                return_tensors="pt",
            ),
            self._model.get_text_features,
            keep=("input_ids", "attention_mask"),
        )

    def encode_images(self, images: Sequence[Image]) -> np.ndarray:
        return self._encode(
            images,
            lambda batch: self._processor.image_processor(list(batch), return_tensors="pt"),
            self._model.get_image_features,
        )

    def _encode(
        self,
        items: Sequence[Any],
        prepare: Callable[[Sequence[Any]], Mapping[str, Any]],
        features: Callable[..., Any],
        keep: tuple[str, ...] | None = None,
    ) -> np.ndarray:
        """Run one tower over `items` in batches; `keep` drops inputs the tower does not take."""
        import torch

        if len(items) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = []
        with torch.inference_mode():
            for start in range(0, len(items), self.batch_size):
                inputs = prepare(items[start : start + self.batch_size])
                if keep is not None:
                    inputs = {k: v for k, v in inputs.items() if k in keep}
                parts.append(projected(features(**inputs)).float().numpy())
        return normalize(np.concatenate(parts))
