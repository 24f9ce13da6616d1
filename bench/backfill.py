"""Backfill throughput per modality against the bare model, and a 10k-segment text backfill.

    .venv/bin/python -m bench.backfill --quick      # small inputs, a few minutes
    .venv/bin/python -m bench.backfill              # the documented run
        [--modalities text,image,audio,video] [--segments 10000] [--cache DIR] [--dsn URL]

Per modality, the real media of `bench.ingest` (same plans) are ingested with the default
spaces into a scratch database. Then a twin of one default space (the same model under a
new name, as a model change would add) is configured and filled by `Client.backfill`:
`text_b` (MiniLM) over the text chunks; `visual_b` (EfficientNet-Lite2 features) over the
images and the video shots, decoded again from the files; `sound_b` (aisfx) over the sound
windows, decoded again. The bare model is the same embedder on the same payloads (the
stored texts; the pictures and windows decoded beforehand, untimed), batched, no database:
overhead = (backfill - bare) / backfill is what the backfill adds (reading, decoding the
source again, hashing it, writing the vectors into the live HNSW index).

The 10k run writes `--segments` chunks of real prose (installed packages' descriptions,
cut by the ingest chunker, repeated as needed) without vectors, as a bulk load would,
then backfills the `text` space over them, and times the bare model on the first
`--bare-sample` of the same texts (per segment, the model's time does not depend on how
many there are; sampling halves the run).
Prints Markdown tables and writes bench/out/backfill.json (backfill-quick.json).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from itertools import cycle, islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs

from bench.ingest import (
    CORPORA,
    FULL,
    MODALITIES,
    OUT,
    QUICK,
    cpu_seconds,
    database_server,
    environment,
    rounded,
    timed,
)

if TYPE_CHECKING:
    from mmsearch.client import Client
    from mmsearch.config import Settings
    from mmsearch.ingest.types import SegmentDraft

#: the twin space each modality's backfill fills: (name, family, the default space it copies)
TWINS = {
    "text": ("text_b", "sentence-transformers", "text"),
    "image": ("visual_b", "efficientnet-features", "visual"),
    "audio": ("sound_b", "aisfx", "sound"),
    "video": ("visual_b", "efficientnet-features", "visual"),
}


def with_twin(settings: Settings, modality: str) -> Settings:
    from mmsearch.config import SpaceSpec

    name, family, _ = TWINS[modality]
    return dataclasses.replace(settings, spaces=(*settings.spaces, SpaceSpec(name, family)))


def payloads(client: Client, modality: str) -> list[SegmentDraft]:
    """What the backfill embedded, prepared for the bare model (decoding not timed)."""
    from psycopg import sql

    from mmsearch.ingest.backfill import MEDIA_KINDS
    from mmsearch.ingest.detect import detect
    from mmsearch.ingest.extract import Extractors
    from mmsearch.ingest.types import SegmentDraft

    name = TWINS[modality][0]
    with client.db.writer() as conn:
        if modality == "text":
            query = sql.SQL("SELECT content FROM mmsearch.segment WHERE {} IS NOT NULL")
            rows = conn.execute(query.format(sql.Identifier(f"{name}_vec"))).fetchall()
            return [SegmentDraft(kind="chunk", content=content) for (content,) in rows]
        uris = [u for (u,) in conn.execute("SELECT uri FROM mmsearch.record ORDER BY id")]
    kinds = MEDIA_KINDS["audio" if modality == "audio" else "image"]
    extractors = Extractors(client.settings, client.embedders)
    drafts = []
    for uri in uris:
        detected = detect(Path(uri))
        if detected is not None and detected.media_type != "text":
            segments = extractors.extract_media(Path(uri), detected).segments
            drafts += [d for d in segments if d.kind in kinds]
    return drafts


def measure(client: Client, modality: str) -> dict[str, Any]:
    """Backfill the modality's twin space, then the bare model on the same payloads."""
    from mmsearch.ingest.embedding import embed_segments

    name = TWINS[modality][0]
    server = database_server(client)
    started = cpu_seconds(server)
    report = client.backfill(name)
    backfill_cpu = cpu_seconds(server) - started
    embedder = client.embedder(name)
    drafts = payloads(client, modality)
    for draft in drafts:  # decode lazy keyframes now, so the bare model times the model only
        draft.images = [image.convert("RGB") for image in draft.images]
    started = cpu_seconds(None)
    bare = timed(lambda: list(embed_segments(embedder, drafts)))
    bare_cpu = cpu_seconds(None) - started
    return {
        "modality": modality,
        "space": name,
        "segments": report.embedded,
        "skipped": report.skipped,
        "backfill_s": report.seconds,
        "segments_per_s": report.embedded / report.seconds if report.seconds else None,
        "stage_s": report.stage_seconds,
        "bare_s": bare,
        "bare_segments": len(drafts),
        "overhead_pct": 100 * (report.seconds - bare) / report.seconds if report.seconds else None,
        "backfill_cpu_s": backfill_cpu,
        "bare_cpu_s": bare_cpu,
    }


def prose(client: Client, count: int) -> list[str]:
    """`count` chunks of real prose: package descriptions cut as ingest cuts text."""
    import importlib.metadata as md

    from mmsearch.ingest.extract import Extractors

    chunker = Extractors(client.settings, client.embedders).chunker
    bodies = sorted(
        {d.metadata["Name"]: d.metadata.get_payload() or "" for d in md.distributions()}.items()
    )
    pieces = [body[a:b] for _, body in bodies if len(body) >= 500 for a, b in chunker.chunks(body)]
    return list(islice(cycle(pieces), count))


def bulk_text(client: Client, texts: list[str], per_record: int = 20) -> None:
    """Records of `per_record` chunk segments each, written without vectors."""
    with client.db.writer() as conn:
        (cid,) = conn.execute(
            "INSERT INTO mmsearch.collection (name) VALUES ('bulk') RETURNING id"
        ).fetchone()
        for start in range(0, len(texts), per_record):
            (rid,) = conn.execute(
                "INSERT INTO mmsearch.record (collection_id, uri, sha256, media_type, mime, bytes)"
                " VALUES (%s, %s, %s, 'text', 'text/plain', 0) RETURNING id",
                (cid, f"/bulk/{start:06}.txt", f"{start:064x}"),
            ).fetchone()
            conn.cursor().executemany(
                "INSERT INTO mmsearch.segment (record_id, ordinal, kind, content)"
                " VALUES (%s, %s, 'chunk', %s)",
                [(rid, i, t) for i, t in enumerate(texts[start : start + per_record])],
            )


def text_10k(client: Client, count: int, sample: int) -> dict[str, Any]:
    """Backfill `count` bulk-written segments; the bare model runs on the first `sample`."""
    texts = prose(client, count)
    bulk_text(client, texts)
    server = database_server(client)
    started = cpu_seconds(server)
    report = client.backfill("text")
    backfill_cpu = cpu_seconds(server) - started
    embedder = client.embedder("text")
    batch, sampled = embedder.batch_size, texts[:sample]
    started = cpu_seconds(None)
    bare = timed(
        lambda: [embedder.encode_texts(sampled[i : i + batch]) for i in range(0, sample, batch)]
    )
    bare_cpu = cpu_seconds(None) - started
    per_segment = report.seconds / report.embedded
    return {
        "segments": report.embedded,
        "mean_chars": sum(map(len, texts)) / len(texts),
        "backfill_s": report.seconds,
        "segments_per_s": report.embedded / report.seconds,
        "stage_s": report.stage_seconds,
        "backfill_cpu_s": backfill_cpu,
        "bare_sample": len(sampled),
        "bare_s": bare,
        "bare_cpu_s": bare_cpu,
        "bare_segments_per_s": len(sampled) / bare,
        "overhead_pct": 100 * (per_segment - bare / len(sampled)) / per_segment,
    }


def print_tables(rows: list[dict[str, Any]], bulk: dict[str, Any] | None) -> None:
    print(
        "\n| modality | space | segments | backfill s | segments/s | read s | decode s"
        " | embed s | write s | bare model s | overhead | CPU s backfill / bare |"
    )
    print("|---|---|" + "---:|" * 10)
    for r in rows:
        st = r["stage_s"]
        print(
            f"| {r['modality']} | {r['space']} | {r['segments']} | {r['backfill_s']:.1f}"
            f" | {r['segments_per_s']:.1f} | {st['read']:.2f} | {st['decode']:.1f}"
            f" | {st['embed']:.1f} | {st['write']:.2f} | {r['bare_s']:.1f}"
            f" | {r['overhead_pct']:.0f} % | {r['backfill_cpu_s']:.1f} / {r['bare_cpu_s']:.1f} |"
        )
    if bulk:
        st = bulk["stage_s"]
        print(
            f"\n{bulk['segments']} text segments (mean {bulk['mean_chars']:.0f} characters):"
            f" backfill {bulk['backfill_s']:.1f} s, {bulk['backfill_cpu_s']:.1f} CPU s"
            f" ({bulk['segments_per_s']:.1f} segments/s; read {st['read']:.1f}, embed"
            f" {st['embed']:.1f}, write {st['write']:.1f}); bare model on {bulk['bare_sample']}"
            f" of them: {bulk['bare_s']:.1f} s, {bulk['bare_cpu_s']:.1f} CPU s"
            f" ({bulk['bare_segments_per_s']:.1f} segments/s); overhead per segment"
            f" {bulk['overhead_pct']:.0f} %"
        )


def main() -> None:
    from bench.evalsets.fetch import DataUnavailable
    from bench.ingest import scratch_client
    from bench.scratch import server
    from mmsearch.client import Client
    from mmsearch.config import Settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small inputs")
    parser.add_argument("--modalities", default=",".join(MODALITIES))
    parser.add_argument("--segments", type=int, help="text segments of the bulk run (10000)")
    parser.add_argument(
        "--bare-sample", type=int, default=2000, help="of them, how many the bare model encodes"
    )
    parser.add_argument(
        "--cache", type=Path, default=Path(platformdirs.user_cache_dir("mmsearch")) / "eval"
    )
    parser.add_argument("--dsn", default=os.environ.get("MMSEARCH_DATABASE_URL"))
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    count = args.segments if args.segments is not None else 1000 if args.quick else 10_000
    rows: list[dict[str, Any]] = []
    bulk = None
    env: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="mmsearch-bench-backfill-", dir="/tmp") as tmp,
        server(args.dsn) as maintenance,
    ):
        settings = Settings.load(home=Path(tmp) / "home")
        for modality in [m for m in MODALITIES if m in args.modalities.split(",")]:
            folder = Path(tmp) / modality
            folder.mkdir()
            try:
                files = CORPORA[modality](plan, args.cache, folder)
            except DataUnavailable as exc:
                print(f"{modality}: skipped, {exc}")
                continue
            with scratch_client(maintenance, settings) as client:
                env = environment(client)
                report = client.ingest(files, collection=modality)
                print(f"{modality}: ingested {report.ingested} files in {report.seconds:.0f} s")
                twin = Client(client.db, with_twin(settings, modality))  # the space added later
                rows.append(measure(twin, modality))
                print(json.dumps(rounded(rows[-1])))
        if count:
            with scratch_client(maintenance, settings) as client:
                env = environment(client)
                bulk = text_10k(client, count, min(args.bare_sample, count))
    print_tables(rows, bulk)
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / ("backfill-quick.json" if args.quick else "backfill.json")
    out.write_text(
        json.dumps(rounded({"environment": env, "modalities": rows, "text_bulk": bulk}), indent=1)
    )
    print(f"\nwrote {out}")


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"({time.perf_counter() - started:.0f} s)")
