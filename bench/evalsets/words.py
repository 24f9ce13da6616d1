"""A judged set of spoken single words: typed one-word queries for where a word is said.

Many Asterisk prompts are one word ("Goodbye!", "password", "Cancelled."): the pieces a
phone system strings into sentences. Each query is such a word as a user types it; every
prompt that says exactly that word is judged relevant at its span. The recordings are
short (20-40 s) joins of those words and of filler prompts that contain none of the query
words (nor a word starting with one, so "record" is never also said as "recorded"), so a
judgment never misses a place where the word is said. Whisper tiny.en mishears some of
these words out of context, which is what this set measures, with the timing of the
moment: a word lasts under a second, so only a segment about as short finds it tightly.
"""

from __future__ import annotations

import re
from pathlib import Path

from bench.evalsets.speech import GAP_S, Prompt, layout, prompts, write_recordings
from mmsearch.eval.judged import JudgedSet, Judgment, Query, query_id

NAME = "text-word"
#: recordings are drawn this long, in seconds
RECORDING_S = (20.0, 40.0)
#: how much audio each variant holds in all, in seconds
TOTAL_S = {False: 420.0, True: 120.0}

#: the words typed as queries; each one's judged prompts are those that say only it
WORDS = (
    "activated", "added", "agent", "calling", "cancelled", "console", "disabled", "enabled",
    "extension", "family", "first", "friends", "goodbye", "hello", "hours", "jingle", "last",
    "local", "location", "lowercase", "message", "minutes", "number", "old", "password",
    "pause", "playback", "received", "record", "removed", "saved", "seconds", "skinny",
    "time", "transfer", "uppercase", "urgent", "work",
)  # fmt: skip


def said_word(prompt: Prompt) -> str | None:
    """The word a one-word prompt says, lower case, or None for longer prompts."""
    words = re.findall(r"[a-z0-9.']+", prompt.text.lower().strip(" .!"))
    return words[0] if len(words) == 1 and words[0].isalpha() else None


def says_none_of(words: tuple[str, ...]) -> re.Pattern[str]:
    """A pattern that finds any of `words`, or a longer word starting with one."""
    return re.compile(r"\b(" + "|".join(map(re.escape, words)) + r")", re.IGNORECASE)


def build(cache: Path, *, quick: bool = False) -> list[JudgedSet]:
    """Write the recordings under `cache/text-word/<variant>/docs` and judge the queries.

    `layout.json` beside the folder maps each recording to its prompts and spans, for a
    person auditing the judgments. `quick` keeps every fourth word.
    """
    catalogue = prompts(cache)
    words = WORDS[::4] if quick else WORDS
    saying = {
        word: sorted(n for n, p in catalogue.items() if said_word(p) == word) for word in words
    }
    missing = [w for w, names in saying.items() if not names]
    if missing:
        raise ValueError(f"no one-word prompt says {missing}")
    targets = [n for names in saying.values() for n in names]
    spoken = says_none_of(WORDS)
    recordings = layout(
        catalogue,
        targets,
        TOTAL_S[quick],
        recording_s=RECORDING_S,
        filler=lambda p: spoken.search(p.text) is None,
    )
    documents, placed = write_recordings(
        recordings, catalogue, cache / NAME / ("quick" if quick else "full")
    )
    queries = [
        Query(
            qid=query_id(word),
            text=word,
            relevant=tuple(Judgment(placed[n][0], span=placed[n][1]) for n in names),
        )
        for word, names in saying.items()
    ]
    seconds = sum(catalogue[n].seconds for n in placed) + GAP_S * (len(placed) - len(documents))
    description = (
        f"{len(documents)} recordings ({seconds / 60:.1f} min) of Asterisk prompts, "
        f"{len(targets)} of them single words; {len(queries)} one-word queries, each judged "
        "at the span of every prompt that says just that word."
    )
    return [JudgedSet(name=NAME, description=description, documents=documents, queries=queries)]
