"""The evaluation harness: scores from ir-measures, timestamps, the report, a real run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

from mmsearch.client import Client
from mmsearch.eval.harness import (
    ModeResult,
    RankedQuery,
    SetResult,
    evaluate,
    iou,
    score,
    timestamp_accuracy,
    timestamps,
)
from mmsearch.eval.judged import JudgedSet, Judgment, Query, opaque_id
from mmsearch.eval.report import compare, table, to_json


def _query(qid: str, *docs: str, span: tuple[float, float] | None = None) -> Query:
    return Query(qid, tuple(Judgment(d, span=span) for d in docs), text=qid)


def _ranked(
    qid: str, docs: list[str], spans: list[tuple[float, float]] | None = None
) -> RankedQuery:
    starts: list[float | None] = [s for s, _ in spans] if spans else [None] * len(docs)
    ends: list[float | None] = [e for _, e in spans] if spans else [None] * len(docs)
    return RankedQuery(qid, qid, docs, starts, ends, 0.01)


def test_score_counts_queries_that_found_nothing() -> None:
    queries = [_query("a", "d1"), _query("b", "d2"), _query("c", "d3", "d4")]
    ranked = [_ranked("a", ["d1", "x"]), _ranked("b", ["x", "d2"]), _ranked("c", [])]
    values = score(queries, ranked)
    assert values["MRR"] == pytest.approx((1 + 0.5 + 0) / 3, abs=1e-4)
    assert values["hit@1"] == pytest.approx(1 / 3, abs=1e-4)
    assert values["R@5"] == pytest.approx(2 / 3, abs=1e-4)


def test_score_of_graded_judgments_prefers_the_better_document_first() -> None:
    query = Query("q", (Judgment("best", grade=2), Judgment("near", grade=1)), text="q")
    ideal = score([query], [_ranked("q", ["best", "near"])])
    swapped = score([query], [_ranked("q", ["near", "best"])])
    assert ideal["nDCG@10"] == pytest.approx(1.0)
    assert swapped["nDCG@10"] < ideal["nDCG@10"]
    assert swapped["MRR"] == ideal["MRR"] == 1.0


def test_timestamp_accuracy_asks_whether_the_hit_covers_the_judged_moment() -> None:
    judged = JudgedSet(
        "t",
        "",
        {},
        [
            _query("covers", "rec", span=(10.0, 14.0)),
            _query("touches", "rec", span=(10.0, 14.0)),
            _query("after", "rec", span=(10.0, 14.0)),
            _query("second", "rec", span=(30.0, 31.0)),
            _query("missing", "rec", span=(0.0, 1.0)),
            _query("untimed", "doc"),
        ],
        span_tolerance_s=1.0,
    )
    ranked = [
        _ranked("covers", ["rec"], [(4.0, 20.0)]),  # starts 6 s early, holds the span
        _ranked("touches", ["rec"], [(0.0, 9.5)]),  # ends within the tolerance
        _ranked("after", ["rec"], [(15.5, 25.0)]),
        _ranked("second", ["other", "rec"], [(0.0, 5.0), (29.0, 33.0)]),
        _ranked("missing", ["other"], [(0.0, 1.0)]),
        _ranked("untimed", ["doc"]),
    ]
    accuracy = timestamp_accuracy(judged, ranked)
    assert accuracy == {
        "timed_queries": 5,
        "time@1": 0.4,
        "time@10": 0.6,
        "start error s": 6.0,
        "R1@0.5": 0.0,  # top hits: 4x as long as the answer, or near it without overlap
        "R1@0.7": 0.0,
    }


def test_moments_stand_in_for_segments_in_the_moment_columns() -> None:
    """A hit whose sentence is a third of the answer, but whose moment (the neighbouring
    segments the search also found) spans it, counts under "moment R1@..." only."""
    judged = JudgedSet("t", "", {}, [_query("q", "rec", span=(10.0, 16.0))])
    short = _ranked("q", ["rec"], [(10.0, 12.0)])  # IoU 1/3
    with_moment = RankedQuery("q", "q", ["rec"], [10.0], [12.0], 0.01, [(9.5, 16.0)])
    assert timestamps(judged, [short]) == timestamp_accuracy(judged, [short]) | {
        "moment R1@0.5": 0.0,
        "moment R1@0.7": 0.0,
        "moment start error s": 0.0,
    }
    measured = timestamps(judged, [with_moment])
    assert measured is not None
    assert (measured["R1@0.5"], measured["moment R1@0.5"], measured["moment R1@0.7"]) == (
        0.0,
        1.0,
        1.0,
    )
    assert measured["moment start error s"] == 0.5


def test_moment_measures_reward_a_moment_as_long_as_the_answer() -> None:
    """R1@IoU counts top hits in the right document whose span overlaps a judged one by
    IoU >= 0.5 / 0.7; a relevant hit at rank 2 or in the wrong place counts for neither."""
    span = (10.0, 14.0)  # 4 s
    judged = JudgedSet(
        "t",
        "",
        {},
        [_query(q, "rec", span=span) for q in ("exact", "most", "half", "wide", "late", "2nd")],
    )
    ranked = [
        _ranked("exact", ["rec"], [(10.0, 14.0)]),  # IoU 1
        _ranked("most", ["rec"], [(10.5, 14.0)]),  # 3.5 / 4 = 0.875
        _ranked("half", ["rec"], [(11.0, 15.0)]),  # 3 / 5 = 0.6
        _ranked("wide", ["rec"], [(6.0, 16.0)]),  # 4 / 10 = 0.4
        _ranked("late", ["rec"], [(14.5, 18.0)]),  # disjoint
        _ranked("2nd", ["other", "rec"], [(10.0, 14.0), (10.0, 14.0)]),  # not the top hit
    ]
    accuracy = timestamp_accuracy(judged, ranked)
    assert accuracy is not None
    assert accuracy["R1@0.5"] == pytest.approx(3 / 6, abs=1e-4)
    assert accuracy["R1@0.7"] == pytest.approx(2 / 6, abs=1e-4)
    assert iou((0.0, 1.0), (2.0, 3.0)) == 0.0
    assert iou((2.0, 2.0), (2.0, 2.0)) == 1.0
    assert iou((0.0, 2.0), (1.0, 3.0)) == pytest.approx(1 / 3)


def _report(mrr: float) -> dict:
    mode = ModeResult("vector", {"MRR": mrr, "hit@1": 0.5}, {"time@1": 0.4}, 12.0)
    result = SetResult("text-speech", "d", 3, 2, {}, [mode])
    return to_json(
        [result],
        quick=True,
        spaces={"text": "m"},
        unavailable={"video": "cannot fetch"},
        lee={"tf-idf": {"pearson": 0.5, "spearman": 0.4}},
        seconds=1.0,
    )


def test_report_table_and_comparison() -> None:
    old, new = _report(0.5), _report(0.75)
    text = table(new)
    assert "| text-speech | vector | 3 | 2 |" in text
    assert "0.750" in text and "12.0" in text
    assert "video | not run: cannot fetch" in text
    assert "| tf-idf | 0.500 | 0.400 |" in text
    assert "0.750 (+0.250)" in compare(old, new)
    assert "| R1@0.5 | R1@0.7 |" in text


@pytest.fixture(scope="module")
def photo_set(tmp_path_factory: pytest.TempPathFactory) -> JudgedSet:
    """Five scikit-image photos under opaque names, three described in words."""
    folder = tmp_path_factory.mktemp("photos")
    docs = {}
    for name in ("chelsea", "coffee", "rocket", "astronaut", "horse"):
        pixels = np.asarray(Image.fromarray(getattr(skimage.data, name)()).convert("RGB"))
        doc = opaque_id("img", pixels.tobytes())
        Image.fromarray(pixels).save(folder / f"{doc}.png")
        docs[name] = doc
    queries = [
        Query("cat", (Judgment(docs["chelsea"]),), text="a cat"),
        Query("coffee", (Judgment(docs["coffee"]),), text="a cup of coffee on a saucer"),
        Query("rocket", (Judgment(docs["rocket"]),), text="a space rocket on its launch pad"),
    ]
    paths = {doc: folder / f"{doc}.png" for doc in docs.values()}
    return JudgedSet("photos", "five photos", paths, queries)


@pytest.mark.model
def test_evaluate_ingests_and_scores_every_mode(client: Client, photo_set: JudgedSet) -> None:
    from mmsearch.rerank.evidence import EvidenceReranker

    result = evaluate(client, photo_set, rerankers={"evidence": EvidenceReranker()})
    assert result.ingest["ingested"] == 5 and result.ingest["failed"] == 0
    by_mode = {m.mode: m for m in result.modes}
    assert set(by_mode) == {"keyword", "vector", "hybrid", "hybrid+evidence"}
    reranked = zip(by_mode["hybrid"].ranked, by_mode["hybrid+evidence"].ranked, strict=True)
    assert all(sorted(a.docs) == sorted(b.docs) for a, b in reranked)  # 5 photos: all found
    # the photos have no words: only the image space can find them
    assert by_mode["keyword"].metrics["MRR"] == 0.0
    assert by_mode["vector"].metrics["hit@1"] >= 2 / 3
    assert by_mode["hybrid"].metrics["MRR"] >= by_mode["vector"].metrics["MRR"] - 1e-9
    assert all(len(r.docs) <= 10 for r in by_mode["vector"].ranked)
    assert {d for r in by_mode["vector"].ranked for d in r.docs} <= set(photo_set.documents)


def test_bench_eval_refuses_an_unknown_set(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.eval import main

    with pytest.raises(SystemExit) as stopped:
        main(["--set", "nope"])
    assert stopped.value.code == 2 and "nope" in capsys.readouterr().err


def test_cli_scores_a_users_judged_queries(client: Client, tmp_path: Path) -> None:
    """`mmsearch eval FILE -c C` on an ingested collection: right answers score, wrong don't."""
    import json

    from click.testing import CliRunner

    from mmsearch.cli import cli

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tea.txt").write_text("Brew green tea at 80 degrees for two minutes.")
    (docs / "bikes.txt").write_text("Oil the bicycle chain every few hundred kilometres.")
    client.ingest([docs], collection="judged")
    tea, bikes = str(docs / "tea.txt"), str(docs / "bikes.txt")
    right = tmp_path / "right.jsonl"
    right.write_text(
        json.dumps({"query": "how hot should the water be for tea", "relevant": [tea]})
        + "\n"
        + json.dumps({"id": "b", "query": "maintaining my bike", "relevant": [{"uri": bikes}]})
    )
    wrong = tmp_path / "wrong.jsonl"
    tea_query = "how hot should the water be for tea"
    wrong.write_text(json.dumps({"query": tea_query, "relevant": [bikes]}))

    def mrr(path: Path) -> float:
        out = tmp_path / f"{path.stem}.json"
        args = ["eval", str(path), "-c", "judged", "--out", str(out), "--rerank", "evidence"]
        outcome = CliRunner().invoke(cli, args, env={"MMSEARCH_DATABASE_URL": client.db.dsn})
        assert outcome.exit_code == 0, outcome.output
        modes = {m["mode"]: m["metrics"] for m in json.loads(out.read_text())["sets"][0]["modes"]}
        assert set(modes) == {"keyword", "vector", "hybrid", "hybrid+evidence"}
        # the reranker agrees with the search on these clear cases
        assert modes["hybrid+evidence"] == modes["hybrid"]
        return modes["hybrid"]["MRR"]

    assert mrr(right) == 1.0
    assert mrr(wrong) < 1.0
    refused = CliRunner().invoke(cli, ["eval", str(right), "-c", "judged", "--rerank", "bm99"])
    assert refused.exit_code == 1 and "unknown reranker 'bm99'" in str(refused.exception)


def test_a_malformed_judged_line_is_a_one_line_error(tmp_path: Path) -> None:
    from mmsearch.errors import UserError
    from mmsearch.eval.judged import load_queries

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "a", "relevant": ["x"]}\n{"query": "b"}\n')
    with pytest.raises(UserError, match=r"bad\.jsonl line 2"):
        load_queries(bad, "c")


DECOYS = {
    # each query shares a word with a decoy and means the other document
    "travel.txt": "Travel expenses policy: flights need a manager's approval before booking.",
    "rockets.txt": "How engineers made machines fly beyond the atmosphere.",
    "vet.txt": "When your kitten seems unwell, call the veterinarian before feeding it.",
    "unix.txt": "The cat command prints files in a terminal; when sick of scrolling, use less.",
    "pets.txt": "Animals are not allowed in the workplace, except guide animals.",
    "canteen.txt": "The hot dog stand in the office canteen opens at noon.",
    "sleep.txt": "Adults need seven to nine hours of sleep; keep the bedroom dark and cool.",
    "hours.txt": "Opening hours of the museum: nine to five, closed on Mondays.",
}
DECOY_QUERIES = {
    "can I fly to a conference": "travel.txt",
    "my cat is sick": "vet.txt",
    "can I bring my dog to the office": "pets.txt",
    "how many hours should I sleep": "sleep.txt",
}


def test_tune_chooses_a_fusion_on_half_the_queries_and_checks_it_on_the_rest(
    client: Client, tmp_path: Path
) -> None:
    import json

    from click.testing import CliRunner

    from mmsearch.cli import cli

    docs = tmp_path / "decoys"
    docs.mkdir()
    for name, text in DECOYS.items():
        (docs / name).write_text(text)
    client.ingest([docs], collection="decoys")
    judged = tmp_path / "decoys.jsonl"
    judged.write_text(
        "".join(
            json.dumps({"query": q, "relevant": [str(docs / doc)]}) + "\n"
            for q, doc in DECOY_QUERIES.items()
        )
    )
    out = tmp_path / "tuning.json"
    env = {"MMSEARCH_DATABASE_URL": client.db.dsn}
    args = ["eval", str(judged), "-c", "decoys", "--tune", "--apply", "--out", str(out)]
    outcome = CliRunner().invoke(cli, args, env=env)
    assert outcome.exit_code == 0, outcome.output
    tuning = json.loads(out.read_text())
    candidates = tuning["candidates"]
    assert len(candidates) == 14  # two fusions, seven keyword weights
    assert tuning["chosen"] == candidates[0]
    assert all(candidates[0]["tune"]["MRR"] >= c["tune"]["MRR"] for c in candidates)
    # the decoys fool the keyword leg and not the vectors
    legs = tuning["single_legs"]
    assert legs["keyword"]["tune"] < legs["vector"]["tune"] == 1.0
    # at keyword weight 1 "hot dog stand in the office canteen" outvotes the pets rule (tune
    # split), "the cat command ... sick of scrolling" the vet (held out): a lighter keyword
    # leg, chosen on the tune split, puts both right
    default, chosen = tuning["default"], tuning["chosen"]
    assert default["tune"]["MRR"] < 1.0 == chosen["tune"]["MRR"]
    assert chosen["fusion"] == "relative" and chosen["keyword_weight"] < 1
    assert default["held_out"]["MRR"] < 1.0 == chosen["held_out"]["MRR"]
    assert "search with: mmsearch search ... --fusion" in outcome.output
    # --apply: searches of the collection that set no fusion use the chosen one
    dog = "can I bring my dog to the office"
    assert Path(client.search(dog, collection="decoys")[0].uri).name == "pets.txt"
    asked = client.search(dog, collection="decoys", fusion="relative", weights={"keyword": 1})
    assert Path(asked[0].uri).name == "canteen.txt"
    client.set_search_defaults("decoys", fusion=None, weights=None)
    assert Path(client.search(dog, collection="decoys")[0].uri).name == "canteen.txt"
    few = tmp_path / "few.jsonl"
    few.write_text(judged.read_text().splitlines()[0] + "\n")
    refused = CliRunner().invoke(cli, ["eval", str(few), "-c", "decoys", "--tune"], env=env)
    assert refused.exit_code == 1 and "at least 4 typed queries" in str(refused.exception)
