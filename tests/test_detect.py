"""File-kind detection reads content, not names: misnamed files still land in the right place."""

from __future__ import annotations

import io
import os
import struct
import wave
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from mmsearch.ingest.detect import DOCX_MIME, SNIFF_BYTES, detect


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def image_bytes(fmt: str, **save: object) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, fmt, **save)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [
        ("JPEG", "image/jpeg"),
        ("PNG", "image/png"),
        ("GIF", "image/gif"),
        ("WEBP", "image/webp"),
        ("BMP", "image/bmp"),
        ("TIFF", "image/tiff"),
    ],
)
def test_images_by_magic_even_when_misnamed(tmp_path: Path, fmt: str, mime: str) -> None:
    found = detect(write(tmp_path, "notes.txt", image_bytes(fmt)))
    assert found is not None
    assert (found.media_type, found.mime) == ("image", mime)


def test_wav_written_by_the_standard_library(tmp_path: Path) -> None:
    path = tmp_path / "tone.bin"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\x00\x01" * 1600)
    found = detect(path)
    assert found is not None
    assert (found.media_type, found.mime, found.format) == ("audio", "audio/wav", "wav")


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + b"\x00\x00\x02\x00" + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + b"\x00\x00\x00\x08free"


def ebml(doctype: bytes) -> bytes:
    """An EBML header element holding a DocType, as Matroska and WebM files open."""
    element = b"\x42\x82" + bytes([0x80 | len(doctype)]) + doctype
    return b"\x1a\x45\xdf\xa3" + bytes([0x80 | len(element)]) + element + b"\x18\x53\x80\x67"


def ogg(first_packet: bytes) -> bytes:
    header = b"OggS\x00\x02" + b"\x00" * 8 + b"\x01\x00\x00\x00" + b"\x00" * 8 + b"\x01"
    return header + bytes([len(first_packet)]) + first_packet


# the opening bytes each container's specification requires, padded with stream-like bytes
CONTAINERS = {
    "mp3-id3": (b"ID3\x04\x00\x00\x00\x00\x00\x0a" + b"\x00" * 10 + b"\xff\xfb\x90\x64", "audio"),
    "mp3-frame": (b"\xff\xfb\x90\x64" + b"\x00" * 400, "audio"),
    "flac": (b"fLaC\x00\x00\x00\x22" + b"\x10\x00" * 17, "audio"),
    "ogg": (ogg(b"\x01vorbis" + b"\x00" * 22), "audio"),
    "ogv": (ogg(b"\x80theora" + b"\x03\x02\x01" + b"\x00" * 30), "video"),
    "m4a": (ftyp(b"M4A ", b"M4A ", b"mp42", b"isom"), "audio"),
    "mp4": (ftyp(b"isom", b"isom", b"iso2", b"avc1", b"mp41"), "video"),
    "mov": (ftyp(b"qt  ", b"qt  "), "video"),
    "mkv": (ebml(b"matroska"), "video"),
    "webm": (ebml(b"webm"), "video"),
    "avi": (b"RIFF\x24\x00\x00\x00AVI LIST" + b"\x00" * 32, "video"),
}
EXPECTED_MIME = {
    "mp3-id3": "audio/mpeg",
    "mp3-frame": "audio/mpeg",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "ogv": "video/ogg",
    "m4a": "audio/mp4",
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "mkv": "video/x-matroska",
    "webm": "video/webm",
    "avi": "video/x-msvideo",
}


@pytest.mark.parametrize("name", sorted(CONTAINERS))
def test_audio_and_video_containers(tmp_path: Path, name: str) -> None:
    data, media_type = CONTAINERS[name]
    found = detect(write(tmp_path, "clip", data + os.urandom(256)))
    assert found is not None
    assert (found.media_type, found.mime) == (media_type, EXPECTED_MIME[name])


def test_heif_images_are_not_taken_for_video(tmp_path: Path) -> None:
    assert detect(write(tmp_path, "photo.mp4", ftyp(b"heic", b"mif1", b"heic"))) is None


def test_pdf_and_docx(tmp_path: Path) -> None:
    from docx import Document
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.cell(text="hello")
    pdf_path = tmp_path / "report.dat"
    pdf.output(str(pdf_path))
    docx_path = tmp_path / "letter.zip"
    document = Document()
    document.add_paragraph("hello")
    document.save(str(docx_path))

    assert detect(pdf_path) == detect(pdf_path)  # deterministic, hashable
    found = detect(pdf_path)
    assert found is not None and (found.mime, found.format) == ("application/pdf", "pdf")
    found = detect(docx_path)
    assert found is not None and (found.mime, found.format) == (DOCX_MIME, "docx")


def test_other_zip_archives_are_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "letter.docx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "not a word document")
    assert detect(path) is None


def test_random_binary_is_unsupported(tmp_path: Path) -> None:
    data = bytes(range(256)) * 64
    assert detect(write(tmp_path, "data.txt", data)) is None
    assert detect(write(tmp_path, "noise.md", os.urandom(4096))) is None


def test_utf8_text_even_named_like_an_image(tmp_path: Path) -> None:
    found = detect(write(tmp_path, "photo.jpg", "Grüße aus Köln — ünïcödé\n".encode()))
    assert found is not None
    assert (found.media_type, found.mime, found.encoding) == ("text", "text/plain", "utf-8")


def test_utf8_character_cut_by_the_sniff_window_is_still_text(tmp_path: Path) -> None:
    data = b"a" * (SNIFF_BYTES - 1) + "é and more".encode()
    found = detect(write(tmp_path, "long.txt", data))
    assert found is not None and found.encoding == "utf-8"


def test_legacy_encoding_is_recognised(tmp_path: Path) -> None:
    text = (
        "Le café de la gare ouvre à sept heures. Les élèves déjeunent très tôt, "
        "puis ils étudient l'économie française jusqu'à midi. “Voilà”, dit-il.\n"
    ) * 5
    found = detect(write(tmp_path, "legacy.txt", text.encode("cp1252")))
    assert found is not None and found.media_type == "text"
    assert found.encoding is not None and found.encoding != "utf-8"
    assert text.encode("cp1252").decode(found.encoding) == text


def test_utf16_with_bom(tmp_path: Path) -> None:
    text = "Hello wide world\n" * 10
    found = detect(write(tmp_path, "wide.txt", text.encode("utf-16")))
    assert found is not None and found.media_type == "text"
    assert text.encode("utf-16").decode(found.encoding or "") == text


def test_html_by_content_markdown_by_name_or_heading(tmp_path: Path) -> None:
    html = detect(write(tmp_path, "page", b"<!DOCTYPE html><html><body>x</body></html>"))
    assert html is not None and html.mime == "text/html"
    md = detect(write(tmp_path, "notes.md", b"Some *markdown* text\n"))
    assert md is not None and md.mime == "text/markdown"
    readme = detect(write(tmp_path, "README", b"\n# Title\n\nBody\n"))
    assert readme is not None and readme.mime == "text/markdown"
    script = detect(write(tmp_path, "run.py", b"# a comment\nprint(1)\n"))
    assert script is not None and script.mime == "text/plain"


def test_html_declared_charset_wins_over_a_guess(tmp_path: Path) -> None:
    markup = (
        '<html><head><meta charset="windows-1251"></head><body>'
        + "Привет, мир! Это проверка кодировки. " * 10
        + "</body></html>"
    )
    found = detect(write(tmp_path, "ru.html", markup.encode("cp1251")))
    assert found is not None and found.mime == "text/html"
    assert markup.encode("cp1251").decode(found.encoding or "") == markup


def test_text_starting_like_an_id3_tag_stays_text(tmp_path: Path) -> None:
    found = detect(write(tmp_path, "tags.txt", b"ID3 tags hold the artist and title.\n"))
    assert found is not None and found.media_type == "text"
