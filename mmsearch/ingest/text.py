"""Documents whose content is text: plain, Markdown, HTML, PDF and Word (.docx).

Each format is reduced to one plain string plus sections (a PDF's pages, else the whole
text); sections are chunked separately so a chunk never straddles two pages, and every
chunk's `char_start:char_end` indexes that string exactly.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmsearch.errors import reason
from mmsearch.ingest import limits
from mmsearch.ingest.types import Extracted, ExtractError, SegmentDraft

if TYPE_CHECKING:
    from selectolax.lexbor import LexborNode

    from mmsearch.ingest.chunking import Chunker
    from mmsearch.ingest.detect import Detected
    from mmsearch.ingest.ocr import OcrEngine

#: rendered size of a scanned PDF page's longest side for OCR (the engine's own working size)
OCR_PAGE_PIXELS = 2000
# pdfium is not thread-safe, not even across documents
_PDFIUM_LOCK = threading.Lock()

# PostgreSQL text cannot hold NUL; other C0 controls are noise from PDF text layers
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_NEWLINE = re.compile(r"\r\n?")
_ATX_H1 = re.compile(r" {0,3}#[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*")
_SETEXT_H1 = re.compile(r" {0,3}=+[ \t]*")
_FRONT_MATTER_TITLE = re.compile(r"title:[ \t]*[\"']?(.+?)[\"']?[ \t]*", re.IGNORECASE)

_HTML_DROP = {
    "head", "script", "style", "noscript", "template", "svg", "canvas", "iframe", "object",
    "embed", "nav", "aside", "footer", "select", "button", "textarea", "input",
}  # fmt: skip
_HTML_PARAGRAPH = {
    "html", "body", "main", "article", "section", "header", "div", "p", "blockquote", "pre",
    "table", "ul", "ol", "dl", "figure", "form", "fieldset", "address", "details", "hr",
    "h1", "h2", "h3", "h4", "h5", "h6",
}  # fmt: skip
_HTML_LINE = {"br", "li", "tr", "dt", "dd", "caption", "figcaption", "summary", "legend"}
_HTML_CELL = {"td", "th"}
_HTML_SEPARATOR = {
    **dict.fromkeys(_HTML_PARAGRAPH, "\n\n"),
    **dict.fromkeys(_HTML_LINE, "\n"),
    **dict.fromkeys(_HTML_CELL, "\t"),
}
_SEPARATOR_STRENGTH = {"\t": 1, "\n": 2, "\n\n": 3}
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)


@dataclass(frozen=True)
class Section:
    """A span of `TextDocument.text` chunked on its own; its metadata goes on each chunk."""

    start: int
    end: int
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class TextDocument:
    """A document reduced to text: what chunk offsets index, before chunking."""

    text: str
    title: str
    sections: list[Section]
    metadata: dict[str, Any] = field(default_factory=dict)


def extract_text(
    path: str | os.PathLike[str],
    detected: Detected,
    chunker: Chunker,
    *,
    ocr: OcrEngine | None = None,
) -> Extracted:
    """Chunk a text document into "chunk" segments; `ocr` reads PDF pages without a text
    layer (None leaves them out, listed in the record's `pages_without_text`)."""
    document = read_document(path, detected, ocr=ocr)
    limits.check_text(len(document.text))
    segments = []
    for section in document.sections:
        for start, end in chunker.chunks(document.text[section.start : section.end]):
            start, end = start + section.start, end + section.start
            segments.append(
                SegmentDraft(
                    kind="chunk",
                    content=document.text[start:end],
                    char_start=start,
                    char_end=end,
                    metadata=dict(section.metadata),
                )
            )
        limits.check_segments(len(segments))
    if not segments:
        scanned = ocr is None and document.metadata.get("pages_without_text")
        raise ExtractError(
            "the file contains no text" + (" (its pages need OCR, which is off)" if scanned else "")
        )
    return Extracted(
        media_type="text",
        mime=detected.mime,
        title=document.title,
        segments=segments,
        metadata={**document.metadata, "chars": len(document.text)},
    )


def read_document(
    path: str | os.PathLike[str], detected: Detected, *, ocr: OcrEngine | None = None
) -> TextDocument:
    """The document's text, title and sections, per its detected format."""
    path = Path(path)
    if detected.format == "pdf":
        return _read_pdf(path, ocr)
    if detected.format == "docx":
        return _read_docx(path)
    try:
        raw = path.read_bytes().decode(detected.encoding or "utf-8", errors="replace")
    except LookupError as exc:
        raise ExtractError(f"unknown text encoding {detected.encoding!r}") from exc
    if detected.format == "html":
        return _read_html(raw, path)
    text = _clean(raw)
    title = _markdown_title(text) if detected.format == "markdown" else None
    return TextDocument(text, title or path.stem, [Section(0, len(text))])


def _clean(text: str) -> str:
    return _CONTROL.sub("", _NEWLINE.sub("\n", text))


def _markdown_title(text: str) -> str | None:
    """YAML front matter's `title:`, else the first level-1 heading outside code fences."""
    lines = text.split("\n")
    if lines and lines[0].strip() == "---":
        for line in lines[1:]:
            if line.strip() in ("---", "..."):
                break
            if match := _FRONT_MATTER_TITLE.fullmatch(line):
                return match.group(1)
    fence = None
    previous = ""
    for line in lines:
        marker = line.strip()[:3]
        if marker in ("```", "~~~"):
            fence = None if fence == marker else fence or marker
        elif fence is None:
            if match := _ATX_H1.fullmatch(line):
                return match.group(1)
            if previous.strip() and _SETEXT_H1.fullmatch(line):
                return previous.strip()
        previous = line
    return None


def _read_html(markup: str, path: Path) -> TextDocument:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(markup)
    title = ""
    for selector in ("title", "h1"):
        node = tree.css_first(selector)
        if node is not None and (title := " ".join(node.text(deep=True).split())):
            break
    text = _visible_text(tree.root) if tree.root is not None else ""
    return TextDocument(text, title or path.stem, [Section(0, len(text))])


def _visible_text(root: LexborNode) -> str:
    """What a reader sees: no scripts, styles, navigation or hidden elements; blocks become
    paragraphs, line-level elements lines and table cells tab-separated."""
    pieces: list[str] = []
    # (node, "") opens a node; (node, separator) emits the separator after its children
    stack: list[tuple[LexborNode, str]] = [(root, "")]
    while stack:
        node, closing = stack.pop()
        if closing:
            _separate(pieces, closing)
            continue
        if node.is_text_node:
            text = re.sub(r"\s+", " ", node.text_content or "")
            if text != " " or (pieces and pieces[-1] not in _SEPARATOR_STRENGTH):
                pieces.append(text)
            continue
        tag = node.tag or ""
        if tag in _HTML_DROP or _hidden(node):
            continue
        if tag == "pre":
            _separate(pieces, "\n\n")
            pieces.append((node.text(deep=True) or "").replace("\t", "    "))
            _separate(pieces, "\n\n")
            continue
        separator = _HTML_SEPARATOR.get(tag, "")
        if separator:
            _separate(pieces, separator)
            stack.append((node, separator))
        stack.extend((child, "") for child in reversed(list(node.iter(include_text=True))))
    lines = (re.sub(r" *\t[ \t]*", "\t", line).strip(" \t") for line in "".join(pieces).split("\n"))
    text = "\n".join(re.sub(r" {2,}", " ", line) for line in lines)
    return _clean(re.sub(r"\n{3,}", "\n\n", text).strip())


def _separate(pieces: list[str], separator: str) -> None:
    """Append a separator; adjacent ones (a cell's end, the next cell's start) merge into
    the strongest, so rows stay single lines and paragraphs single blank lines."""
    while pieces and pieces[-1] == " ":
        pieces.pop()
    if pieces and pieces[-1] in _SEPARATOR_STRENGTH:
        if _SEPARATOR_STRENGTH[separator] > _SEPARATOR_STRENGTH[pieces[-1]]:
            pieces[-1] = separator
    else:
        pieces.append(separator)


def _hidden(node: LexborNode) -> bool:
    attributes = node.attributes
    return (
        "hidden" in attributes
        or attributes.get("aria-hidden") == "true"
        or bool(_HIDDEN_STYLE.search(attributes.get("style") or ""))
    )


def _read_pdf(path: Path, ocr: OcrEngine | None) -> TextDocument:
    from pypdf import PdfReader
    from pypdf.errors import DependencyError

    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractError("the PDF is encrypted and needs a password")
        pages = list(reader.pages)
        info = reader.metadata
        title = _clean(info.title or "").strip() if info else ""
        author = _clean(info.author or "").strip() if info else ""
    except ExtractError:
        raise
    except DependencyError as exc:
        raise ExtractError(f"the PDF's encryption needs an extra package: {reason(exc)}") from exc
    except Exception as exc:  # pypdf raises many types on malformed files
        raise ExtractError(f"unreadable PDF: {reason(exc)}") from exc

    parts: list[str] = []
    sections: list[Section] = []
    without_text: list[int] = []
    offset = 0
    renderer = _PageRenderer(path)
    try:
        for number, page in enumerate(pages, start=1):
            limits.check()
            try:
                text = _clean(page.extract_text() or "").strip()
            except Exception:  # a broken content stream costs this page's text layer only
                text = ""
            metadata: dict[str, Any] = {"page": number}
            if not text and ocr is not None:
                try:
                    result = ocr.read(renderer.render(number - 1))
                except Exception as exc:
                    raise ExtractError(
                        f"could not read scanned page {number}: {reason(exc)}", stage="ocr"
                    ) from exc
                text = _clean(result.text).strip()
                metadata.update(ocr=True, ocr_confidence=round(result.confidence, 4))
            if not text:
                without_text.append(number)
                continue
            if parts:
                parts.append("\n\n")
                offset += 2
            parts.append(text)
            sections.append(Section(offset, offset + len(text), metadata))
            offset += len(text)
            limits.check_text(offset)
    finally:
        renderer.close()

    document_metadata: dict[str, Any] = {"pages": len(pages)}
    if without_text:
        document_metadata["pages_without_text"] = without_text
    if author:
        document_metadata["author"] = author
    return TextDocument("".join(parts), title or path.stem, sections, document_metadata)


class _PageRenderer:
    """Rasterises PDF pages for OCR with pdfium, opening the file only if a page needs it."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._document: Any = None

    def render(self, index: int) -> Any:
        import pypdfium2

        with _PDFIUM_LOCK:
            if self._document is None:
                self._document = pypdfium2.PdfDocument(self._path)
            page = self._document[index]
            try:
                scale = min(4.0, OCR_PAGE_PIXELS / max(page.get_size()))
                return page.render(scale=scale).to_pil()
            finally:
                page.close()

    def close(self) -> None:
        if self._document is not None:
            with _PDFIUM_LOCK:
                self._document.close()


def _read_docx(path: Path) -> TextDocument:
    import docx
    from docx.table import Table

    limits.check_archive(path)  # before python-docx expands it all into memory
    try:
        document = docx.Document(str(path))
        blocks = [
            _table_text(item) if isinstance(item, Table) else item.text
            for item in document.iter_inner_content()
        ]
    except Exception as exc:  # python-docx surfaces zip, XML and schema errors alike
        raise ExtractError(f"unreadable Word document: {reason(exc)}") from exc
    text = _clean("\n\n".join(block.strip() for block in blocks if block.strip()))
    properties = document.core_properties
    metadata: dict[str, Any] = {}
    if properties.author:
        metadata["author"] = properties.author.strip()
    if properties.created:
        metadata["created"] = properties.created.isoformat()
    title = (properties.title or "").strip()
    return TextDocument(text, title or path.stem, [Section(0, len(text))], metadata)


def _table_text(table: Any) -> str:
    """Rows on lines, cells tab-separated; a merged cell is read once, not per grid column."""
    rows = []
    for row in table.rows:
        cells, previous = [], None
        for cell in row.cells:  # a merged cell repeats, as one object, for each column
            if cell._tc is not previous:
                cells.append(" ".join(cell.text.split()))
            previous = cell._tc
        rows.append("\t".join(cells))
    return "\n".join(rows)
