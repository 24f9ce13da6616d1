"""Still images: decode safely, orient, flatten to RGB, read any text, keep searchable EXIF.

Untrusted images can be decompression bombs (a few KB that decode to gigabytes) or cut off
mid-stream, so dimensions are checked from the header before any pixel is decoded, and
decoding is forced here so a broken file fails with a clear reason instead of later, inside
an embedder.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmsearch.errors import reason
from mmsearch.ingest.types import Extracted, ExtractError, SegmentDraft

if TYPE_CHECKING:
    from PIL.Image import Exif, Image

    from mmsearch.ingest.detect import Detected
    from mmsearch.ingest.ocr import OcrEngine

#: refuse images above this many pixels (Pillow itself refuses above 2 x its own
#: MAX_IMAGE_PIXELS, about 179 MP, at open; this module never changes that global)
DEFAULT_MAX_PIXELS = 80_000_000
#: the decoded copy kept for embedding and OCR is shrunk to this longest side: image models
#: read a few hundred pixels and the OCR engine rescales to 2000, so more only costs memory
DEFAULT_MAX_SIDE = 2048
CAPTION_CHARS = 200
_ROTATED_ORIENTATIONS = {5, 6, 7, 8}  # EXIF orientations that swap width and height


@dataclass
class Decoded:
    """A decoded picture: RGB (at most `max_side` on its longest side) and its facts."""

    rgb: Image
    width: int
    height: int
    metadata: dict[str, Any]


def extract_image(
    path: str | os.PathLike[str],
    detected: Detected,
    ocr: OcrEngine | None,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_side: int = DEFAULT_MAX_SIDE,
) -> Extracted:
    """One "image" segment carrying the RGB picture, plus an "ocr" segment when it has text.

    `ocr=None` skips text recognition. `width`/`height` are the original, upright size; the
    segment's image is at most `max_side` pixels on its longest side.
    """
    path = Path(path)
    decoded = decode_image(path, max_pixels=max_pixels, max_side=max_side)
    segments = [SegmentDraft(kind="image", images=[decoded.rgb])]
    if ocr is not None:
        segments += _text_segments(decoded.rgb, ocr, segments[0])
    return Extracted(
        media_type="image",
        mime=detected.mime,
        title=path.stem,
        segments=segments,
        width=decoded.width,
        height=decoded.height,
        metadata=decoded.metadata,
    )


def decode_image(path: Path, *, max_pixels: int, max_side: int) -> Decoded:
    """Open, check the size from the header, decode, orient and flatten one picture."""
    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():  # our own max_pixels check below decides, quietly
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except Image.DecompressionBombError:
        raise ExtractError(f"image is over the {max_pixels / 1e6:g} megapixel limit") from None
    except Exception as exc:  # Pillow raises many types for undecodable headers
        raise ExtractError(f"not a readable image: {reason(exc)}") from exc
    with im:
        width, height = im.size
        if width * height > max_pixels:
            raise ExtractError(
                f"image is {width}x{height} ({width * height / 1e6:.0f} megapixels),"
                f" over the {max_pixels / 1e6:g} megapixel limit"
            )
        exif = _exif(im)
        if exif.get(0x0112) in _ROTATED_ORIENTATIONS:
            width, height = height, width
        frames = getattr(im, "n_frames", 1)
        if im.format == "JPEG":
            im.draft("RGB", (max_side, max_side))  # decode at 1/2, 1/4 or 1/8 scale: faster
        try:
            im.load()  # GIF, WebP and TIFF keep their first frame
        except Exception as exc:  # truncated or corrupt pixel data, any decoder
            raise ExtractError(f"image is truncated or corrupt: {reason(exc)}") from exc
        try:
            upright = ImageOps.exif_transpose(im)
        except Exception:  # a broken EXIF block should not cost the picture
            upright = im
        rgb = _to_rgb(upright)
    rgb.thumbnail((max_side, max_side))
    metadata: dict[str, Any] = _exif_metadata(exif)
    if frames > 1:
        metadata["frames"] = frames
    return Decoded(rgb, width, height, metadata)


def _text_segments(rgb: Image, ocr: OcrEngine, picture: SegmentDraft) -> list[SegmentDraft]:
    """An "ocr" segment when the picture holds legible text (its caption goes on `picture`)."""
    try:
        result = ocr.read(rgb)
    except Exception as exc:
        raise ExtractError(f"text recognition failed: {reason(exc)}", stage="ocr") from exc
    if not _legible(result.text):
        return []
    picture.metadata["caption"] = _caption(result.text)
    confidence = {"confidence": round(result.confidence, 4)}
    return [SegmentDraft(kind="ocr", content=result.text, metadata=confidence)]


def _to_rgb(im: Image) -> Image:
    """RGB for every mode: transparency composited on white, 16-bit and float scaled to 8."""
    import numpy as np
    from PIL import Image

    if im.mode.startswith("I;16"):
        return Image.fromarray((np.asarray(im, dtype=np.float32) / 257).astype(np.uint8)).convert(
            "RGB"
        )
    if im.mode in ("I", "F"):  # no fixed range: stretch what is there
        values = np.asarray(im, dtype=np.float64)
        low, high = np.nanmin(values), np.nanmax(values)
        scaled = (values - low) * (255 / (high - low)) if high > low else values * 0
        return Image.fromarray(np.nan_to_num(scaled).astype(np.uint8)).convert("RGB")
    if im.has_transparency_data:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


def _exif(im: Image) -> Exif:
    from PIL import Image

    try:
        return im.getexif()
    except Exception:  # a corrupt EXIF block: the picture is still fine
        return Image.Exif()


def _exif_metadata(exif: Exif) -> dict[str, Any]:
    """Camera, capture time and position as plain JSON values with stable keys."""
    from PIL.ExifTags import GPS, IFD, Base

    try:
        details = exif.get_ifd(IFD.Exif)
        gps = exif.get_ifd(IFD.GPSInfo)
    except Exception:
        details, gps = {}, {}
    found: dict[str, Any] = {
        "camera_make": _text(exif.get(Base.Make)),
        "camera_model": _text(exif.get(Base.Model)),
        "lens_model": _text(details.get(Base.LensModel)),
        "description": _text(exif.get(Base.ImageDescription)),
        "taken_at": _timestamp(details.get(Base.DateTimeOriginal) or exif.get(Base.DateTime)),
    }
    latitude = _degrees(gps.get(GPS.GPSLatitude), gps.get(GPS.GPSLatitudeRef), "S", 90)
    longitude = _degrees(gps.get(GPS.GPSLongitude), gps.get(GPS.GPSLongitudeRef), "W", 180)
    if latitude is not None and longitude is not None:
        found["gps_lat"], found["gps_lon"] = latitude, longitude
        altitude = _number(gps.get(GPS.GPSAltitude))
        if altitude is not None:
            found["gps_alt_m"] = (
                -altitude if gps.get(GPS.GPSAltitudeRef) in (1, b"\x01") else altitude
            )
    return {key: value for key, value in found.items() if value is not None}


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    return " ".join(value.replace("\x00", " ").split()) or None


def _timestamp(value: Any) -> str | None:
    """EXIF "YYYY:MM:DD HH:MM:SS" as ISO 8601 (no zone: EXIF times are camera-local)."""
    text = _text(value)
    try:
        return datetime.strptime(text or "", "%Y:%m:%d %H:%M:%S").isoformat()
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if math.isfinite(number) else None


def _degrees(dms: Any, ref: Any, negative: str, limit: float) -> float | None:
    """Degrees/minutes/seconds rationals to signed decimal degrees, None when implausible."""
    if not isinstance(dms, tuple) or len(dms) != 3:
        return None
    parts = [_number(part) for part in dms]
    if any(part is None for part in parts):
        return None
    degrees, minutes, seconds = parts
    value = degrees + minutes / 60 + seconds / 3600
    if _text(ref) == negative:
        value = -value
    return round(value, 7) if abs(value) <= limit else None


def _legible(text: str) -> bool:
    """OCR on photos returns stray glyphs ("O", "|"); text needs a word of 3+ characters."""
    return any(sum(ch.isalnum() for ch in word) >= 3 for word in text.split())


def _caption(text: str) -> str:
    """The OCR text on one line, cut at a word near CAPTION_CHARS: a short label."""
    line = " ".join(text.split())
    if len(line) <= CAPTION_CHARS:
        return line
    return line[:CAPTION_CHARS].rsplit(" ", 1)[0] + "…"
