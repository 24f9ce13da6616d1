"""Every documented option of `mmsearch ingest` and `mmsearch search` changes what it says.

The CLI runs in this process (`mmsearch.cli.main` with an argv, its exit status and output
captured), so the models load once for the module; the database is the module's own,
named by MMSEARCH_DATABASE_URL exactly as a user's shell would. Each option is checked by
its effect (rows written, hits returned), against a run without it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mmsearch.client import Client
from tests.incli import Ran, invoke
from tests.media import write_photo

pytestmark = pytest.mark.model

Cli = Callable[..., Ran]


@pytest.fixture(scope="module")
def cli(dsn: str, test_home: Path) -> Iterator[Cli]:
    """`cli("search", "x", "--json")`: the mmsearch command on the module's database."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MMSEARCH_DATABASE_URL", dsn)
        env.setenv("MMSEARCH_HOME", str(test_home))
        env.delenv("MMSEARCH_URL", raising=False)  # never a server: this process searches
        env.delenv("MMSEARCH_TOKEN", raising=False)
        yield invoke


def stored(client: Client, collection: str) -> dict[str, tuple]:
    """{file name: (tags, acl, metadata)} of a collection's records."""
    with client.db.writer() as conn:
        found = conn.execute(
            "SELECT r.uri, r.tags, r.acl, r.metadata FROM mmsearch.record r"
            " JOIN mmsearch.collection c ON c.id = r.collection_id WHERE c.name = %s",
            (collection,),
        ).fetchall()
    return {Path(uri).name: (tags, acl, metadata) for uri, tags, acl, metadata in found}


def summary(ran: Ran) -> dict:
    assert ran.code == 0, ran.err
    return json.loads(ran.out.splitlines()[-1])


# -- ingest -----------------------------------------------------------------------------


def test_ingest_acl_tag_and_meta_reach_every_record(
    cli: Cli, client: Client, tmp_path: Path
) -> None:
    (tmp_path / "a.txt").write_text("The lighthouse keeper logs every ship.")
    (tmp_path / "b.txt").write_text("The ferry timetable changes in winter.")
    ran = cli(
        "ingest", str(tmp_path), "-c", "opts", "--json",
        "--acl", "group:eng", "--acl", "user:ann",
        "--tag", "q3", "-t", "draft",
        "--meta", "team=web", "-m", "year=2024", "--meta", "flags=[1, 2]",
    )  # fmt: skip
    assert summary(ran)["ingested"] == 2
    expected = (["q3", "draft"], ["group:eng", "user:ann"], {"team": "web", "year": 2024})
    for tags, acl, metadata in stored(client, "opts").values():
        assert (tags, sorted(acl), {k: metadata[k] for k in ("team", "year")}) == expected
        assert metadata["flags"] == [1, 2]
    as_ann = cli("search", "lighthouse", "-c", "opts", "--mode", "keyword", "--json",
                 "--principal", "user:ann").json_lines()  # fmt: skip
    assert [Path(h["uri"]).name for h in as_ann] == ["a.txt"]
    assert cli("search", "lighthouse", "-c", "opts", "--mode", "keyword", "--json",
               "--principal", "user:bob").json_lines() == []  # fmt: skip


def test_ingest_without_acl_is_public(cli: Cli, client: Client, tmp_path: Path) -> None:
    (tmp_path / "open.txt").write_text("Visitors may use the reading room.")
    assert summary(cli("ingest", str(tmp_path), "-c", "public", "--json"))["ingested"] == 1
    [(tags, acl, _)] = stored(client, "public").values()
    assert (tags, acl) == ([], ["public"])


def test_ingest_meta_needs_key_equals_value(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("text")
    ran = cli("ingest", str(tmp_path), "-c", "badmeta", "--meta", "novalue")
    assert ran.code == 1
    assert ran.err == "error: --meta expects KEY=VALUE, got 'novalue'\n"


def test_ingest_no_recursive_stays_in_the_folder(cli: Cli, client: Client, tmp_path: Path) -> None:
    (tmp_path / "top.txt").write_text("At the top level.")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.txt").write_text("One folder down.")
    flat = summary(cli("ingest", str(tmp_path), "-c", "flat", "--json", "--no-recursive"))
    assert flat["ingested"] == 1 and set(stored(client, "flat")) == {"top.txt"}
    deep = summary(cli("ingest", str(tmp_path), "-c", "deep", "--json"))
    assert deep["ingested"] == 2 and set(stored(client, "deep")) == {"top.txt", "deep.txt"}


def test_ingest_prune_forgets_deleted_files_only_when_asked(
    cli: Cli, client: Client, tmp_path: Path
) -> None:
    for name in ("keep.txt", "gone.txt"):
        (tmp_path / name).write_text(f"The file {name} about the harbour.")
    summary(cli("ingest", str(tmp_path), "-c", "prune", "--json"))
    (tmp_path / "gone.txt").unlink()
    plain = summary(cli("ingest", str(tmp_path), "-c", "prune", "--json"))
    assert (plain["unchanged"], plain["removed"]) == (1, 0)
    assert set(stored(client, "prune")) == {"keep.txt", "gone.txt"}
    pruned = summary(cli("ingest", str(tmp_path), "-c", "prune", "--json", "--prune"))
    assert (pruned["unchanged"], pruned["removed"]) == (1, 1)
    assert set(stored(client, "prune")) == {"keep.txt"}


def test_ingest_plain_summary_and_reasons(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "ok.txt").write_text("A readable note.")
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    ran = cli("ingest", str(tmp_path), "-c", "plain")
    assert ran.code == 0, ran.err
    assert ran.out.startswith("ingested 1, updated 0, unchanged 0, skipped 0, failed 1, removed 0")
    assert ran.err.startswith(f"  failed {tmp_path / 'bad.jpg'}: [decode] not a readable image")


# -- search -----------------------------------------------------------------------------

DOCS = {
    "espresso.txt": "Grind the coffee beans finely and pull the espresso shot at nine bars.",
    "descale.txt": "Descale the coffee machine every month or the espresso tastes bitter.",
    "teapot.txt": "Warm the teapot before the leaves go in; green tea wants cooler water.",
    "merger.txt": "Board only: the coffee roaster merger closes next quarter.",
}


@pytest.fixture(scope="module")
def corpus(cli: Cli, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Collection `cafe`: three public notes (two tagged `howto`, one with meta.level = 2),
    a long manual, a photo of coffee, and a note only group:board may see; `tea` holds a
    copy of one note."""
    root = tmp_path_factory.mktemp("cafe")
    for name in ("espresso.txt", "descale.txt"):
        (root / name).write_text(DOCS[name])
    summary(cli("ingest", str(root), "-c", "cafe", "--json", "--tag", "howto"))
    level = root / "level"
    level.mkdir()
    (level / "teapot.txt").write_text(DOCS["teapot.txt"])
    summary(cli("ingest", str(level), "-c", "cafe", "--json", "--meta", "level=2"))
    media = root / "media"
    media.mkdir()
    write_photo(media / "IMG_0007.jpg", "coffee")
    (media / "manual.txt").write_text(
        "\n\n".join(
            f"Chapter {i}: the coffee machine {part} needs care; wipe it after each use."
            + " Detailed steps follow for the careful owner." * 30
            for i, part in enumerate(["boiler", "grinder", "steam wand", "drip tray"])
        )
    )
    summary(cli("ingest", str(media), "-c", "cafe", "--json"))
    board = root / "board"
    board.mkdir()
    (board / "merger.txt").write_text(DOCS["merger.txt"])
    summary(cli("ingest", str(board), "-c", "cafe", "--json", "--acl", "group:board"))
    (root / "tea").mkdir()
    (root / "tea" / "teapot.txt").write_text(DOCS["teapot.txt"])
    summary(cli("ingest", str(root / "tea"), "-c", "tea", "--json"))
    return root


def search(cli: Cli, *args: str) -> list[dict]:
    return cli("search", *args, "--json").json_lines()


def names(hits: list[dict]) -> list[str]:
    return [Path(h["uri"]).name for h in hits]


def test_search_json_lines_carry_the_contract_fields(cli: Cli, corpus: Path) -> None:
    hits = search(cli, "coffee", "-c", "cafe")
    fields = {"record_id", "uri", "title", "media_type", "segment_id", "kind", "start_s",
              "end_s", "char_start", "char_end", "score", "snippet", "ranks"}  # fmt: skip
    assert hits and all(fields <= set(h) for h in hits)
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
    plain = cli("search", "coffee", "-c", "cafe", "-k", "2")
    assert plain.code == 0 and plain.out.startswith(" 1. ")
    assert str(corpus) in plain.out.splitlines()[1]


def test_search_k_caps_the_hits(cli: Cli, corpus: Path) -> None:
    every = names(search(cli, "coffee", "-c", "cafe", "--mode", "keyword"))
    assert len(every) == 3  # espresso, descale, manual (the merger note is not public)
    assert names(search(cli, "coffee", "-c", "cafe", "--mode", "keyword", "-k", "2")) == every[:2]


def test_search_collection_limits_the_hits(cli: Cli, corpus: Path) -> None:
    assert {h["uri"] for h in search(cli, "teapot", "--mode", "keyword")} == {
        str(corpus / "level" / "teapot.txt"),
        str(corpus / "tea" / "teapot.txt"),
    }
    assert [h["uri"] for h in search(cli, "teapot", "-c", "tea", "--mode", "keyword")] == [
        str(corpus / "tea" / "teapot.txt")
    ]


def test_search_tag_keeps_tagged_records(cli: Cli, corpus: Path) -> None:
    everything = set(names(search(cli, "coffee", "-c", "cafe", "--mode", "keyword")))
    assert {"espresso.txt", "descale.txt", "manual.txt"} <= everything
    tagged = names(search(cli, "coffee", "-c", "cafe", "--mode", "keyword", "--tag", "howto"))
    assert sorted(tagged) == ["descale.txt", "espresso.txt"]
    assert search(cli, "coffee", "-c", "cafe", "--tag", "nonesuch") == []


def test_search_filter_expression(cli: Cli, corpus: Path) -> None:
    level = search(cli, "tea", "-c", "cafe", "--filter", "meta.level >= 2")
    assert names(level) == ["teapot.txt"]
    assert search(cli, "tea", "-c", "cafe", "--filter", "meta.level > 2") == []
    assert names(
        search(cli, "coffee", "-c", "cafe", "--mode", "keyword", "--filter", 'tags has "howto"')
    ) == names(search(cli, "coffee", "-c", "cafe", "--mode", "keyword", "--tag", "howto"))
    bad = cli("search", "tea", "--filter", "meta.level >>> 2")
    assert bad.code == 1 and bad.err.startswith("error: bad filter at column ")


def test_search_media_type(cli: Cli, corpus: Path) -> None:
    images = search(cli, "a cup of coffee", "-c", "cafe", "--media-type", "image")
    assert names(images) == ["IMG_0007.jpg"]
    texts = search(cli, "a cup of coffee", "-c", "cafe", "--media-type", "text")
    assert texts and {h["media_type"] for h in texts} == {"text"}
    both = search(cli, "a cup of coffee", "-c", "cafe", "--media-type", "text",
                  "--media-type", "image")  # fmt: skip
    assert {h["media_type"] for h in both} == {"text", "image"}


def test_search_segments_lists_every_matching_segment(cli: Cli, corpus: Path) -> None:
    grouped = search(cli, "coffee machine care", "-c", "cafe", "-k", "50")
    assert len({h["record_id"] for h in grouped}) == len(grouped)  # one hit per record
    every = search(cli, "coffee machine care", "-c", "cafe", "-k", "50", "--segments")
    manual = [h for h in every if Path(h["uri"]).name == "manual.txt"]
    assert len(manual) >= 2 and len({h["segment_id"] for h in every}) == len(every)
    best = next(h for h in grouped if Path(h["uri"]).name == "manual.txt")
    assert best["segment_id"] == manual[0]["segment_id"]  # the record's best segment


def test_search_mode_and_space_choose_the_legs(cli: Cli, corpus: Path) -> None:
    def legs(*args: str) -> set[str]:
        hits = search(cli, "espresso", "-c", "cafe", *args)
        assert hits, args
        return set().union(*(h["ranks"] for h in hits))

    assert legs("--mode", "keyword") == {"keyword"}
    vector = legs("--mode", "vector")
    assert "keyword" not in vector and "text" in vector
    assert {"keyword", "text"} <= legs("--mode", "hybrid")
    assert legs("--mode", "vector", "--space", "text") == {"text"}
    unknown = cli("search", "espresso", "--space", "nonesuch")
    assert unknown.code == 1 and "nonesuch" in unknown.err


def test_search_principal_sees_its_own_records(cli: Cli, corpus: Path) -> None:
    public = names(search(cli, "merger", "-c", "cafe", "--mode", "keyword"))
    assert "merger.txt" not in public
    board = names(search(cli, "merger", "-c", "cafe", "--mode", "keyword",
                         "--principal", "group:board"))  # fmt: skip
    assert board == ["merger.txt"]
    other = search(cli, "merger", "-c", "cafe", "--principal", "group:eng", "--principal",
                   "user:ann")  # fmt: skip
    assert "merger.txt" not in names(other)
