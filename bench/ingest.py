"""Ingest throughput for text and images, against the models' own time on the same inputs.

    .venv/bin/python bench/ingest.py [--texts 150] [--images 40]

Builds a corpus from what is installed (package descriptions from *.dist-info/METADATA as
real prose; scikit-image photos, cropped to make distinct files), ingests it into a
throwaway embedded database, then times the bare models on the same inputs. The
difference is the pipeline's overhead: decoding, chunking, the database.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "out"


def build_texts(folder: Path, count: int) -> list[Path]:
    import importlib.metadata as md

    folder.mkdir(parents=True)
    written: list[Path] = []
    for dist in sorted(md.distributions(), key=lambda d: d.metadata["Name"] or ""):
        body = dist.metadata.get_payload() or ""
        if len(body) < 2000:
            continue
        path = folder / f"doc{len(written):04}.md"
        path.write_text(body)
        written.append(path)
        if len(written) == count:
            break
    return written


def build_images(folder: Path, count: int) -> list[Path]:
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True)
    names = ["astronaut", "chelsea", "coffee", "rocket", "camera", "cat", "hubble_deep_field"]
    written = []
    rng = np.random.default_rng(0)
    for i in range(count):
        base = Image.fromarray(np.asarray(getattr(data, names[i % len(names)])())).convert("RGB")
        w, h = base.size
        dx, dy = rng.integers(0, w // 6), rng.integers(0, h // 6)
        path = folder / f"img{i:04}.jpg"
        base.crop((dx, dy, w - dx // 2, h - dy // 2)).save(path, quality=90)
        written.append(path)
    return written


def model_only_seconds(client, kind: str, paths: list[Path]) -> float:
    """The same inputs through the bare models: the floor the pipeline cannot beat."""
    from PIL import Image

    from mmsearch.ingest.extract import Extractors
    from mmsearch.ingest.ocr import OcrEngine

    extractors = Extractors(client)
    if kind == "text":
        chunks = []
        for path in paths:
            text = path.read_text()
            chunks += [text[a:b] for a, b in extractors.chunker.chunks(text)]
        started = time.perf_counter()
        client.embedder("text").encode_texts(chunks)
        return time.perf_counter() - started
    images = [Image.open(p).convert("RGB") for p in paths]
    ocr = OcrEngine()
    started = time.perf_counter()
    for name in ("image", "visual"):
        embedder = client.embedder(name)
        for i in range(0, len(images), embedder.batch_size):
            embedder.encode_images(images[i : i + embedder.batch_size])
    for image in images:
        ocr.read(image)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=150)
    parser.add_argument("--images", type=int, default=40)
    args = parser.parse_args()

    from mmsearch.client import Client
    from mmsearch.db import embedded

    home = Path(tempfile.mkdtemp(prefix="mmsb-", dir="/tmp"))
    rows = []
    try:
        client = Client.connect(home=home)
        client.register_spaces()  # load every model before timing
        for kind, builder, count in (
            ("text", build_texts, args.texts),
            ("image", build_images, args.images),
        ):
            paths = builder(home / kind, count)
            report = client.ingest([home / kind], collection=f"bench-{kind}")
            model = model_only_seconds(client, kind, paths)
            with client.db.transaction() as conn:
                segments = conn.execute(
                    "SELECT count(*) FROM mmsearch.segment s JOIN mmsearch.collection c"
                    " ON c.id = s.collection_id WHERE c.name = %s",
                    (f"bench-{kind}",),
                ).fetchone()[0]
            rows.append(
                {
                    "kind": kind,
                    "files": len(paths),
                    "ingested": report.ingested,
                    "segments": segments,
                    "pipeline_s": round(report.seconds, 2),
                    "items_per_s": round(len(paths) / report.seconds, 2),
                    "model_only_s": round(model, 2),
                    "overhead_pct": round(100 * (report.seconds - model) / report.seconds, 1),
                    "stages_s": report.stage_seconds,
                }
            )
        client.close()
    finally:
        embedded.stop(home / "pg")
        shutil.rmtree(home, ignore_errors=True)
    print(
        f"{'kind':6} {'files':>6} {'segments':>9} {'pipeline s':>11} {'items/s':>8}"
        f" {'model s':>8} {'overhead':>9}"
    )
    for r in rows:
        print(
            f"{r['kind']:6} {r['files']:>6} {r['segments']:>9} {r['pipeline_s']:>11}"
            f" {r['items_per_s']:>8}"
            f" {r['model_only_s']:>8} {r['overhead_pct']:>8}%   stages {r['stages_s']}"
        )
    OUT.mkdir(exist_ok=True)
    (OUT / "ingest.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
