"""What a modality extractor hands to the pipeline: one record's facts and its segments.

Extractors (one module per modality) only decode and segment; the pipeline decides which
spaces embed which payloads, batches the model calls and writes rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy as np
    from PIL.Image import Image

MediaType = Literal["text", "image", "audio", "video"]
SegmentKind = Literal["chunk", "image", "window", "shot", "transcript", "ocr"]


class ExtractError(Exception):
    """A file that cannot be ingested; `stage` names the step that failed (decode, ocr, …).

    The message is one line meant for a user: it lands in `ingest_error.message`.
    """

    def __init__(self, message: str, *, stage: str = "decode") -> None:
        super().__init__(message)
        self.stage = stage


@dataclass
class SegmentDraft:
    """One unit of retrieval before it has ids and vectors.

    `content` is what keyword search and text spaces see. `images` are embedded by image
    spaces (several images, e.g. a shot's keyframes, are pooled into one vector); `audio`
    by audio spaces.
    """

    kind: SegmentKind
    content: str | None = None
    start_s: float | None = None
    end_s: float | None = None
    char_start: int | None = None
    char_end: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    images: list[Image] = field(default_factory=list)
    audio: np.ndarray | None = None
    sample_rate: int | None = None


@dataclass
class Extracted:
    """A decoded file: the record's descriptive columns plus its segments in order."""

    media_type: MediaType
    mime: str
    title: str
    segments: list[SegmentDraft]
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
