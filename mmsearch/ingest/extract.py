"""Dispatch a detected file to its modality's extractor, with the shared helpers built once."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmsearch.ingest.types import Extracted, ExtractError

#: length of the sound windows audio spaces embed, seconds
WINDOW_S = 10.0

if TYPE_CHECKING:
    from mmsearch.config import Settings
    from mmsearch.embed.registry import Embedders
    from mmsearch.ingest.detect import Detected


class Extractors:
    """Dispatch to the modality extractors; OCR, transcriber and chunker are built once.

    Needs the settings (limits, transcriber, where thumbnails go) and the embedders only to
    size text chunks for the text model and to know whether any space embeds sound.
    """

    def __init__(self, settings: Settings, embedders: Embedders) -> None:
        self.settings = settings
        self.embedders = embedders
        self._ocr: Any = None
        self._chunker: Any = None
        self._transcriber: Any = None

    def extract(self, path: Path, detected: Detected, sha256: str = "") -> Extracted:
        settings = self.settings
        if detected.media_type == "text":
            from mmsearch.ingest.text import extract_text

            return extract_text(path, detected, self.chunker, ocr=self.ocr)
        if detected.media_type == "image":
            from mmsearch.ingest.image import extract_image

            return extract_image(path, detected, self.ocr, max_pixels=settings.max_image_pixels)
        if detected.media_type in ("audio", "video"):
            check_duration(path, settings.max_duration_s)
        if detected.media_type == "audio":
            from mmsearch.ingest.audio import extract_audio

            return extract_audio(path, detected, self.transcriber, window_s=self.window_s)
        from mmsearch.ingest.video import extract_video

        thumbs = settings.thumbs_dir(sha256) if sha256 else None
        return extract_video(path, detected, self.transcriber, self.ocr, thumbs_dir=thumbs)

    def extract_media(self, path: Path, detected: Detected) -> Extracted:
        """Pictures and sound only: no OCR, no speech, no thumbnails. The image, shot and
        window segments come out as `extract` makes them (same kinds, times and order), for
        a backfill that embeds them again in a new space."""
        if detected.media_type == "image":
            from mmsearch.ingest.image import extract_image

            return extract_image(path, detected, None, max_pixels=self.settings.max_image_pixels)
        if detected.media_type == "audio":
            from mmsearch.ingest.audio import extract_audio

            return extract_audio(path, detected, None, window_s=WINDOW_S)
        if detected.media_type == "video":
            from mmsearch.ingest.video import extract_video

            return extract_video(path, detected, None, None)
        raise ExtractError(f"{detected.media_type} files have no pictures or sound")

    @property
    def window_s(self) -> float | None:
        """Sound windows only pay off when some space embeds audio."""
        return WINDOW_S if self.embedders.supporting("audio") else None

    @property
    def transcriber(self) -> Any:
        if self._transcriber is None:
            from mmsearch.ingest.transcribe import Transcriber

            self._transcriber = Transcriber(**self.settings.transcriber)
        return self._transcriber

    @property
    def ocr(self) -> Any:
        if self._ocr is None:
            from mmsearch.ingest.ocr import OcrEngine

            self._ocr = OcrEngine()
        return self._ocr

    @property
    def chunker(self) -> Any:
        if self._chunker is None:
            from mmsearch.ingest.chunking import Chunker

            # sized for the text space's model; without one, words stand in for tokens
            text = self.embedders.get("text") if "text" in self.embedders.names() else None
            counter = getattr(text, "count_tokens", None) or (lambda s: len(s.split()))
            limit = min(getattr(text, "max_tokens", 256), 256)
            self._chunker = Chunker(counter, max_tokens=limit - 16, overlap_tokens=32)
        return self._chunker


def check_duration(path: Path, limit_s: float) -> None:
    """Refuse a recording longer than the limit before decoding any of it."""
    from mmsearch.ingest.media import probe

    declared = probe(path).duration_s
    if declared is not None and declared > limit_s:
        raise ExtractError(
            f"lasts {_span(declared)}, over the {_span(limit_s)} limit (MMSEARCH_MAX_DURATION_S)",
            stage="limit",
        )


def _span(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def extract_query_file(path: Path, extractors: Extractors) -> Extracted:
    """Decode a query-by-example file like an ingested one; problems are one-line user errors."""
    from mmsearch.errors import UserError
    from mmsearch.ingest.detect import detect

    if not path.is_file():
        raise UserError(f"query file not found: {path}")
    detected = detect(path)
    if detected is None:
        raise UserError(f"cannot search by {path.name}: unsupported file type")
    try:
        return extractors.extract(path, detected)
    except ExtractError as exc:
        raise UserError(f"cannot read query file {path.name}: {exc}") from None
