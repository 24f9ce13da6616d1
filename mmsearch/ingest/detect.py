"""Decide what a file is from its bytes, so a misnamed file is still read by the right extractor.

Magic numbers decide binary formats (via `filetype` plus a few refinements it lacks); text
is anything that decodes cleanly and has no NUL bytes. The extension only breaks ties that
content cannot (Markdown versus plain text, a tag-less fragment in an .html file).
"""

from __future__ import annotations

import codecs
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from mmsearch.ingest.types import MediaType

#: bytes read for sniffing; enough for magic numbers and a fair text-encoding guess
SNIFF_BYTES = 64 * 1024

IMAGE_FORMATS = {
    "image/jpeg": "jpeg",
    "image/png": "png",
    "image/apng": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/bmp": "bmp",
    "image/tiff": "tiff",
}
#: filetype's mime -> (the mime we record, short format name)
AUDIO_FORMATS = {
    "audio/mpeg": ("audio/mpeg", "mp3"),
    "audio/x-wav": ("audio/wav", "wav"),
    "audio/x-flac": ("audio/flac", "flac"),
    "audio/ogg": ("audio/ogg", "ogg"),
    "audio/aac": ("audio/aac", "aac"),
    "audio/x-aiff": ("audio/aiff", "aiff"),
}
VIDEO_FORMATS = {
    "video/x-matroska": ("video/x-matroska", "mkv"),
    "video/webm": ("video/webm", "webm"),
    "video/x-msvideo": ("video/x-msvideo", "avi"),
    "video/x-ms-wmv": ("video/x-ms-wmv", "wmv"),
    "video/x-flv": ("video/x-flv", "flv"),
    "video/mpeg": ("video/mpeg", "mpeg"),
}
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
MARKDOWN_SUFFIXES = {".md", ".markdown", ".mdown", ".mkd", ".mkdn"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}

_BOMS = (  # longest first: the UTF-32 LE BOM starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# WHATWG MIME sniffing: a document that opens with one of these tags is HTML
_HTML_START = re.compile(
    r"\s*<(?:!doctype\s+html|html|head|script|iframe|h1|div|font|table|a|style|title|b|body"
    r"|br|p|!--)[\s>]",
    re.IGNORECASE,
)
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:-]+)", re.IGNORECASE)
_ATX_H1 = re.compile(r"#[ \t]+\S")
_PDF_HEADER = re.compile(rb"%PDF-\d\.\d")
# ISO base media file brands (bytes 8..12 and the compatible list after them)
_AUDIO_BRANDS = {"M4A ", "M4B ", "M4P ", "F4A ", "F4B "}
_IMAGE_BRANDS = {"heic", "heix", "heim", "heis", "mif1", "msf1", "avif", "avis"}
_QUICKTIME_ATOMS = {b"moov", b"mdat", b"wide", b"pnot"}


@dataclass(frozen=True)
class Detected:
    """What a file is. `encoding` is set for text: the Python codec that decodes it."""

    media_type: MediaType
    mime: str
    format: str
    encoding: str | None = None


def detect(path: str | os.PathLike[str]) -> Detected | None:
    """Classify a file by content; None means a binary format mmsearch cannot ingest."""
    path = Path(path)
    with path.open("rb") as f:
        head = f.read(SNIFF_BYTES)
    return _detect_binary(path, head) or _detect_text(
        path, head, truncated=len(head) == SNIFF_BYTES
    )


def _detect_binary(path: Path, head: bytes) -> Detected | None:
    import filetype

    if _PDF_HEADER.search(head[:1024]):  # readers tolerate junk before the header
        return Detected("text", "application/pdf", "pdf")
    if head[4:8] == b"ftyp":
        return _iso_bmff(head)
    if head[4:8] in _QUICKTIME_ATOMS and 8 <= int.from_bytes(head[:4]) <= path.stat().st_size:
        return Detected("video", "video/quicktime", "mov")  # pre-ftyp QuickTime
    if head[:4] == b"OggS":
        # the first page names the codec; Theora means a video stream
        if b"\x80theora" in head[:512]:
            return Detected("video", "video/ogg", "ogv")
        return Detected("audio", "audio/ogg", "ogg")
    kind = filetype.guess(head)
    if kind is None:
        return None
    mime = kind.mime
    if mime in IMAGE_FORMATS:
        return Detected("image", "image/png" if mime == "image/apng" else mime, IMAGE_FORMATS[mime])
    if mime == "audio/mpeg" and head[:3] == b"ID3" and head[3] not in (2, 3, 4):
        return None  # "ID3" followed by no valid tag version: probably text
    if mime in AUDIO_FORMATS:
        return Detected("audio", *AUDIO_FORMATS[mime])
    if mime in VIDEO_FORMATS:
        return Detected("video", *VIDEO_FORMATS[mime])
    if head[:4] == b"PK\x03\x04" and _is_docx(path):
        return Detected("text", DOCX_MIME, "docx")
    return None


def _iso_bmff(head: bytes) -> Detected | None:
    """MP4 family: the brands tell audio-only M4A, QuickTime and HEIF images apart."""
    major = head[8:12].decode("latin-1")
    box_end = min(int.from_bytes(head[:4]), len(head))
    # after the major brand come a minor version and then the compatible brands
    brands = {head[i : i + 4].decode("latin-1") for i in range(16, box_end - 3, 4)} | {major}
    if major in _IMAGE_BRANDS:
        return None
    if major == "qt  ":
        return Detected("video", "video/quicktime", "mov")
    if brands & _AUDIO_BRANDS:
        return Detected("audio", "audio/mp4", "m4a")
    if major.startswith("3g"):
        return Detected("video", "video/3gpp", "3gp")
    return Detected("video", "video/mp4", "mp4")


def _is_docx(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return "word/document.xml" in z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def _detect_text(path: Path, head: bytes, *, truncated: bool) -> Detected | None:
    encoding = _text_encoding(head, truncated=truncated)
    if encoding is None:
        return None
    text = head.decode(encoding, errors="replace").lstrip("\ufeff")
    suffix = path.suffix.lower()
    if _HTML_START.match(text) or (suffix in HTML_SUFFIXES and "<" in text):
        if not encoding.startswith("utf"):
            encoding = _declared_charset(head) or encoding
        return Detected("text", "text/html", "html", encoding)
    # a "# heading" opening is Markdown only without a suffix: in a script it is a comment
    if suffix in MARKDOWN_SUFFIXES or (not suffix and _starts_with_atx_heading(text)):
        return Detected("text", "text/markdown", "markdown", encoding)
    return Detected("text", "text/plain", "plain", encoding)


def _text_encoding(head: bytes, *, truncated: bool) -> str | None:
    """The codec that decodes `head` as text, or None when it looks binary."""
    for bom, codec in _BOMS:
        if head.startswith(bom):
            return codec if _decodes(head, codec, truncated=truncated) else None
    if b"\x00" in head:
        return None
    if _decodes(head, "utf-8", truncated=truncated):
        return "utf-8"
    from charset_normalizer import from_bytes

    matches = from_bytes(head)
    best = matches.best()
    if best is None or best.chaos > 0.2:
        return None
    text = str(best)
    controls = sum(1 for c in text if ord(c) < 32 and c not in "\t\n\r\f\v\x1b")
    if controls > len(text) // 100:
        return None
    # Short Western text reads as plausibly in cp1250/cp1257 as in cp1252 (each decodes
    # some accents differently: "crème" becomes "crčme"). cp1252 is far more common and what
    # browsers assume for "latin-1": take it whenever it reads as the same language equally
    # well and is not chaotic, even if a rarer code page scores a little less chaos.
    for match in matches:
        if (
            "cp1252" in match.could_be_from_charset
            and match.chaos <= 0.2
            and match.coherence >= best.coherence - 0.05
        ):
            return "cp1252"
    return best.encoding


def _decodes(data: bytes, codec: str, *, truncated: bool) -> bool:
    """Strict decode; a multi-byte character cut off by the sniff window does not count."""
    decoder = codecs.getincrementaldecoder(codec)()
    try:
        decoder.decode(data, final=not truncated)
    except UnicodeDecodeError:
        return False
    return True


def _declared_charset(head: bytes) -> str | None:
    match = _META_CHARSET.search(head[:4096])
    if match is None:
        return None
    try:
        return codecs.lookup(match.group(1).decode("ascii")).name
    except LookupError:
        return None


def _starts_with_atx_heading(text: str) -> bool:
    first = next((line for line in text.splitlines() if line.strip()), "")
    return bool(_ATX_H1.match(first))
