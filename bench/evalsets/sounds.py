"""Named sound events: sound→sound (perturbed copies) and text→sound (written descriptions).

The corpus is Debian's `sound-theme-freedesktop`, 27 distinct clips (8 more names are
links to them, so they share a document). Its event names, from the freedesktop sound
naming spec, are the only labels: the sound→sound queries are each clip with noise added,
its gain and start cut, or resampled, the original judged 2 and clips of the same named
family 1; the text→sound descriptions were written from the event names and measured
properties (length, tone or noise, repeated onsets), without listening. Only the
speaker-test clips hold speech, so most text queries need a text↔audio model to succeed.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.evalsets.fetch import debian_package
from bench.media import write_wav
from mmsearch.eval.judged import (
    EXAMPLE_MODES,
    JudgedSet,
    Judgment,
    Query,
    opaque_id,
    query_id,
)
from mmsearch.ingest.media import audio_blocks, probe

SOUND_SOUND = "sound-sound"
TEXT_SOUND = "text-sound"
STEREO = "usr/share/sounds/freedesktop/stereo"

_CHANNELS = tuple(
    f"audio-channel-{where}"
    for where in (
        "front-left", "front-center", "front-right", "side-left", "side-right", "rear-left",
        "rear-center", "rear-right",
    )
)  # fmt: skip

#: clips the event names put in one family: a query by one judges the others grade 1
FAMILIES: tuple[tuple[str, ...], ...] = (
    ("phone-incoming-call", "phone-outgoing-calling", "phone-outgoing-busy"),
    ("dialog-information", "dialog-warning"),
    ("device-added", "device-removed"),  # power-(un)plug, network-connectivity-* link here
    ("service-login", "service-logout"),
    ("message", "message-new-instant"),
    _CHANNELS,
)

#: (description, event names judged 2, event names judged 1)
DESCRIPTIONS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("the click of a camera taking a photo", ("camera-shutter",), ()),
    ("a single short bell ding", ("bell",), ()),
    ("a telephone ringing for an incoming call", ("phone-incoming-call",),
     ("phone-outgoing-calling",)),
    ("the engaged tone: short repeated beeps because the other line is busy",
     ("phone-outgoing-busy",), ("phone-outgoing-calling",)),
    ("the ringback tone you hear while waiting for someone to pick up",
     ("phone-outgoing-calling",), ("phone-incoming-call", "phone-outgoing-busy")),
    ("an alarm clock going off", ("alarm-clock-elapsed",), ()),
    ("crumpled paper rustling as the rubbish bin is emptied", ("trash-empty",), ()),
    ("a chime for a new chat message", ("message-new-instant",), ("message",)),
    ("a short alert that an email has arrived", ("message",), ("message-new-instant",)),
    ("a welcoming jingle when you sign in", ("service-login",), ("service-logout",)),
    ("a closing tune when you sign out", ("service-logout",), ("service-login",)),
    ("a blip when a USB stick is plugged in", ("device-added",), ("device-removed",)),
    ("the internet connection dropping", ("network-connectivity-lost",),
     ("network-connectivity-established",)),
    ("an error alert from a dialog box", ("dialog-error",),
     ("dialog-information", "suspend-error")),
    ("a soft blip for an informational pop-up", ("dialog-information",), ("dialog-warning",)),
    ("a tiny click as the volume is adjusted", ("audio-volume-change",), ()),
    ("a tone announcing that a task has finished", ("complete",), ()),
    ("an error buzz when the computer fails to go to sleep", ("suspend-error",), ()),
    ("a test sound for checking the speakers", ("audio-test-signal",), _CHANNELS),
    ("a voice saying front left", ("audio-channel-front-left",), _CHANNELS[1:]),
    ("someone announcing the rear right speaker", ("audio-channel-rear-right",),
     _CHANNELS[:-1]),
    ("a voice calling out front right", ("audio-channel-front-right",),
     tuple(c for c in _CHANNELS if c != "audio-channel-front-right")),
    ("a woman saying center", ("audio-channel-front-center", "audio-channel-rear-center"),
     tuple(c for c in _CHANNELS if not c.endswith("center"))),
)  # fmt: skip

#: the noise added by the "noise" perturbation, in dB below the clip's power
SNR_DB = 20.0
GAIN_DB = -6.0
#: the "gain-trim" perturbation drops this share of the clip's start (at most 0.1 s)
TRIM_SHARE = 0.1
RESAMPLE_RATE = 16_000

Perturb = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]


def _noise(pcm: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    power = float(np.mean(pcm**2)) or 1e-8
    return pcm + rng.normal(0.0, np.sqrt(power / 10 ** (SNR_DB / 10)), len(pcm))


def _gain_trim(pcm: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    cut = min(round(len(pcm) * TRIM_SHARE), rate // 10)
    return pcm[cut:] * 10 ** (GAIN_DB / 20)


#: (name, change applied at the output rate, output rate or None for the clip's own)
PERTURBATIONS: tuple[tuple[str, Perturb | None, int | None], ...] = (
    ("noise at 20 dB SNR", _noise, None),
    ("-6 dB and the first tenth cut", _gain_trim, None),
    ("resampled to 16 kHz", None, RESAMPLE_RATE),
)


def clips(cache: Path) -> dict[str, Path]:
    """Event name → clip, links included (several names share one sound)."""
    folder = debian_package("sound-theme-freedesktop", cache, under=STEREO)
    return {path.name.removesuffix(".oga"): path for path in sorted(folder.glob("*.oga"))}


def write_query(folder: Path, pcm: np.ndarray, rate: int) -> Path:
    """A mono WAV named by its content, so a query's name says nothing either."""
    samples = np.clip(pcm, -1.0, 1.0).astype(np.float32).tobytes()
    return write_wav(folder / f"{opaque_id('ex', samples)}.wav", pcm, rate)


def perturbed(clip: Path, doc: str, which: int, folder: Path) -> Path:
    """Write perturbation `which` of the clip as mono WAV; the noise is seeded by `doc`."""
    _, change, out_rate = PERTURBATIONS[which]
    info = probe(clip)
    assert info.audio is not None
    rate = out_rate or info.audio.sample_rate
    pcm = np.concatenate(list(audio_blocks(clip, rate))).astype(np.float64)
    if change is not None:
        pcm = change(pcm, rate, np.random.default_rng(int(doc.rsplit("-", 1)[1], 16)))
    return write_query(folder, pcm, rate)


def build(cache: Path, *, quick: bool = False) -> list[JudgedSet]:
    """Copy the clips under opaque names into `cache/sound-sound/docs`, write the perturbed
    queries beside that folder (one per variant), and judge both sets. `quick` perturbs each
    clip once (the three perturbations in turn) instead of three times."""
    root = cache / SOUND_SOUND
    docs, examples = root / "docs", root / ("queries-quick" if quick else "queries")
    for folder in (docs, examples):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    doc_of: dict[str, str] = {}
    documents: dict[str, Path] = {}
    for name, path in clips(cache).items():
        doc = opaque_id("snd", path.read_bytes())
        doc_of[name] = doc
        if doc not in documents:
            documents[doc] = docs / f"{doc}.oga"
            shutil.copyfile(path, documents[doc])
    by_example = _example_queries(documents, doc_of, examples, quick)
    by_text = _text_queries(doc_of)
    seconds = sum(probe(p).duration_s or 0.0 for p in documents.values())
    corpus = f"{len(documents)} freedesktop theme sounds ({seconds:.0f} s in all)"
    return [
        JudgedSet(
            name=SOUND_SOUND,
            description=(
                f"{corpus}; each queried by copies with noise at {SNR_DB:.0f} dB SNR, "
                f"{GAIN_DB:.0f} dB with the start cut, or resampled to 16 kHz "
                f"({len(by_example)} queries): the original is judged 2, clips of the same "
                "named family 1"
            ),
            documents=documents,
            queries=by_example,
            modes=EXAMPLE_MODES,
        ),
        JudgedSet(
            name=TEXT_SOUND,
            description=(
                f"{corpus}; {len(by_text)} descriptions written from the event names and the "
                "clips' measured properties, without listening; only the speaker-test clips "
                "hold speech"
            ),
            documents=documents,
            queries=by_text,
            reuses=SOUND_SOUND,
        ),
    ]


def _example_queries(
    documents: dict[str, Path], doc_of: dict[str, str], examples: Path, quick: bool
) -> list[Query]:
    """Perturbed copies of each clip: the original judged 2, its named family 1."""
    family = {name: group for group in FAMILIES for name in group}
    queries = []
    for i, doc in enumerate(sorted(documents)):
        names = [n for n, d in doc_of.items() if d == doc]
        kin = {doc_of[k] for n in names for k in family.get(n, ())} - {doc}
        relevant = (Judgment(doc, grade=2), *(Judgment(k) for k in sorted(kin)))
        for which in [i % len(PERTURBATIONS)] if quick else range(len(PERTURBATIONS)):
            example = perturbed(documents[doc], doc, which, examples)
            queries.append(
                Query(query_id(f"{doc} {PERTURBATIONS[which][0]}"), relevant, example=example)
            )
    return queries


def _text_queries(doc_of: dict[str, str]) -> list[Query]:
    """The written descriptions: their best clips judged 2, the others named 1."""
    queries = []
    for text, best, also in DESCRIPTIONS:
        best_docs = {doc_of[n] for n in best}
        also_docs = {doc_of[n] for n in also} - best_docs
        relevant = (
            *(Judgment(d, grade=2) for d in sorted(best_docs)),
            *(Judgment(d) for d in sorted(also_docs)),
        )
        queries.append(Query(query_id(text), relevant, text=text))
    return queries
