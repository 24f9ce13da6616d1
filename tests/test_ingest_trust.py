"""Ingestion never widens access and reads exactly what it stores (issue 11, findings 4, 5,
7, 11, 12): re-ingest keeps ACL and tags, links out of a folder are not followed, the bytes
hashed are the bytes extracted, failed files keep their ACL, arguments are checked, and file
names reach a terminal escaped."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from mmsearch.client import Client
from mmsearch.config import SpaceSpec
from tests.logins import person_dsn

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def tclient(client: Client) -> Client:
    """The module client with only the `text` space: one model, fast ingests."""
    settings = dataclasses.replace(
        client.settings, spaces=(SpaceSpec("text", "sentence-transformers"),)
    )
    return Client(client.db, settings)


def stored(client: Client, uri: Path) -> tuple[list[str], list[str], str]:
    with client.db.transaction() as conn:
        row = conn.execute(
            "SELECT acl, tags, sha256 FROM mmsearch.record WHERE uri = %s", (str(uri),)
        ).fetchone()
    assert row is not None, uri
    return row


def run_cli(*args: str, client: Client) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MMSEARCH_DATABASE_URL": client.db.dsn, "CI": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mmsearch", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


# -- finding 4: re-ingest keeps the ACL and tags -----------------------------------------------


def test_reingest_without_acl_keeps_acl_and_tags(tclient: Client, tmp_path: Path) -> None:
    memo = tmp_path / "memo.txt"
    memo.write_text("Board memo: the zeppelin acquisition closes in March.")
    tclient.ingest(memo, collection="keep", acl=["group:board"], tags=["secret"])
    assert stored(tclient, memo)[:2] == (["group:board"], ["secret"])

    report = tclient.ingest(memo, collection="keep")  # unchanged file, nothing given
    assert (report.unchanged, report.updated) == (1, 0)
    assert stored(tclient, memo)[:2] == (["group:board"], ["secret"])

    memo.write_text("Board memo: the zeppelin acquisition closes in April.")
    report = tclient.ingest(memo, collection="keep", metadata={"rev": 2})  # changed file
    assert report.updated == 1
    assert stored(tclient, memo)[:2] == (["group:board"], ["secret"])

    result = run_cli("ingest", str(memo), "--collection", "keep", "--json", client=tclient)
    assert result.returncode == 0, result.stderr
    assert stored(tclient, memo)[:2] == (["group:board"], ["secret"])
    hits = tclient.search("zeppelin acquisition", mode="keyword", collection="keep")
    assert hits == []  # still hidden from a caller without group:board

    tclient.ingest(memo, collection="keep", acl="group:eng", tags=[])  # explicit: replaced
    assert stored(tclient, memo)[:2] == (["group:eng"], [])


def test_new_record_without_acl_is_public(tclient: Client, tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    note.write_text("The garden hose is in the shed.")
    tclient.ingest([note], collection="keep")
    assert stored(tclient, note)[:2] == (["public"], [])


# -- finding 5: symbolic links out of the folder ------------------------------------------------


def test_symlink_out_of_the_folder_is_not_followed(tclient: Client, tmp_path: Path) -> None:
    secret = tmp_path / "secret" / "rootonly.txt"
    secret.parent.mkdir()
    secret.write_text("The root password is hunter2 and the vault code is 4711.")
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "notes.txt").symlink_to(secret)
    (drop / "inside.txt").write_text("A plain note about tomatoes.")
    (drop / "alias.txt").symlink_to(drop / "inside.txt")  # a link inside: fine

    report = tclient.ingest([drop], collection="links")
    errors = {Path(e["uri"]).name: e["message"] for e in report.errors}
    assert set(errors) == {"notes.txt"}
    assert "symbolic link out of the folder" in errors["notes.txt"]
    assert report.ingested == 2
    assert tclient.search("vault code hunter2", mode="keyword", collection="links") == []

    followed = tclient.ingest([drop], collection="links-followed", follow_symlinks=True)
    assert followed.ingested == 3 and followed.failed == 0


def test_file_swapped_for_a_link_after_the_walk_is_refused(
    tclient: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check is made on the file actually opened, not only on what the walk listed."""
    from mmsearch.ingest import pipeline

    secret = tmp_path / "secret.txt"
    secret.write_text("Payroll figures for every employee.")
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "report.txt").write_text("An innocent report about bicycles.")
    walked = pipeline.walk

    def walk_then_swap(*args: object, **kwargs: object) -> Iterator[object]:
        candidates = list(walked(*args, **kwargs))
        (drop / "report.txt").unlink()
        (drop / "report.txt").symlink_to(secret)
        return iter(candidates)

    monkeypatch.setattr(pipeline, "walk", walk_then_swap)
    report = tclient.ingest([drop], collection="swap")
    assert report.failed == 1 and "symbolic link out of the folder" in report.errors[0]["message"]
    assert tclient.search("payroll", mode="keyword", collection="swap") == []


# -- finding 11: the bytes hashed are the bytes extracted ---------------------------------------


def test_file_changed_during_extraction_keeps_hash_and_content_together(
    tclient: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmsearch.ingest.extract import Extractors

    doc = tmp_path / "doc.txt"
    doc.write_text("version one: apples")
    extract = Extractors.extract

    def change_then_extract(self: Extractors, *args: object, **kwargs: object) -> object:
        doc.write_text("version two: pears")  # between hashing and extraction
        return extract(self, *args, **kwargs)

    monkeypatch.setattr(Extractors, "extract", change_then_extract)
    tclient.ingest([doc], collection="race")
    monkeypatch.setattr(Extractors, "extract", extract)
    import hashlib

    sha = stored(tclient, doc)[2]
    with tclient.db.transaction() as conn:
        content = conn.execute(
            "SELECT string_agg(s.content, ' ') FROM mmsearch.segment s"
            " JOIN mmsearch.record r ON r.id = s.record_id WHERE r.uri = %s",
            (str(doc),),
        ).fetchone()[0]
    version = {"apples": b"version one: apples", "pears": b"version two: pears"}
    word = "apples" if "apples" in content else "pears"
    assert sha == hashlib.sha256(version[word]).hexdigest()  # hash and content agree
    report = tclient.ingest([doc], collection="race")  # the file now holds version two
    assert (report.updated, report.unchanged) == ((1, 0) if word == "apples" else (0, 1))
    assert tclient.search("pears", mode="keyword", collection="race")


# -- finding 7: a failed file's error row keeps its ACL ----------------------------------------


def test_failed_file_error_is_as_private_as_the_file(
    tclient: Client, dsn: str, tmp_path: Path
) -> None:
    broken = tmp_path / "board-minutes.pdf"
    broken.write_bytes(b"%PDF-1.7\nnot really a pdf")
    report = tclient.ingest([broken], collection="errs", acl=["group:board"])
    assert report.failed == 1

    def errors(principals: list[str]) -> set[str]:
        with psycopg.connect(person_dsn(dsn, "analyst", principals)) as conn:
            return {r[0] for r in conn.execute("SELECT uri FROM mmsearch.ingest_error")}

    assert str(broken) not in errors(["group:eng"])
    assert str(broken) in errors(["group:board"])
    tclient.ingest([broken], collection="errs")  # again, no --acl: still the board's
    assert str(broken) not in errors(["group:eng"])


# -- finding 12: arguments are checked, names are escaped ---------------------------------------


def test_a_single_path_string_is_one_path(
    tclient: Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "one.txt").write_text("Just one file here.")
    monkeypatch.chdir("/")  # were the string iterated, "/" would be walked
    report = tclient.ingest(str(tmp_path), collection="args")
    assert (report.ingested, report.failed) == (1, 0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("paths", b"/etc"),
        ("paths", [1, 2]),
        ("paths", {"a": 1}),
        ("tags", [1]),
        ("tags", b"x"),
        ("acl", [None]),
        ("metadata", ["k", "v"]),
        ("metadata", {1: "v"}),
        ("collection", ["a"]),
        ("recursive", "no"),
        ("follow_symlinks", 1),
    ],
)
def test_bad_ingest_arguments_are_type_errors(
    tclient: Client, tmp_path: Path, name: str, value: object
) -> None:
    arguments: dict[str, object] = {"paths": [tmp_path], name: value}
    with pytest.raises(TypeError, match=name):
        tclient.ingest(arguments.pop("paths"), **arguments)


def test_escape_sequences_in_names_are_escaped_in_cli_output(
    tclient: Client, tmp_path: Path
) -> None:
    hostile = tmp_path / "evil\x1b]0;owned\x07\x1b[2J.pdf"
    hostile.write_bytes(b"%PDF-1.7\nbroken")
    titled = tmp_path / "tulips \x1b[31mred\x1b[0m.txt"  # no title inside: the name is
    titled.write_text("The quarterly report on tulips.")
    result = run_cli("ingest", str(tmp_path), "--collection", "escape", client=tclient)
    assert "\x1b" not in result.stdout + result.stderr
    assert "evil\\x1b]0;owned\\x07\\x1b[2J.pdf" in result.stderr
    found = run_cli("search", "tulips", "--collection", "escape", "--mode", "keyword",
                    client=tclient)  # fmt: skip
    assert found.returncode == 0, found.stderr
    assert "\x1b" not in found.stdout
    assert "tulips \\x1b[31mred\\x1b[0m" in found.stdout
