"""A judged text→image query set over real photos that other people made and named.

The corpus is the example images of Debian's `opencv-doc`, scikit-image's bundled photos and
scikit-learn's two sample images. Each is copied under an opaque content-hash name, so no
file name can hint at the answer; the queries are written descriptions of what a person sees,
with every image judged relevant listed (any image not listed counts as irrelevant).

Images with nothing a person would search for (masks, templates, a disparity map, a grey
gradient, noise ellipses, a CT phantom, a lone blurred cell, a 102-pixel retina crop) and 24
of the 26 near-identical camera-calibration shots are left out; synthetic shape drawings
stay in as distractors with one honest query.

The tune/held-out split is fixed by a hash of the query text, decided before any tuning.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps

from bench.evalsets.fetch import debian_package

Split = Literal["tune", "heldout"]

OPENCV_DATA = "usr/share/doc/opencv-doc/examples/data"

OPENCV_IMAGES = (
    "Blender_Suzanne1.jpg", "Blender_Suzanne2.jpg", "HappyFish.jpg", "LinuxLogo.jpg",
    "WindowsLogo.jpg", "aero1.jpg", "aero3.jpg", "aloeL.jpg", "aloeR.jpg", "apple.jpg",
    "baboon.jpg", "basketball1.png", "basketball2.png", "blox.jpg", "board.jpg", "box.png",
    "box_in_scene.png", "building.jpg", "butterfly.jpg", "cards.png", "chessboard.png",
    "chicky_512.png", "detect_blob.png", "digits.png", "ela_modified.jpg", "ela_original.jpg",
    "fruits.jpg", "graf1.png", "graf3.png", "home.jpg", "imageTextN.png", "imageTextR.png",
    "left.jpg", "left01.jpg", "leuvenA.jpg", "leuvenB.jpg", "licenseplate_motion.jpg",
    "messi5.jpg", "ml.png", "notes.png", "opencv-logo-white.png", "opencv-logo.png",
    "orange.jpg", "pca_test1.jpg", "pic1.png", "pic2.png", "pic3.png", "pic4.png", "pic5.png",
    "pic6.png", "right.jpg", "right01.jpg", "rubberwhale1.png", "rubberwhale2.png",
    "smarties.png", "squirrel_cls.jpg", "starry_night.jpg", "stuff.jpg", "sudoku.png",
    "text_defocus.jpg", "text_motion.jpg",
)  # fmt: skip

#: scikit-image photos that load without a download (`cat` duplicates `chelsea`).
SKIMAGE_IMAGES = (
    "astronaut", "brick", "camera", "chelsea", "checkerboard", "clock", "coffee", "coins",
    "colorwheel", "grass", "gravel", "horse", "hubble_deep_field", "immunohistochemistry",
    "logo", "moon", "page", "retina", "rocket", "stereo_motorcycle", "text",
)  # fmt: skip

SKLEARN_IMAGES = ("china.jpg", "flower.jpg")

_ANIMALS = (
    "skimage:chelsea", "opencv:chicky_512.png", "opencv:squirrel_cls.jpg", "opencv:baboon.jpg",
    "opencv:butterfly.jpg", "skimage:horse", "opencv:HappyFish.jpg",
)  # fmt: skip
_BUILDINGS = (
    "opencv:building.jpg", "opencv:home.jpg", "sklearn:china.jpg", "opencv:leuvenA.jpg",
    "opencv:leuvenB.jpg",
)  # fmt: skip
_PEOPLE = (
    "skimage:astronaut", "skimage:camera", "opencv:messi5.jpg", "opencv:basketball1.png",
    "opencv:basketball2.png", "opencv:left01.jpg", "opencv:right01.jpg",
)  # fmt: skip
_LOGOS = (
    "opencv:LinuxLogo.jpg", "opencv:WindowsLogo.jpg", "opencv:opencv-logo.png",
    "opencv:opencv-logo-white.png", "skimage:logo",
)  # fmt: skip
_PRINTED_TEXT = ("opencv:imageTextN.png", "opencv:imageTextR.png", "skimage:page")
_SHAPES = (*(f"opencv:pic{i}.png" for i in range(1, 7)), "opencv:detect_blob.png")

#: (query, relevant sources). Written from looking at the pictures, not their file names.
QUERIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("a cat", ("skimage:chelsea",)),
    ("close-up of a tabby cat's face with green eyes", ("skimage:chelsea",)),
    ("a dog", ("opencv:chicky_512.png",)),
    ("a small fluffy dog with its tongue out", ("opencv:chicky_512.png",)),
    ("a pet", ("skimage:chelsea", "opencv:chicky_512.png")),
    ("an animal", _ANIMALS),
    ("a squirrel eating on a tree branch", ("opencv:squirrel_cls.jpg",)),
    ("a rodent", ("opencv:squirrel_cls.jpg",)),
    ("a monkey with a bright red and blue face", ("opencv:baboon.jpg",)),
    ("a primate", ("opencv:baboon.jpg",)),
    ("a black and white butterfly resting on a leaf", ("opencv:butterfly.jpg",)),
    ("an insect", ("opencv:butterfly.jpg",)),
    ("the silhouette of a horse", ("skimage:horse",)),
    ("a cartoon of a smiling colourful fish", ("opencv:HappyFish.jpg",)),
    ("a red apple", ("opencv:apple.jpg",)),
    ("an orange", ("opencv:orange.jpg", "opencv:fruits.jpg")),
    ("fruit", ("opencv:apple.jpg", "opencv:orange.jpg", "opencv:fruits.jpg")),
    ("halved citrus fruits and a kiwi", ("opencv:fruits.jpg",)),
    ("colourful sugar-coated chocolate sweets", ("opencv:smarties.png",)),
    ("a cup of espresso on a saucer", ("skimage:coffee",)),
    ("a hot drink", ("skimage:coffee",)),
    ("a box of Italian breadsticks", ("opencv:box.png", "opencv:box_in_scene.png")),
    ("food", (
        "opencv:apple.jpg", "opencv:orange.jpg", "opencv:fruits.jpg", "opencv:smarties.png",
        "skimage:coffee", "opencv:box.png", "opencv:box_in_scene.png",
    )),
    ("a car", ("opencv:licenseplate_motion.jpg",)),
    ("blurry rear view of a silver car with brake lights", ("opencv:licenseplate_motion.jpg",)),
    ("a red motorbike parked in a garage", ("skimage:stereo_motorcycle",)),
    ("a vehicle", ("opencv:licenseplate_motion.jpg", "skimage:stereo_motorcycle")),
    ("a rocket on the launch pad at night", ("skimage:rocket",)),
    ("a rocket launch", ("skimage:rocket",)),
    ("a smiling astronaut in an orange spacesuit", ("skimage:astronaut",)),
    ("space exploration", ("skimage:rocket", "skimage:astronaut")),
    ("a telescope view of countless distant galaxies", ("skimage:hubble_deep_field",)),
    ("the cratered surface of the moon", ("skimage:moon",)),
    ("a man looking through a camera on a tripod", ("skimage:camera",)),
    ("a photographer", ("skimage:camera",)),
    ("a footballer kicking the ball", ("opencv:messi5.jpg",)),
    ("a soccer match", ("opencv:messi5.jpg",)),
    ("a man holding a basketball in a room", ("opencv:basketball1.png", "opencv:basketball2.png")),
    ("a ball", ("opencv:messi5.jpg", "opencv:basketball1.png", "opencv:basketball2.png")),
    ("a person", _PEOPLE),
    ("a man holding up a checkerboard in an office", ("opencv:left01.jpg", "opencv:right01.jpg")),
    ("a black and white checkerboard pattern", (
        "opencv:chessboard.png", "skimage:checkerboard", "opencv:left01.jpg", "opencv:right01.jpg",
    )),
    ("a modern hotel building with rows of windows", ("opencv:building.jpg",)),
    ("an ornate palace with towers under a blue sky", ("opencv:home.jpg",)),
    ("a Chinese pagoda above a lake", ("sklearn:china.jpg",)),
    ("an old street of red brick houses", ("opencv:leuvenA.jpg", "opencv:leuvenB.jpg")),
    ("a building", _BUILDINGS),
    ("aerial photograph of a town surrounded by forest", ("opencv:aero1.jpg", "opencv:aero3.jpg")),
    ("a brick wall", ("skimage:brick",)),
    ("a lawn of grass seen from above", ("skimage:grass",)),
    ("a pile of small stones", ("skimage:gravel",)),
    ("an aloe plant in a terracotta pot", ("opencv:aloeL.jpg", "opencv:aloeR.jpg")),
    ("a houseplant", ("opencv:aloeL.jpg", "opencv:aloeR.jpg")),
    ("an orange dahlia flower", ("sklearn:flower.jpg",)),
    ("a flower", ("sklearn:flower.jpg",)),
    ("a green circuit board with chips", ("opencv:board.jpg",)),
    ("electronics", ("opencv:board.jpg",)),
    ("a black notebook with a green elastic strap", (
        "opencv:ela_modified.jpg", "opencv:ela_original.jpg",
    )),
    ("a penguin sticker", ("opencv:ela_modified.jpg",)),
    ("graffiti on a wall", ("opencv:graf1.png", "opencv:graf3.png")),
    ("a famous painting of a swirling starry night sky", ("opencv:starry_night.jpg",)),
    ("a painting", ("opencv:starry_night.jpg",)),
    ("a cartoon robot in a graduation cap carrying books", ("opencv:ml.png",)),
    ("a grey 3D rendered monkey head", (
        "opencv:Blender_Suzanne1.jpg", "opencv:Blender_Suzanne2.jpg",
    )),
    ("two textbooks standing on the floor", ("opencv:left.jpg", "opencv:right.jpg")),
    ("books", ("opencv:left.jpg", "opencv:right.jpg")),
    ("toys and a seashell in front of a wooden lattice", (
        "opencv:rubberwhale1.png", "opencv:rubberwhale2.png",
    )),
    ("wooden toy blocks of different shapes", ("opencv:blox.jpg",)),
    ("a pen, a lighter and a bottle cap on a table", ("opencv:stuff.jpg",)),
    ("scattered playing cards", ("opencv:cards.png",)),
    ("old coins laid out in rows", ("skimage:coins",)),
    ("money", ("skimage:coins",)),
    ("a sudoku puzzle from a newspaper", ("opencv:sudoku.png",)),
    ("a line of sheet music", ("opencv:notes.png",)),
    ("a page of printed text", _PRINTED_TEXT),
    ("a blurry photo of a page with equations", (
        "opencv:text_defocus.jpg", "opencv:text_motion.jpg",
    )),
    ("handwritten maths on lined paper", ("skimage:text",)),
    ("a sheet covered in handwritten digits", ("opencv:digits.png",)),
    ("a company logo", _LOGOS),
    ("the Windows logo on a blue background", ("opencv:WindowsLogo.jpg",)),
    ("the word Linux in white on black", ("opencv:LinuxLogo.jpg",)),
    ("a circular rainbow colour wheel", ("skimage:colorwheel",)),
    ("simple geometric shapes drawn on a plain background", _SHAPES),
    ("a photograph of the back of the eye", ("skimage:retina",)),
    ("stained tissue under a microscope", ("skimage:immunohistochemistry",)),
    ("a motion-blurred clock", ("skimage:clock",)),
)  # fmt: skip


@dataclass(frozen=True)
class Query:
    qid: str
    text: str
    relevant: frozenset[str]
    split: Split


@dataclass(frozen=True)
class ImageSet:
    """The built corpus: opaque image id → file, and the judged queries."""

    root: Path
    images: dict[str, Path]
    queries: tuple[Query, ...]

    def split(self, name: Split) -> list[Query]:
        return [q for q in self.queries if q.split == name]


#: edits that keep what a photo shows: each turns a corpus photo into an image→image query
EDITS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "crop 70%": lambda im: im.crop(
        (im.width * 0.15, im.height * 0.15, im.width * 0.85, im.height * 0.85)
    ),
    "rotate 10°": lambda im: im.rotate(10, resample=Image.Resampling.BICUBIC),
    "shrink 1/3 + JPEG q25": lambda im: _jpeg(im.reduce(3), 25),
    "greyscale": lambda im: ImageOps.grayscale(im).convert("RGB"),
}


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(buffer).convert("RGB")


def split_of(text: str) -> Split:
    """Fixed before tuning: the parity of the first byte of the text's SHA-256."""
    return "tune" if hashlib.sha256(text.encode()).digest()[0] % 2 == 0 else "heldout"


def image_id(pixels: np.ndarray) -> str:
    """An opaque, content-derived id (identical pictures from two sources merge)."""
    digest = hashlib.sha256(str(pixels.shape).encode() + pixels.tobytes()).hexdigest()
    return f"img-{digest[:16]}"


def _sources(
    cache_dir: Path, *, opencv: bool
) -> Iterator[tuple[str, np.ndarray, bytes | None, str]]:
    """Yield (source key, RGB pixels, original file bytes if any, file suffix)."""
    import skimage.data
    from sklearn.datasets import load_sample_images

    if opencv:
        data = debian_package("opencv-doc", cache_dir, under=OPENCV_DATA)
        for name in OPENCV_IMAGES:
            path = data / name
            with Image.open(path) as im:
                pixels = np.asarray(im.convert("RGB"))
            yield f"opencv:{name}", pixels, path.read_bytes(), path.suffix.lower()
    for name in SKIMAGE_IMAGES:
        array = getattr(skimage.data, name)()
        if name == "stereo_motorcycle":
            array = array[0]  # the left view of the stereo pair
        yield f"skimage:{name}", np.asarray(Image.fromarray(array).convert("RGB")), None, ".png"
    samples = load_sample_images()
    for filename, array in zip(samples.filenames, samples.images, strict=True):
        name = Path(filename).name
        if name in SKLEARN_IMAGES:
            yield f"sklearn:{name}", np.asarray(array), None, ".png"


def build(cache_dir: Path, *, opencv: bool = True) -> ImageSet:
    """Copy the corpus under opaque names into `cache_dir/images` and judge the queries.

    Without `opencv` (no Debian package needed) the corpus is the 23 photos that ship with
    scikit-image and scikit-learn, and only queries with a relevant image among them stay.
    Writes `queries.json` (what an evaluation reads) and `sources.json` (id → origin, for a
    person auditing the judgments; retrieval code never reads it).
    """

    cache_dir.mkdir(parents=True, exist_ok=True)
    out = cache_dir / "images"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    images: dict[str, Path] = {}
    id_of: dict[str, str] = {}
    for key, pixels, raw, suffix in _sources(cache_dir, opencv=opencv):
        iid = image_id(pixels)
        id_of[key] = iid
        if iid in images:
            continue
        path = out / f"{iid}{suffix}"
        if raw is not None:
            path.write_bytes(raw)
        else:
            Image.fromarray(pixels).save(path)
        images[iid] = path
    queries = []
    loaded = {key.split(":")[0] for key in id_of}
    for text, judged in QUERIES:
        relevant = [key for key in judged if key.split(":")[0] in loaded]
        missing = [key for key in relevant if key not in id_of]
        if missing:
            raise KeyError(f"query {text!r} names unknown images {missing}")
        if not relevant:
            continue
        qid = "q-" + hashlib.sha256(text.encode()).hexdigest()[:8]
        queries.append(Query(qid, text, frozenset(id_of[k] for k in relevant), split_of(text)))
    (cache_dir / "queries.json").write_text(
        json.dumps(
            [
                {"qid": q.qid, "text": q.text, "split": q.split, "relevant": sorted(q.relevant)}
                for q in queries
            ],
            indent=1,
        )
    )
    (cache_dir / "sources.json").write_text(json.dumps(id_of, indent=1, sort_keys=True))
    return ImageSet(out, images, tuple(queries))
