"""A judged text→speech set: recordings of real telephone prompts, queried by paraphrase.

The speech is Debian's Asterisk core sounds (one voice, 8 kHz) and its published
transcripts. Short prompts are joined, 0.7 s of silence apart, into 30–90 s recordings by a
seeded draw, so a query must find the right recording and the right moment in it. Queries
are what a caller remembers hearing, reworded; every prompt in the whole catalogue that says
the same thing is listed with it, and each one that was placed is judged with its span.
"""

from __future__ import annotations

import gzip
import json
import random
import shutil
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.evalsets.fetch import debian_package
from mmsearch.eval.judged import JudgedSet, Judgment, Query, opaque_id, query_id

NAME = "text-speech"
SOUNDS = "usr/share/asterisk/sounds/en_US_f_Allison"
TRANSCRIPTS = "usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"
RATE = 8_000
GAP_S = 0.7
SEED = 1729
#: recordings are drawn this long, in seconds (the last one may run a little over)
RECORDING_S = (30.0, 90.0)
#: how much audio each variant holds in all, in seconds
TOTAL_S = {False: 900.0, True: 240.0}
#: longer prompts (menus, the demo monologue) are placed only when a query needs them
FILLER_MAX_S = 12.0
#: single words and numbers, spelling alphabets and silence make poor filler
NOT_FILLER = ("digits/", "letters/", "phonetic/", "silence/")
#: a sample louder than this (1 % of full scale) is speech, for the judged span
LOUD = 328

Span = tuple[float, float]

#: (query, prompts that say it): the first is always placed; every other prompt of the
#: catalogue that says the same thing follows it and is judged wherever it lands.
QUERIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("every line is busy at the moment", ("all-circuits-busy-now",)),
    ("the speaking clock telling you the exact time at the beep", ("at-tone-time-exactly",)),
    ("a company phone menu with choices for sales, accounts and the operator",
     ("basic-pbx-ivr-main",)),
    ("the call could not be connected the way the number was dialled",
     ("cannot-complete-as-dialed",)),
    ("make sure you have the right number and try dialling once more",
     ("check-number-dial-again", "ss-noservice")),
    ("the meeting has been given extra time", ("conf-extended",)),
    ("there is no room left in that conference call", ("conf-full",)),
    ("you got thrown out of the meeting", ("conf-kicked", "confbridge-removed")),
    ("the host has dropped out of the call", ("conf-leaderhasleft",)),
    ("you cannot get in because the meeting is locked",
     ("confbridge-lock-no-join", "conf-locked", "conf-lockednow", "confbridge-locked")),
    ("this call is being taped", ("conf-now-recording",)),
    ("nobody else is on the conference call yet, just you",
     ("conf-onlyperson", "confbridge-only-participant")),
    ("the meeting starts once the host shows up",
     ("conf-waitforleader", "confbridge-begin-leader", "confbridge-begin-glorious-a",
      "confbridge-begin-glorious-b", "confbridge-begin-glorious-c")),
    ("while you are muted others cannot hear you but you still hear them",
     ("confbridge-mute-extended",)),
    ("too many wrong PIN codes were typed", ("confbridge-pin-bad",)),
    ("set how loud I talk back to the normal level",
     ("confbridge-rest-talk-vol-in", "confbridge-rest-talk-vol-out")),
    ("a test that plays your own voice back to you so you can hear the delay",
     ("demo-echotest",)),
    ("congratulations, the open source phone system is installed with sample sounds",
     ("demo-congrats",)),
    ("no results for the search words you gave", ("demo-nomatch", "dir-nomatch")),
    ("open source telephone exchange software that runs on Linux", ("demo-moreinfo",)),
    ("type the first three letters of the person's surname on the keypad",
     ("dir-intro", "dir-last")),
    ("Q is on the seven key and Z on the nine", ("dir-usingkeypad", "dir-intro", "dir-intro-fn")),
    ("key in the number you want to block", ("enter-num-blacklist",)),
    ("which number should come off the blocked list", ("entr-num-rmv-blklist",)),
    ("this phone line does not support that function", ("feature-not-avail-line",)),
    ("they are away from their desk so I'll go looking for them", ("followme/status",)),
    ("one to take the call or two to turn it down", ("followme/options",)),
    ("no call is waiting in that parking slot", ("pbx-invalidpark",)),
    ("choices to let a caller through, send them to voicemail or to the torture menus",
     ("priv-callee-options", "screen-callee-options")),
    ("say who you are when you hear the beep", ("priv-recordintro", "vm-rec-name")),
    ("type your phone number with the area code first", ("privacy-prompt",)),
    ("this person won't take calls from hidden numbers", ("privacy-unident",)),
    ("all the agents are busy, stay on the line for the next free one",
     ("queue-periodic-announce", "tt-allbusy")),
    ("you are at the front of the queue now", ("queue-youarenext",)),
    ("how long you should expect to wait on hold", ("queue-holdtime", "queue-reporthold")),
    ("too many calls going on at the same time", ("simul-call-limit-reached",)),
    ("something has gone badly wrong", ("something-terribly-wrong", "tt-somethingwrong")),
    ("nothing is stored in that quick-dial slot", ("speed-dial-empty",)),
    ("apes took them away", ("tt-monkeysintro",)),
    ("weasels chewed through the phones", ("tt-weasels",)),
    ("withheld numbers cannot be called back", ("unidentified-no-callback",)),
    ("their voicemail box is full", ("vm-mailboxfull",)),
    ("the two passwords I typed were not the same", ("vm-mismatch",)),
    ("the voicemail was passed on to someone else", ("vm-msgforwarded",)),
    ("can't answer this message since whoever sent it has no mailbox", ("vm-nobox",)),
    ("no idea who left this message",
     ("vm-nonumber", "vm-unknown-caller", "from-unknown-caller")),
    ("the recording was not long enough", ("vm-tooshort",)),
    ("a temporary greeting is replacing the usual ones", ("vm-tmpexists", "vm-tempgreetactive")),
    ("the temporary greeting was deleted", ("vm-tempremoved",)),
    ("welcome, let me walk you through setting up your voicemail", ("vm-newuser",)),
    ("the message is flagged as important", ("vm-marked-urgent",)),
    ("your password was updated", ("vm-passchanged",)),
    ("where should this message be filed", ("vm-savefolder",)),
    ("leave a message after the beep and hang up when finished", ("vm-intro",)),
    ("the deleted message was brought back", ("vm-undeleted",)),
    ("could not reach the demo server, look at the console for debugging help",
     ("demo-nogo",)),
    ("you need to be online for the connection to the demo server",
     ("demo-abouttotry", "demo-instruct")),
    ("finished reading out who is attending", ("conf-roll-callcomplete",)),
    ("once it is locked only administrators can join the meeting",
     ("confbridge-lock-extended",)),
    ("send calls elsewhere when nobody answers", ("call-fwd-no-ans",)),
)  # fmt: skip


@dataclass(frozen=True)
class Prompt:
    """One source prompt: its samples and where the speech in it starts and ends."""

    name: str
    text: str
    pcm: np.ndarray
    loud: tuple[int, int]

    @property
    def seconds(self) -> float:
        return len(self.pcm) / RATE


def transcripts(cache: Path) -> dict[str, str]:
    """Prompt name → what it says, from the package's published transcript list."""
    path = debian_package("asterisk-core-sounds-en", cache, under=TRANSCRIPTS)
    found = {}
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            if ":" in line and not line.startswith(";"):
                name, text = line.split(":", 1)
                found[name.strip()] = text.strip()
    return found


def prompts(cache: Path) -> dict[str, Prompt]:
    """Every prompt that has both a recording and a transcript."""
    folder = debian_package("asterisk-core-sounds-en-wav", cache, under=SOUNDS)
    found = {}
    for name, text in transcripts(cache).items():
        path = folder / f"{name}.wav"
        if not path.exists():
            continue  # one transcript line (pls-try-call-later) has no recording
        with wave.open(str(path)) as w:
            if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (RATE, 1, 2):
                raise ValueError(f"{path} is not 8 kHz mono 16-bit")
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > LOUD)
        span = (int(loud[0]), int(loud[-1]) + 1) if len(loud) else (0, len(pcm))
        found[name] = Prompt(name, text, pcm, span)
    return found


def layout(
    catalogue: dict[str, Prompt],
    targets: list[str],
    total_s: float,
    *,
    recording_s: tuple[float, float] = RECORDING_S,
    filler: Callable[[Prompt], bool] = lambda prompt: True,
) -> list[list[str]]:
    """The prompts of each recording, in order: every target, then seeded filler (prompts
    that `filler` accepts) up to `total_s`, shuffled and cut into recordings of lengths
    drawn from `recording_s`."""
    rng = random.Random(SEED)
    pool = sorted(
        name
        for name, p in catalogue.items()
        if name not in targets
        and p.seconds <= FILLER_MAX_S
        and not name.startswith(NOT_FILLER)
        and filler(p)
    )
    rng.shuffle(pool)
    chosen = list(targets)
    length = sum(catalogue[n].seconds + GAP_S for n in chosen)
    while pool and length < total_s:
        name = pool.pop()
        chosen.append(name)
        length += catalogue[name].seconds + GAP_S
    rng.shuffle(chosen)
    recordings: list[list[str]] = [[]]
    goal, length = rng.uniform(*recording_s), 0.0
    for name in chosen:
        seconds = catalogue[name].seconds
        if recordings[-1] and length + GAP_S + seconds > goal:
            recordings.append([])
            goal, length = rng.uniform(*recording_s), 0.0
        recordings[-1].append(name)
        length += seconds + GAP_S
    if len(recordings) > 1 and length < recording_s[0]:
        recordings[-2].extend(recordings.pop())  # no stub recording at the end
    return recordings


def write_recording(parts: list[Prompt], folder: Path) -> tuple[str, dict[str, Span]]:
    """Join the prompts with silence into one WAV named by its content; returns its id
    and each prompt's speech span in seconds."""
    gap = np.zeros(round(GAP_S * RATE), dtype="<i2")
    pieces: list[np.ndarray] = []
    spans = {}
    offset = 0
    for i, prompt in enumerate(parts):
        if i:
            pieces.append(gap)
            offset += len(gap)
        start, end = prompt.loud
        spans[prompt.name] = (round((offset + start) / RATE, 3), round((offset + end) / RATE, 3))
        pieces.append(prompt.pcm)
        offset += len(prompt.pcm)
    pcm = np.concatenate(pieces).astype("<i2").tobytes()
    doc = opaque_id("rec", pcm)
    with wave.open(str(folder / f"{doc}.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm)
    return doc, spans


def write_recordings(
    recordings: list[list[str]], catalogue: dict[str, Prompt], root: Path
) -> tuple[dict[str, Path], dict[str, tuple[str, Span]]]:
    """Write each recording (a list of prompt names) under a fresh `root/docs`; return the
    documents by id and where each prompt was placed (document, span).

    `root/layout.json` maps each recording to its prompts and spans, for a person auditing
    the judgments; retrieval never reads it.
    """
    folder = root / "docs"
    if root.exists():
        shutil.rmtree(root)
    folder.mkdir(parents=True)
    documents: dict[str, Path] = {}
    placed: dict[str, tuple[str, Span]] = {}
    audit = {}
    for names in recordings:
        doc, spans = write_recording([catalogue[n] for n in names], folder)
        documents[doc] = folder / f"{doc}.wav"
        placed.update({name: (doc, span) for name, span in spans.items()})
        audit[doc] = [{"prompt": n, "span": spans[n], "text": catalogue[n].text} for n in names]
    (root / "layout.json").write_text(json.dumps(audit, indent=1))
    return documents, placed


def build(cache: Path, *, quick: bool = False) -> list[JudgedSet]:
    """Write the recordings under `cache/text-speech/<variant>/docs` and judge the queries.

    `quick` keeps every fourth
    query and about four recordings.
    """
    catalogue = prompts(cache)
    queries = QUERIES[::4] if quick else QUERIES
    targets = list(dict.fromkeys(names[0] for _, names in queries))
    root = cache / NAME / ("quick" if quick else "full")
    recordings = layout(catalogue, targets, TOTAL_S[quick])
    documents, placed = write_recordings(recordings, catalogue, root)
    judged = [
        Query(
            qid=query_id(text),
            text=text,
            relevant=tuple(Judgment(placed[n][0], span=placed[n][1]) for n in names if n in placed),
        )
        for text, names in queries
    ]
    seconds = sum(p.seconds for p in catalogue.values() if p.name in placed)
    seconds += GAP_S * (len(placed) - len(documents))
    return [
        JudgedSet(
            name=NAME,
            description=(
                f"{len(documents)} recordings ({seconds / 60:.1f} min) of Asterisk telephone "
                f"prompts joined with {GAP_S} s pauses; {len(judged)} paraphrased queries, each "
                "judged at the span of every placed prompt that says it."
            ),
            documents=documents,
            queries=judged,
        )
    ]
