"""Per-file limits: duration, wall-clock time (embedding included), memory, and what a file
expands into (archive size and ratio, characters, segments) fail one file, not the batch."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from bench.media import write_wav
from mmsearch.client import Client
from mmsearch.embed.registry import Embedders

pytestmark = pytest.mark.model


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    from fpdf import FPDF

    rng = np.random.default_rng(0)
    write_wav(tmp_path / "hum.wav", (0.1 * rng.standard_normal(12 * 16_000)).astype("f4"), 16_000)
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for page in range(3):
        pdf.add_page()
        pdf.multi_cell(0, 8, f"Page {page} of the quarterly maintenance report.")
    pdf.output(str(tmp_path / "report.pdf"))
    (tmp_path / "note.txt").write_text("A short note about the garden hose.")
    return tmp_path


def limited(client: Client, **limits: int) -> Client:
    settings = dataclasses.replace(client.settings, **limits)
    return Client(client.db, settings)


def failures(report) -> dict[str, str]:
    return {Path(e["uri"]).name: f"[{e['stage']}] {e['message']}" for e in report.errors}


def test_recording_over_the_duration_limit(client: Client, folder: Path) -> None:
    report = limited(client, max_duration_s=5).ingest([folder], collection="dur")
    assert failures(report) == {
        "hum.wav": "[limit] lasts 12 s, over the 5 s limit (MMSEARCH_MAX_DURATION_S)"
    }
    assert report.ingested == 2


def test_file_over_the_time_limit(client: Client, folder: Path) -> None:
    report = limited(client, max_file_seconds=0).ingest([folder], collection="slow")
    found = failures(report)
    # all reach a checked step: decoding, or for the note chunking (and embedding)
    assert set(found) == {"hum.wav", "report.pdf", "note.txt"}
    assert all(message.startswith("[limit]") for message in found.values())
    assert all("per-file limit" in message for message in found.values())
    assert report.ingested == 0


def test_file_over_the_memory_limit(client: Client, folder: Path) -> None:
    report = limited(client, max_memory_mb=1).ingest([folder / "hum.wav"], collection="mem")
    assert "needed more than the 1 MiB memory limit" in failures(report)["hum.wav"]
    relaxed = limited(client, max_memory_mb=64 * 1024).ingest(
        [folder / "hum.wav"], collection="mem"
    )
    assert relaxed.ingested == 1 and relaxed.failed == 0


class SlowText:
    """The real text model, one second slower per batch: embedding that takes long."""

    def __init__(self, model: object) -> None:
        self._model = model

    def __getattr__(self, name: str) -> object:
        return getattr(self._model, name)

    def encode_texts(self, texts: list[str], **kwargs: object) -> object:
        import time

        time.sleep(1.0)
        return self._model.encode_texts(texts, **kwargs)


def test_time_limit_covers_embedding(client: Client, tmp_path: Path) -> None:
    """Finding 10: the per-file budget used to stop at extraction; embedding ran unbounded."""
    note = tmp_path / "note.txt"
    note.write_text("A short note about the garden hose.")
    settings = dataclasses.replace(
        client.settings, max_file_seconds=1, spaces=client.settings.spaces[:1]
    )

    class SlowEmbedders(Embedders):
        def get(self, name: str) -> object:
            return SlowText(super().get(name))

    slow = Client(client.db, settings, embedders=SlowEmbedders(settings.spaces))
    report = slow.ingest([note], collection="slowembed")
    assert failures(report) == {"note.txt": "[limit] took longer than the 1 s per-file limit"}


def docx_with_text(path: Path, text: str) -> Path:
    import docx

    document = docx.Document()
    document.add_paragraph(text)
    document.save(str(path))
    return path


def test_docx_that_expands_too_far_is_refused_before_parsing(
    client: Client, tmp_path: Path
) -> None:
    """Finding 10: a small .docx holding megabytes of text ran for minutes and 1.6 GB."""
    import time

    bomb = docx_with_text(tmp_path / "bomb.docx", "lorem ipsum " * 400_000)  # 4.8 MB of XML
    assert bomb.stat().st_size < 100_000
    started = time.monotonic()
    report = client.ingest([bomb], collection="bombs")
    found = failures(report)["bomb.docx"]
    assert found.startswith("[limit] 'word/document.xml' expands") and "times" in found
    assert time.monotonic() - started < 30
    roomy = limited(client, max_archive_ratio=100_000, max_archive_bytes=1 << 20)
    found = failures(roomy.ingest([bomb], collection="bombs"))["bomb.docx"]
    assert "over the 1,048,576-byte limit" in found


def test_text_and_segment_caps(client: Client, tmp_path: Path) -> None:
    long = tmp_path / "long.txt"
    long.write_text("\n\n".join(f"Paragraph {i} about the harbour." for i in range(4000)))
    found = failures(limited(client, max_text_chars=10_000).ingest([long], collection="caps"))
    assert found == {
        "long.txt": "[limit] holds more than 10,000 characters of text (MMSEARCH_MAX_TEXT_CHARS)"
    }
    found = failures(limited(client, max_segments=5).ingest([long], collection="caps"))
    assert found == {"long.txt": "[limit] makes more than 5 segments (MMSEARCH_MAX_SEGMENTS)"}
