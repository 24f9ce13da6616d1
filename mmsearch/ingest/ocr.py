"""Text in images (photos, screenshots, scanned PDF pages) via the OCR models that ship
inside the rapidocr-onnxruntime wheel, so no system tesseract and no download is needed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from mmsearch.ingest import limits

if TYPE_CHECKING:
    from PIL.Image import Image


@dataclass(frozen=True)
class OcrResult:
    """Recognised lines in reading order, joined by newlines; `confidence` is their mean."""

    text: str
    confidence: float
    lines: tuple[str, ...]


@dataclass(frozen=True)
class _Box:
    top: float
    bottom: float
    left: float
    text: str
    score: float


@cache
def _engine() -> Any:
    """One RapidOCR per process: loading its three ONNX sessions takes about a second."""
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR()


# RapidOCR promises no thread safety, and ONNX Runtime already uses every core for one call
_lock = threading.Lock()


class OcrEngine:
    """Reads text from images; cheap to construct, the model loads on first use.

    Boxes recognised with less than `min_confidence` are dropped: on photos without text the
    detector still finds texture and the recogniser returns short garbage for it.
    """

    def __init__(self, min_confidence: float = 0.6) -> None:
        self.min_confidence = min_confidence

    def read(self, image: Image) -> OcrResult:
        """OCR an image (any PIL mode); an image without legible text gives empty text."""
        limits.check()
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        with _lock:
            raw, _ = _engine()(rgb)
        boxes = [
            _Box(
                top=min(y for _, y in points),
                bottom=max(y for _, y in points),
                left=min(x for x, _ in points),
                text=text.strip(),
                score=float(score),
            )
            for points, text, score in raw or []
            if float(score) >= self.min_confidence and text.strip()
        ]
        lines = tuple(" ".join(b.text for b in row) for row in _rows(boxes))
        confidence = sum(b.score for b in boxes) / len(boxes) if boxes else 0.0
        return OcrResult("\n".join(lines), confidence, lines)


def _rows(boxes: list[_Box]) -> list[list[_Box]]:
    """Group boxes into lines (vertical centres within half a box height), top to bottom,
    each left to right: RapidOCR may split one printed line into several boxes."""
    rows: list[list[_Box]] = []
    for box in sorted(boxes, key=lambda b: (b.top + b.bottom) / 2):
        centre = (box.top + box.bottom) / 2
        if rows:
            row = rows[-1]
            row_centre = sum((b.top + b.bottom) / 2 for b in row) / len(row)
            row_height = sum(b.bottom - b.top for b in row) / len(row)
            if abs(centre - row_centre) <= max(row_height, box.bottom - box.top) / 2:
                row.append(box)
                continue
        rows.append([box])
    return [sorted(row, key=lambda b: b.left) for row in rows]
