"""Real media for tests, made from installed packages at test time (nothing committed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def photo(name: str) -> Image.Image:
    """A scikit-image sample photo (chelsea, astronaut, coffee, rocket, camera, …) as RGB."""
    from skimage import data

    return Image.fromarray(np.asarray(getattr(data, name)())).convert("RGB")


def write_photo(path: Path, name: str, *, quality: int = 90) -> Path:
    photo(name).save(path, quality=quality)
    return path


def write_text_image(path: Path, lines: list[str]) -> Path:
    """A 'slide' with dark text on white, large enough for OCR."""
    image = Image.new("RGB", (1000, 110 * len(lines) + 60), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=48)
    for i, line in enumerate(lines):
        draw.text((40, 40 + 110 * i), line, fill="black", font=font)
    image.save(path)
    return path


def write_truncated(path: Path, source: Path, keep: float = 0.4) -> Path:
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path
