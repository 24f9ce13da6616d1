"""`make demo`: build a small mixed corpus, ingest it, and show a few searches.

The corpus is the committed text documents in examples/corpus plus photos that ship with
scikit-image and scikit-learn (saved under opaque names, so no file name gives an answer
away), a rendered "screenshot" with text for OCR, a corrupt JPEG and an unknown binary file
(both must land in ingest_error / be skipped while the rest ingests), a voice memo and a
short video with a spoken track (speech from espeak-ng, installed through apt when running
as root; without it the demo says so and leaves them out).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUILD = HERE.parent / "build" / "demo-corpus"


def build_corpus() -> Path:
    import numpy as np
    from PIL import Image, ImageDraw, ImageFont
    from skimage import data
    from sklearn.datasets import load_sample_images

    if BUILD.exists():
        shutil.rmtree(BUILD)
    (BUILD / "docs").mkdir(parents=True)
    (BUILD / "photos").mkdir()
    for doc in sorted((HERE / "corpus").iterdir()):
        shutil.copy(doc, BUILD / "docs" / doc.name)
    write_pdf(BUILD / "docs" / "travel-policy.pdf")
    photos = [data.chelsea(), data.astronaut(), data.coffee(), data.rocket(), data.camera()]
    photos += list(load_sample_images().images)  # a Chinese temple, a flower
    for index, pixels in enumerate(photos, 1):
        Image.fromarray(np.asarray(pixels)).convert("RGB").save(
            BUILD / "photos" / f"IMG_{index:04d}.jpg", quality=90
        )
    slide = Image.new("RGB", (900, 300), "white")
    draw = ImageDraw.Draw(slide)
    font = ImageFont.load_default(size=44)
    draw.text((40, 60), "Quarterly revenue grew 12%", fill="black", font=font)
    draw.text((40, 160), "Next review: March planning", fill="black", font=font)
    slide.save(BUILD / "photos" / "screenshot-7731.png")
    good = (BUILD / "photos" / "IMG_0001.jpg").read_bytes()
    (BUILD / "photos" / "IMG_9999.jpg").write_bytes(good[: len(good) // 3])  # truncated
    (BUILD / "docs" / "firmware.bin").write_bytes(bytes(range(256)) * 64)  # unknown binary
    build_recordings(BUILD / "recordings", photos)
    return BUILD


def write_pdf(path: Path) -> None:
    """A two-page PDF with a real text layer (fpdf2)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title("Travel expenses policy")
    pdf.set_font("Helvetica", size=12)
    for page in (
        "Travel expenses policy. Book trains for trips under 600 km; flights need a manager's"
        " approval. Hotels up to 140 EUR a night in capitals, 110 EUR elsewhere.",
        "Claims are filed within 30 days with receipts. Meals abroad are reimbursed at the"
        " daily rate of the destination country; alcohol is never reimbursed.",
    ):
        pdf.add_page()
        pdf.multi_cell(0, 8, page)
    pdf.output(str(path))


MEMO = [
    (1.0, "Team meeting notes for Monday."),
    (6.0, "The new office opens in Lisbon next spring."),
    (13.0, "Remember to renew the parking permits before Friday."),
]
VIDEO_LINE = (7.5, "Our cat loves sleeping in the sun.")


def build_recordings(folder: Path, photos: list) -> None:
    """A voice memo (MP3) and a 12 s video of four photos with one spoken sentence."""
    import numpy as np
    from PIL import Image

    from bench import media as synth

    rate = 16_000
    try:
        lines = [(at, synth.speech(text, rate)) for at, text in MEMO]
        video_line = synth.speech(VIDEO_LINE[1], rate)
    except synth.MediaUnavailable as exc:
        print(f"(no recordings in the demo: {exc})")
        return
    folder.mkdir()
    track = synth.silence(18.0, rate)
    for at, pcm in lines:
        track[int(at * rate) : int(at * rate) + len(pcm)] = pcm
    synth.write_audio(folder / "memo-0412.mp3", track, rate, "libmp3lame")
    frames = [
        (np.asarray(Image.fromarray(np.asarray(p)).convert("RGB").resize((640, 360))), 3.0)
        for p in (photos[1], photos[3], photos[0], photos[2])  # astronaut, rocket, cat, coffee
    ]
    sound = synth.silence(12.0, rate)
    at = int(VIDEO_LINE[0] * rate)
    sound[at : at + len(video_line)] = video_line[: len(sound) - at]
    synth.write_video(folder / "clip-0093.mp4", frames, fps=10, audio=sound, rate=rate)


def mmsearch(*args: str) -> None:
    print(f"\n$ mmsearch {' '.join(args)}", flush=True)
    subprocess.run([sys.executable, "-m", "mmsearch", *args], check=False)


def main() -> None:
    corpus = build_corpus()
    print(f"demo corpus: {corpus}")
    mmsearch("init")
    mmsearch("ingest", str(corpus), "--collection", "demo", "--tag", "demo")
    mmsearch("ingest", str(corpus), "--collection", "demo", "--tag", "demo")  # a no-op now
    mmsearch("search", "how do I get a new password", "-c", "demo", "-k", "3")
    mmsearch("search", "a cat", "-c", "demo", "--media-type", "image", "-k", "3")
    mmsearch("search", "can I fly to a conference", "-c", "demo", "-k", "2")
    mmsearch("search", "a rocket launch", "-c", "demo", "-k", "3")
    mmsearch("search", "revenue growth", "-c", "demo", "-k", "3")
    mmsearch("search", "--like", str(corpus / "photos" / "IMG_0003.jpg"), "-c", "demo", "-k", "3")
    mmsearch("search", "grease fire", "-c", "demo", "--mode", "keyword", "-k", "2", "--json")
    if (corpus / "recordings").exists():
        print("\n# the memo says 'renew the parking permits' at 13 s; the video's cat is on 6-9 s")
        mmsearch("search", "parking permit renewal", "-c", "demo", "-k", "2")
        mmsearch("search", "a cat", "-c", "demo", "--media-type", "video", "--segments", "-k", "2")
    mmsearch("status")


if __name__ == "__main__":
    main()
