"""Evaluate the offline image spaces on real photos with human-written, judged queries.

Text→image: each ConSE recipe in VARIANTS ranks the whole corpus for every query of
`bench.evalsets.image_queries` by brute-force cosine (this measures the space, not the
database). Reported per split: hit@1 and hit@5 (the share of queries with a relevant image
in the top 1 / 5, "recall@k" in the image-retrieval literature), recall@5 (the share of all
relevant images found in the top 5) and MRR, computed with ir-measures.

Image→image: every corpus photo, cropped, rotated, shrunk and JPEG-compressed, or turned
grey, is a query whose one relevant image is its original; features space vs ConSE space.

`--grid` instead scores a grid of ConSE recipes on the tune split only and prints each
knob's mean score per value, which is how the default recipe was chosen. Usage:

    python -m bench.eval_text_to_image            # table + bench/out/text_to_image.json
    python -m bench.eval_text_to_image --grid     # tuning grid, tune split only
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import time
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Any

import ir_measures
import numpy as np
import platformdirs
from ir_measures import RR, R, Success
from PIL import Image

from bench.evalsets.image_queries import EDITS, ImageSet, Query, Split, build
from mmsearch.embed.conse import ConSEEmbedder, conse_vectors
from mmsearch.embed.efficientnet import ClassifierOutput, shared_classifier

OUT = Path(__file__).resolve().parent / "out"
SPLITS: tuple[Split, ...] = ("tune", "heldout")
MEASURES = {"hit@1": Success @ 1, "hit@5": Success @ 5, "recall@5": R @ 5, "MRR": RR}

#: (name, ConSE recipe overrides). Each step adds one idea to the naive baseline; the last
#: is the shipped default recipe, chosen with `--grid` on the tune split.
_NAIVE = {"names": "clean", "template": "a photo of a {}", "temperature": 1.0}
VARIANTS: list[tuple[str, dict[str, object]]] = [
    (
        "naive: top-10, 'a photo of a {label}'",
        {**_NAIVE, "hypernym_weight": 0.0, "description_weight": 0.0},
    ),
    (
        "+ GPT common name",
        {**_NAIVE, "names": "clean+gpt", "hypernym_weight": 0.0, "description_weight": 0.0},
    ),
    ("+ WordNet hypernyms", {**_NAIVE, "names": "clean+gpt", "description_weight": 0.0}),
    ("+ GPT descriptions", {**_NAIVE, "names": "clean+gpt"}),
    ("+ temperature 3, bare labels = default", {}),
    ("default, top-1 class only", {"top_k": 1}),
]

GRID: dict[str, list[object]] = {
    "top_k": [1, 5, 10, 20, 50, 100],
    "temperature": [1.0, 2.0, 3.0, 4.0, 6.0, 8.0],
    "names": ["clean", "clean+gpt"],
    "template": ["{}", "a photo of a {}"],
    "hypernym_levels": [1, 3, 6],
    "hypernym_weight": [0.0, 0.5, 1.0],
    "hypernym_decay": [0.5, 1.0],
    "description_weight": [0.0, 0.5, 1.0, 2.0],
}
#: Knobs applied after classification: varied without rebuilding class vectors.
RANKING_KNOBS = ("top_k", "temperature")


def classify(images: list[Image.Image], batch: int = 16) -> ClassifierOutput:
    classifier = shared_classifier()
    outputs = [classifier.run(images[i : i + batch]) for i in range(0, len(images), batch)]
    return ClassifierOutput(
        np.concatenate([o.logits for o in outputs]), np.concatenate([o.features for o in outputs])
    )


def evaluate(
    queries: list[Query], query_vectors: np.ndarray, ids: list[str], image_vectors: np.ndarray
) -> dict[str, float]:
    """Rank every image for every query by cosine and score the rankings."""
    scores = query_vectors @ image_vectors.T
    qrels = [ir_measures.Qrel(q.qid, doc, 1) for q in queries for doc in q.relevant]
    run = [
        ir_measures.ScoredDoc(q.qid, doc, float(s))
        for q, row in zip(queries, scores, strict=True)
        for doc, s in zip(ids, row, strict=True)
    ]
    result = ir_measures.calc_aggregate(MEASURES.values(), qrels, run)
    return {name: float(result[m]) for name, m in MEASURES.items()}


def first_relevant_ranks(
    queries: list[Query], query_vectors: np.ndarray, ids: list[str], image_vectors: np.ndarray
) -> dict[str, int]:
    """Per query, the rank (1-based) of its best-placed relevant image: for reading failures."""
    order = np.argsort(-(query_vectors @ image_vectors.T), axis=1)
    return {
        q.text: 1 + next(r for r, j in enumerate(row) if ids[j] in q.relevant)
        for q, row in zip(queries, order, strict=True)
    }


def text_to_image(
    image_set: ImageSet, logits: np.ndarray, splits: Iterable[Split]
) -> list[dict[str, Any]]:
    ids = list(image_set.images)
    rows = []
    for name, recipe in VARIANTS:
        space = ConSEEmbedder(**recipe)
        image_vectors = space.embed_logits(logits)
        row: dict[str, Any] = {"variant": name, "model_id": space.model_id}
        for split in splits:
            queries = image_set.split(split)
            q_vectors = space.encode_texts([q.text for q in queries], query=True)
            row[split] = evaluate(queries, q_vectors, ids, image_vectors)
            row[f"{split}_ranks"] = first_relevant_ranks(queries, q_vectors, ids, image_vectors)
        rows.append(row)
    return rows


def image_to_image(
    images: list[Image.Image], corpus: ClassifierOutput
) -> dict[str, dict[str, float]]:
    """Hit@1 and MRR of transformed copies finding their original, per space."""
    conse = ConSEEmbedder()
    spaces = {
        "efficientnet-features": lambda out: _unit(out.features),
        "conse": lambda out: conse.embed_logits(out.logits),
    }
    result: dict[str, dict[str, float]] = {}
    for transform_name, transform in EDITS.items():
        copies = classify([transform(im) for im in images])
        for space_name, vectors in spaces.items():
            scores = vectors(copies) @ vectors(corpus).T
            ranks = 1 + (scores > np.diag(scores)[:, None]).sum(axis=1)
            result[f"{space_name} / {transform_name}"] = {
                "hit@1": float((ranks == 1).mean()),
                "MRR": float((1.0 / ranks).mean()),
            }
    return result


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def grid(image_set: ImageSet, logits: np.ndarray) -> list[dict[str, Any]]:
    """Score every recipe in GRID on the tune split; returns one row per recipe."""
    queries = image_set.split("tune")
    ids = list(image_set.images)
    label_knobs = [k for k in GRID if k not in RANKING_KNOBS]
    q_vectors: np.ndarray | None = None
    rows = []
    for values in itertools.product(*(GRID[k] for k in label_knobs)):
        label_recipe = dict(zip(label_knobs, values, strict=True))
        if label_recipe["hypernym_weight"] == 0 and (
            label_recipe["hypernym_levels"] != 1 or label_recipe["hypernym_decay"] != 0.5
        ):
            continue  # these knobs do nothing without hypernyms
        space = ConSEEmbedder(**label_recipe)
        if q_vectors is None:
            q_vectors = space.encode_texts([q.text for q in queries], query=True)
        for top_k, temperature in itertools.product(*(GRID[k] for k in RANKING_KNOBS)):
            vectors = conse_vectors(logits, space.class_vectors, top_k, temperature)
            scores = evaluate(queries, q_vectors, ids, vectors)
            rows.append({**label_recipe, "top_k": top_k, "temperature": temperature, **scores})
    return rows


def print_marginals(rows: list[dict[str, Any]], metric: str = "MRR") -> None:
    """Each knob's mean tune score per value, over all other knobs: robust to lucky argmaxes."""
    for knob in GRID:
        means = {
            value: np.mean([r[metric] for r in rows if r[knob] == value]) for value in GRID[knob]
        }
        print(f"{knob:>20}: " + "  ".join(f"{v!s}={m:.3f}" for v, m in means.items()))
    best = sorted(rows, key=lambda r: (r[metric], r["hit@1"]), reverse=True)[:15]
    print("\nbest recipes on tune:")
    for r in best:
        knobs = ", ".join(f"{k}={r[k]}" for k in GRID)
        print(f"  MRR={r['MRR']:.3f} hit@1={r['hit@1']:.3f} hit@5={r['hit@5']:.3f}  {knobs}")


def print_table(rows: list[dict[str, Any]], splits: list[Split]) -> None:
    header = f"{'variant':<40}" + "".join(f" | {split:^31}" for split in splits)
    sub = f"{'':<40}" + "".join(" | hit@1  hit@5  rec@5   MRR " for _ in splits)
    print(header)
    print(sub)
    for row in rows:
        cells = "".join(" | " + "  ".join(f"{row[s][m]:.3f}" for m in MEASURES) for s in splits)
        print(f"{row['variant']:<40}{cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(platformdirs.user_cache_dir("mmsearch")) / "image-eval",
        help="where opencv-doc and the opaque-named corpus are kept",
    )
    parser.add_argument("--grid", action="store_true", help="tuning grid on the tune split")
    parser.add_argument("--splits", nargs="+", default=list(SPLITS), choices=SPLITS)
    args = parser.parse_args()

    image_set = build(args.cache_dir)
    shared_classifier()  # load the weights outside the timed part
    started = time.perf_counter()
    images = [Image.open(path).convert("RGB") for path in image_set.images.values()]
    corpus = classify(images)
    speed = len(images) / (time.perf_counter() - started)
    print(
        f"{len(images)} images, {len(image_set.queries)} queries "
        f"({len(image_set.split('tune'))} tune, {len(image_set.split('heldout'))} held-out); "
        f"decode + classify: {speed:.1f} images/s\n"
    )
    OUT.mkdir(exist_ok=True)
    if args.grid:
        rows = grid(image_set, corpus.logits)
        print_marginals(rows)
        (OUT / "conse_grid.json").write_text(json.dumps(rows, indent=1))
        return

    rows = text_to_image(image_set, corpus.logits, args.splits)
    print_table(rows, args.splits)
    sanity = image_to_image(images, corpus)
    print("\nimage→image: a transformed copy finds its original among all corpus images")
    for name, scores in sanity.items():
        print(f"  {name:<48} hit@1={scores['hit@1']:.3f}  MRR={scores['MRR']:.3f}")
    report = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "images": len(images),
        "queries": {s: len(image_set.split(s)) for s in SPLITS},
        "classifier_images_per_s": speed,
        "text_to_image": rows,
        "image_to_image": sanity,
    }
    (OUT / "text_to_image.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
