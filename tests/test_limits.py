"""Per-file limits: duration, wall-clock time and memory fail one file, not the batch."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from bench.media import write_wav
from mmsearch.client import Client

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
    assert set(found) == {"hum.wav", "report.pdf"}  # both reach a decode step; the note none
    assert all("per-file limit" in message for message in found.values())
    assert report.ingested == 1


def test_file_over_the_memory_limit(client: Client, folder: Path) -> None:
    report = limited(client, max_memory_mb=1).ingest([folder / "hum.wav"], collection="mem")
    assert "needed more than the 1 MiB memory limit" in failures(report)["hum.wav"]
    relaxed = limited(client, max_memory_mb=64 * 1024).ingest(
        [folder / "hum.wav"], collection="mem"
    )
    assert relaxed.ingested == 1 and relaxed.failed == 0
