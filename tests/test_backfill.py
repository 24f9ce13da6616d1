"""Spaces as versioned schema: a space added later is backfilled, listed, searched, dropped.

The new spaces use the same model families as the ones configured at ingest, under new
names, so the ingest itself is the oracle: a backfill must give exactly the segments the
ingest embedded a vector in that modality, and (same model, same payload decoded again)
the same vector.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from psycopg import sql

from mmsearch.client import Client
from mmsearch.config import SpaceSpec
from mmsearch.errors import UserError
from tests.avmedia import write_video, write_wav
from tests.media import photo, write_photo

pytestmark = pytest.mark.model

#: new space -> the space configured at ingest that uses the same model
TWINS = {"text_v2": "text", "visual_v2": "visual", "sound_v2": "sound"}
FAMILIES = {"text": "sentence-transformers", "visual": "efficientnet-features", "sound": "aisfx"}
DOCS = {
    "kettle.txt": "Descale the kettle with white vinegar once a month to keep it quiet.",
    "bikes.txt": "Check the tyre pressure of your bicycle every week before a long ride.",
    "ferns.md": "# Ferns\n\nFerns like shade and damp soil; water them when the top dries out.",
}


def rows(client: Client, query: str, *args: object, **columns: str) -> list[tuple]:
    """Run `query` as ingest; `{name}` in it is replaced by the column `columns[name]`."""
    composed = sql.SQL(query).format(**{k: sql.Identifier(v) for k, v in columns.items()})
    with client.db.writer() as conn:
        return conn.execute(composed, args).fetchall()


def with_spaces(client: Client, **families: str) -> Client:
    """The same database, with more spaces configured (as if added to config.toml)."""
    extra = tuple(SpaceSpec(name, family) for name, family in families.items())
    return Client(client.db, replace(client.settings, spaces=client.settings.spaces + extra))


def sound(seconds: float, rate: int = 22_050) -> np.ndarray:
    """A rising chirp with some noise: loud everywhere, different in every window."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(7)
    chirp = np.sin(2 * np.pi * (200 + 60 * t) * t)
    return (0.5 * chirp + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def corpus(client: Client, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("backfill")
    for name, text in DOCS.items():
        (root / name).write_text(text)
    write_photo(root / "cat.jpg", "chelsea")
    write_photo(root / "rocket.jpg", "rocket")
    write_photo(root / "coffee.jpg", "coffee")
    shots = [(np.asarray(photo(n).resize((320, 240))), 2.0) for n in ("astronaut", "coffee")]
    write_video(root / "clip.mp4", shots, fps=10)
    write_wav(root / "chirp.wav", sound(22.0), 22_050)
    report = client.ingest([root], collection="bf")
    assert (report.ingested, report.failed) == (8, 0), report.errors
    return root


@pytest.fixture(scope="module")
def grown(client: Client, corpus: Path) -> Client:
    return with_spaces(client, **{new: FAMILIES[old] for new, old in TWINS.items()})


@pytest.fixture(scope="module")
def first_run(grown: Client) -> dict[str, object]:
    return {name: grown.backfill(name) for name in TWINS}


#: the segments of the corpus (other tests ingest into other collections)
IN_BF = (
    " FROM mmsearch.segment s WHERE s.collection_id = (SELECT id FROM mmsearch.collection"
    " WHERE name = 'bf')"
)


def test_backfill_fills_what_ingest_would_have(grown: Client, first_run: dict) -> None:
    for new, old in TWINS.items():
        disagree = rows(
            grown,
            "SELECT s.kind, count(*)" + IN_BF + " AND ({old} IS NULL) <> ({new} IS NULL)"
            " GROUP BY s.kind",
            old=f"{old}_vec",
            new=f"{new}_vec",
        )
        assert disagree == [], new
        ((filled,),) = rows(grown, "SELECT count({new})" + IN_BF, new=f"{new}_vec")
        assert first_run[new].embedded == filled > 0, new
        assert first_run[new].skipped == 0, first_run[new].reasons
    kinds = dict(rows(grown, "SELECT kind, count(visual_v2_vec)" + IN_BF + " GROUP BY 1"))
    assert kinds["image"] == 3 and kinds["shot"] >= 2
    windows = dict(rows(grown, "SELECT kind, count(sound_v2_vec)" + IN_BF + " GROUP BY 1"))
    assert windows["window"] >= 3


def test_backfilled_vectors_equal_the_ingested_ones(grown: Client, first_run: dict) -> None:
    """Same model and the same payload (stored text, or the source decoded again)."""
    for new, old in TWINS.items():
        pairs = rows(
            grown,
            "SELECT kind, {old}::text, {new}::text FROM mmsearch.segment WHERE {new} IS NOT NULL",
            old=f"{old}_vec",
            new=f"{new}_vec",
        )
        for kind, a, b in pairs:
            va, vb = (np.array(json.loads(v), dtype=np.float32) for v in (a, b))
            cosine = float(va @ vb / np.linalg.norm(va) / np.linalg.norm(vb))
            assert cosine > 0.999, (new, kind, cosine)


def test_second_backfill_is_a_no_op(grown: Client, first_run: dict) -> None:
    before = rows(grown, "SELECT id, xmin::text FROM mmsearch.segment ORDER BY id")
    for name in TWINS:
        again = grown.backfill(name)
        assert (again.embedded, again.skipped) == (0, 0)
    assert rows(grown, "SELECT id, xmin::text FROM mmsearch.segment ORDER BY id") == before


def test_searches_can_name_their_spaces(grown: Client, first_run: dict) -> None:
    query = "how often should I descale a kettle"
    new = grown.search(query, collection="bf", spaces=["text_v2"], k=3)
    old = grown.search(query, collection="bf", spaces=["text"], k=3)
    assert new[0].uri.endswith("kettle.txt") and old[0].uri.endswith("kettle.txt")
    assert {leg for h in new for leg in h.ranks} <= {"text_v2", "keyword"}
    assert "text_v2" in new[0].ranks
    assert {leg for h in old for leg in h.ranks} <= {"text", "keyword"}
    with pytest.raises(UserError, match="cannot search space 'nope'"):
        grown.search(query, spaces=["nope"])


@pytest.fixture(scope="module")
def stale(grown: Client, corpus: Path, first_run: dict) -> dict[str, object]:
    """Space visual_v3 backfilled after cat.jpg changed and rocket.jpg went away, again, then
    cat.jpg re-ingested (rocket's skip is left) and backfilled once more: what each step
    said. The re-ingest runs with every space, so the other tests find no gap."""
    later = with_spaces(grown, visual_v3="efficientnet-features")
    write_photo(corpus / "cat.jpg", "astronaut")  # other bytes than the ingested ones
    moved = corpus.parent / "rocket-moved.jpg"
    (corpus / "rocket.jpg").rename(moved)
    try:
        steps: dict[str, object] = {"first": later.backfill("visual_v3")}
        (space,) = [s for s in later.spaces() if s.name == "visual_v3"]
        steps["visual"] = rows(later, "SELECT count(visual_vec) FROM mmsearch.segment")[0][0]
        steps["coverage"] = later.coverage(space).__dict__
        steps["again"] = later.backfill("visual_v3")
        # a re-ingest replaces the changed file's segments, with every configured space
        steps["reingest"] = later.ingest([corpus / "cat.jpg"], collection="bf")
        steps["skipped"] = later.coverage(space).skipped
        steps["last"] = later.backfill("visual_v3")  # ... and clears the stale skip row
        steps["skip_rows"] = rows(later, "SELECT count(*) FROM mmsearch.backfill_skip")
    finally:
        moved.rename(corpus / "rocket.jpg")
    return steps


def test_changed_or_missing_sources_are_skipped_with_reasons(stale: dict) -> None:
    first = stale["first"]
    assert first.reasons == {
        "source file changed since ingest; re-ingest it": 1,
        "source file is gone": 1,
    }
    assert first.embedded == stale["visual"] - 2
    assert stale["coverage"] == {"vectors": first.embedded, "missing": 0, "skipped": 2}
    assert (stale["again"].embedded, stale["again"].skipped) == (0, 0)
    assert stale["reingest"].updated == 1
    assert stale["skipped"] == 1
    assert stale["last"].embedded == 0
    assert stale["skip_rows"] == [(1,)]


def test_backfill_of_one_collection(
    client: Client, grown: Client, corpus: Path, first_run: dict
) -> None:
    grown.ingest([corpus / "kettle.txt"], collection="other")  # every space: no gap left
    scoped = with_spaces(client, text_v4="sentence-transformers")
    report = scoped.backfill("text_v4", collection="other")
    assert report.embedded == 1
    per_collection = dict(
        rows(
            scoped,
            "SELECT c.name, count(s.text_v4_vec) FROM mmsearch.segment s"
            " JOIN mmsearch.collection c ON c.id = s.collection_id GROUP BY 1",
        )
    )
    assert per_collection == {"bf": 0, "other": 1}
    with pytest.raises(UserError, match="no collection named"):
        scoped.backfill("text_v4", collection="nope")
    fresh = with_spaces(client, text_v6="sentence-transformers")
    with pytest.raises(UserError, match="no collection named"):
        fresh.backfill("text_v6", collection="nope")
    assert "text_v6" not in {s.name for s in fresh.spaces()}  # refused before adding a column
    with pytest.raises(UserError, match="no space named 'text_v9' is configured"):
        scoped.backfill("text_v9")


def test_cli_space_list_backfill_and_drop(client: Client, corpus: Path, stale: dict) -> None:
    home = corpus.parent / "home"
    home.mkdir(exist_ok=True)
    (home / "config.toml").write_text('[spaces.text_v5]\nfamily = "sentence-transformers"\n')
    env = {**os.environ, "MMSEARCH_DATABASE_URL": client.db.dsn, "MMSEARCH_HOME": str(home)}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "mmsearch", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            stdin=subprocess.DEVNULL,
        )

    result = run("space", "backfill", "text_v5", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["embedded"] > 0
    listed = {
        json.loads(line)["name"]: json.loads(line)
        for line in run("space", "list", "--json").stdout.splitlines()
    }
    assert listed["text_v5"]["missing"] == 0 and listed["text_v5"]["configured"]
    assert listed["text_v5"]["vectors"] == json.loads(result.stdout)["embedded"]
    assert listed["visual_v3"]["skipped"] == 1 and not listed["visual_v3"]["configured"]

    refused = run("space", "drop", "visual_v3")
    assert refused.returncode == 1 and "--yes" in refused.stderr
    dropped = run("space", "drop", "visual_v3", "--yes")
    assert dropped.returncode == 0, dropped.stderr
    assert "visual_v3" not in {s.name for s in client.spaces()}
    assert rows(
        client,
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'segment'"
        " AND column_name = 'visual_v3_vec'",
    ) == [(0,)]
    assert rows(client, "SELECT count(*) FROM mmsearch.backfill_skip") == [(0,)]
    assert client.search("a cat", collection="bf", k=3)  # searches still work
    assert run("space", "drop", "visual_v3", "--yes").stderr.strip() == (
        "error: no space named 'visual_v3'"
    )
    still = run("space", "drop", "text_v5", "--yes")
    assert still.returncode == 0 and "still configured" in still.stderr
