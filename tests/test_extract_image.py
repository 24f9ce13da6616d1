"""Image extraction: upright RGB for every format and mode, searchable EXIF, OCR text as its
own segment, and clear refusals of bombs, truncated and corrupt files."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from mmsearch.ingest.detect import detect
from mmsearch.ingest.image import extract_image
from mmsearch.ingest.types import Extracted, ExtractError


def extract(path: Path, ocr=None, **kwargs) -> Extracted:
    detected = detect(path)
    assert detected is not None and detected.media_type == "image"
    return extract_image(path, detected, ocr, **kwargs)


def only_image(extracted: Extracted) -> Image.Image:
    assert extracted.segments[0].kind == "image"
    (image,) = extracted.segments[0].images
    assert image.mode == "RGB"
    return image


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF"])
def test_every_format_decodes_to_rgb(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"swatch.{fmt.lower()}"
    Image.new("RGB", (64, 48), (0, 120, 255)).save(path, fmt)
    extracted = extract(path)
    assert (extracted.media_type, extracted.title) == ("image", "swatch")
    assert (extracted.width, extracted.height) == (64, 48)
    assert extracted.mime == detect(path).mime  # type: ignore[union-attr]
    assert [s.kind for s in extracted.segments] == ["image"]
    assert extracted.segments[0].content is None
    red, _, blue = only_image(extracted).getpixel((32, 24))
    assert blue > 200 and red < 60


def test_transparency_is_composited_on_white(tmp_path: Path) -> None:
    image = Image.new("RGBA", (20, 10), (255, 0, 0, 255))
    image.paste((0, 0, 0, 0), (10, 0, 20, 10))  # right half fully transparent
    path = tmp_path / "logo.png"
    image.save(path)
    rgb = only_image(extract(path))
    assert rgb.getpixel((2, 5)) == (255, 0, 0)
    assert rgb.getpixel((15, 5)) == (255, 255, 255)


def test_animated_gif_keeps_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("P", (16, 16), i) for i in range(3)]
    palette = [0, 200, 0, 200, 0, 0, 0, 0, 200] + [0] * (256 * 3 - 9)
    for frame in frames:
        frame.putpalette(palette)
    path = tmp_path / "blink.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    extracted = extract(path)
    assert extracted.metadata["frames"] == 3
    assert only_image(extracted).getpixel((8, 8)) == (0, 200, 0)


def test_sixteen_bit_greyscale_is_scaled_not_clipped(tmp_path: Path) -> None:
    path = tmp_path / "depth.png"
    Image.fromarray(np.full((8, 8), 32768, dtype=np.uint16)).save(path)
    value = only_image(extract(path)).getpixel((4, 4))
    assert all(120 <= channel <= 135 for channel in value)


def photo_with_exif(path: Path) -> None:
    """A 40x20 JPEG, red left half and blue right, stored sideways (orientation 6)."""
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (20, 0, 40, 20))
    exif = Image.Exif()
    exif[0x010F] = "Canon"  # Make
    exif[0x0110] = "EOS 5D\x00"  # Model, with the NUL padding cameras write
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to view
    exif.get_ifd(0x8769)[0x9003] = "2023:07:14 18:30:00"  # DateTimeOriginal
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (52.0, 31.0, 12.0), 3: "W", 4: (0.0, 7.0, 30.0), 5: b"\x00", 6: 35.5})
    image.save(path, "JPEG", exif=exif, quality=95)


def test_exif_orientation_and_searchable_metadata(tmp_path: Path) -> None:
    path = tmp_path / "harbour.jpg"
    photo_with_exif(path)
    extracted = extract(path)
    assert (extracted.width, extracted.height) == (20, 40)
    upright = only_image(extracted)
    assert upright.size == (20, 40)
    top, bottom = upright.getpixel((10, 5)), upright.getpixel((10, 35))
    assert top[0] > 200 and top[2] < 60  # the left (red) half is now on top
    assert bottom[2] > 200 and bottom[0] < 60
    assert extracted.metadata == {
        "camera_make": "Canon",
        "camera_model": "EOS 5D",
        "taken_at": "2023-07-14T18:30:00",
        "gps_lat": pytest.approx(52.52),
        "gps_lon": pytest.approx(-0.125),
        "gps_alt_m": 35.5,
    }


def test_large_images_are_shrunk_for_embedding_but_report_their_size(tmp_path: Path) -> None:
    path = tmp_path / "panorama.png"
    Image.new("RGB", (900, 300), "green").save(path)
    extracted = extract(path, max_side=256)
    assert (extracted.width, extracted.height) == (900, 300)
    assert only_image(extracted).size == (256, 85)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a size but carries no pixel data at all."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_from_the_header(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(100_000, 100_000))
    limit = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ExtractError, match="megapixel limit"):
        extract(path)
    assert limit == Image.MAX_IMAGE_PIXELS  # Pillow's global is left alone


def test_pixel_limit_is_a_parameter(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(png_header_only(3000, 3000))
    # the header check runs before decoding: decoding this file would fail differently
    with pytest.raises(ExtractError, match=r"3000x3000 \(9 megapixels\), over the 1 megapixel"):
        extract(path, max_pixels=1_000_000)
    with pytest.raises(ExtractError, match="truncated or corrupt"):
        extract(path, max_pixels=10_000_000)


def test_truncated_jpeg_is_an_error(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    noise = np.random.default_rng(1).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    Image.fromarray(noise).save(buffer, "JPEG", quality=90)
    path = tmp_path / "cut.jpg"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ExtractError, match="truncated") as caught:
        extract(path)
    assert "\n" not in str(caught.value) and caught.value.stage == "decode"


def test_garbage_after_a_png_signature_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "fake.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10)
    with pytest.raises(ExtractError, match="not a readable image"):
        extract(path)


def text_image(lines: list[str], size: int = 48) -> Image.Image:
    font = ImageFont.load_default(size=size)
    image = Image.new("RGB", (60 + 22 * size, 60 + int(1.8 * size) * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((30, 30 + int(1.8 * size) * i), line, fill="black", font=font)
    return image


@pytest.mark.model
def test_ocr_text_becomes_its_own_segment(tmp_path: Path) -> None:
    from mmsearch.ingest.ocr import OcrEngine

    path = tmp_path / "sign.png"
    text_image(["Harbour closed", "until Monday 9 AM"]).save(path)
    extracted = extract(path, OcrEngine())
    assert [s.kind for s in extracted.segments] == ["image", "ocr"]
    image_segment, ocr_segment = extracted.segments
    assert ocr_segment.images == []
    assert ocr_segment.metadata["confidence"] > 0.8
    lines = (ocr_segment.content or "").lower().split("\n")
    assert len(lines) == 2
    assert "harbour" in lines[0] and "closed" in lines[0]
    assert "monday" in lines[1] and "9" in lines[1]
    assert image_segment.content is None  # the text is searchable once, in the ocr segment
    assert image_segment.metadata["caption"] == " ".join((ocr_segment.content or "").split())


@pytest.mark.model
def test_reading_order_is_top_to_bottom_left_to_right() -> None:
    from mmsearch.ingest.ocr import OcrEngine

    image = Image.new("RGB", (1400, 420), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=48)
    for x, y, word in [(800, 40, "second"), (40, 40, "first"), (40, 260, "third")]:
        draw.text((x, y), word, fill="black", font=font)
    result = OcrEngine().read(image)
    assert [line.lower() for line in result.lines] == ["first second", "third"]
    assert 0.8 < result.confidence <= 1.0


@pytest.mark.model
def test_picture_without_text_has_no_ocr_segment(tmp_path: Path) -> None:
    from mmsearch.ingest.ocr import OcrEngine

    gradient = np.linspace(0, 255, 320, dtype=np.uint8)
    path = tmp_path / "sky.png"
    Image.fromarray(np.stack([np.tile(gradient, (240, 1))] * 3, axis=-1)).save(path)
    extracted = extract(path, OcrEngine())
    assert [s.kind for s in extracted.segments] == ["image"]
    assert extracted.segments[0].content is None
