"""Photos: text→image (written descriptions) and image→image (edited copies of each photo).

The corpus and the text queries are `bench.evalsets.image_queries`; the image→image queries
are each photo put through one of `EDITS` (taken in turn), whose only relevant image is the
original. Quick runs use only the photos that ship with scikit-image and scikit-learn.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from bench.evalsets import image_queries
from mmsearch.eval.judged import EXAMPLE_MODES, JudgedSet, Judgment, Query, query_id


def build(cache: Path, *, quick: bool = False) -> list[JudgedSet]:
    photos = image_queries.build(cache / "images", opencv=not quick)
    origin = (
        "scikit-image and scikit-learn"
        if quick
        else "Debian opencv-doc, scikit-image and scikit-learn"
    )
    text_image = JudgedSet(
        name="text-image",
        description=(
            f"{len(photos.images)} photos from {origin} under opaque names; written "
            "descriptions of what each shows, every image judged relevant listed"
        ),
        documents=photos.images,
        queries=[
            Query(q.qid, tuple(Judgment(doc) for doc in sorted(q.relevant)), text=q.text)
            for q in photos.queries
        ],
    )
    return [text_image, _edited_copies(photos, cache / "image-image-queries")]


def _edited_copies(photos: image_queries.ImageSet, folder: Path) -> JudgedSet:
    folder.mkdir(parents=True, exist_ok=True)
    edits = list(image_queries.EDITS.items())
    queries = []
    for i, (doc, path) in enumerate(sorted(photos.images.items())):
        name, edit = edits[i % len(edits)]
        example = folder / f"{doc}-edit{i % len(edits)}.jpg"
        if not example.exists():
            with Image.open(path) as im:
                edit(im.convert("RGB")).save(example, quality=90)
        queries.append(Query(query_id(f"{doc} {name}"), (Judgment(doc),), example=example))
    return JudgedSet(
        name="image-image",
        description=(
            "each photo of text-image cropped to 70%, rotated 10°, shrunk to 1/3 with JPEG "
            "quality 25, or turned grey (in turn); the original is the one relevant image"
        ),
        documents=photos.images,
        queries=queries,
        modes=EXAMPLE_MODES,
        reuses="text-image",
    )
