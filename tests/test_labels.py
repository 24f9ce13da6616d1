"""ACL and tag changes without re-ingest: what each principal sees changes at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from mmsearch.client import Client
from mmsearch.db.roles import read_roles
from mmsearch.errors import UserError

pytestmark = pytest.mark.model

DOCS = {
    "plan.txt": "The launch plan moves the rocket to the pad on Tuesday morning.",
    "budget.txt": "The rocket budget grew by twelve percent over the last quarter.",
    "crew.txt": "The rocket crew trains in the desert before every launch.",
}
PRINCIPALS = ["user:alice", "user:bob", "group:eng", "public"]


@pytest.fixture(scope="module")
def folder(client: Client, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("labels")
    for name, text in DOCS.items():
        (root / name).write_text(text)
    report = client.ingest([root], collection="access", acl=["group:eng"], tags=["draft"])
    assert report.ingested == 3
    return root


@pytest.fixture(autouse=True)
def as_ingested(client: Client, folder: Path) -> None:
    """Each test starts from the labels the ingest gave (group:eng, draft): any order passes."""
    client.set_acl(["group:eng"], collection="access")
    client.set_tags(["draft"], collection="access")


def seen(client: Client, principal: str) -> dict[str, set[str]]:
    """The file names one principal meets through search, the SQL function and the view."""
    hits = client.search("rocket", collection="access", principals=[principal], k=10)
    with client.db.reader([principal]) as conn:
        function = conn.execute(
            "SELECT uri FROM mmsearch.keyword_search('rocket', 'access', 10)"
        ).fetchall()
        view = conn.execute(
            "SELECT DISTINCT uri FROM mmsearch.segments WHERE collection = 'access'"
        ).fetchall()
    return {
        "search": {Path(h.uri).name for h in hits},
        "keyword_search": {Path(u).name for (u,) in function},
        "segments view": {Path(u).name for (u,) in view},
    }


def visible(client: Client) -> dict[str, set[str]]:
    """Per principal, what it sees; every path must agree."""
    result = {}
    for principal in PRINCIPALS:
        paths = seen(client, principal)
        assert len({frozenset(v) for v in paths.values()}) == 1, (principal, paths)
        result[principal] = paths["search"]
    return result


def test_acl_set_changes_what_each_principal_sees_at_once(client: Client, folder: Path) -> None:
    everything = set(DOCS)
    assert visible(client) == {
        "user:alice": set(),
        "user:bob": set(),
        "group:eng": everything,
        "public": set(),
    }
    changed = client.set_acl(["user:alice"], collection="access", uris=[folder / "budget.txt"])
    assert changed == 1
    assert visible(client) == {
        "user:alice": {"budget.txt"},
        "user:bob": set(),
        "group:eng": everything - {"budget.txt"},
        "public": set(),
    }
    assert client.add_acl(["user:bob", "user:alice"], collection="access") == 3
    assert visible(client) == {
        "user:alice": everything,
        "user:bob": everything,
        "group:eng": everything - {"budget.txt"},
        "public": set(),
    }
    assert client.remove_acl(["user:bob"], collection="access") == 3
    # two records hold exactly this acl already: only budget.txt changes
    assert client.set_acl(["group:eng", "user:alice"], collection="access") == 1
    with client.db.writer() as conn:
        stored = conn.execute(
            "SELECT DISTINCT r.acl, s.acl FROM mmsearch.record r"
            " JOIN mmsearch.segment s ON s.record_id = r.id WHERE r.collection_id ="
            " (SELECT id FROM mmsearch.collection WHERE name = 'access')"
        ).fetchall()
    assert stored == [(["group:eng", "user:alice"], ["group:eng", "user:alice"])]


def test_refusals_change_nothing(client: Client, folder: Path) -> None:
    with pytest.raises(UserError, match="visible to no one"):
        client.remove_acl(["group:eng"], collection="access", uris=[folder / "plan.txt"])
    with pytest.raises(UserError, match="not in collection access"):
        client.set_acl(["public"], collection="access", uris=[folder / "plan.txt", "/nope.txt"])
    with pytest.raises(UserError, match="invalid principal"):
        client.set_acl(["everyone"], collection="access")
    with pytest.raises(UserError, match="no collection named"):
        client.set_acl(["public"], collection="nope")
    with pytest.raises(UserError, match="at least one"):
        client.set_acl([], collection="access")
    assert visible(client)["group:eng"] == set(DOCS)
    assert visible(client)["public"] == set()


def test_tags_follow_at_once(client: Client, folder: Path) -> None:
    def tagged(tag: str) -> set[str]:
        hits = client.search("rocket", collection="access", tags=[tag], principals=["group:eng"])
        return {Path(h.uri).name for h in hits}

    assert tagged("draft") == set(DOCS)
    assert client.add_tags(["final"], collection="access", uris=[folder / "plan.txt"]) == 1
    assert client.remove_tags(["draft"], collection="access", uris=[folder / "plan.txt"]) == 1
    assert (tagged("final"), tagged("draft")) == ({"plan.txt"}, {"budget.txt", "crew.txt"})
    assert client.add_tags(["final"], collection="access", uris=[folder / "plan.txt"]) == 0
    assert client.set_tags([], collection="access") == 3
    assert tagged("draft") == tagged("final") == set()


def test_only_the_ingest_role_may_change_access(client: Client, folder: Path) -> None:
    """PostgreSQL refuses the readers' roles: the grant decides, not a Python check."""
    with pytest.raises(psycopg.errors.InsufficientPrivilege), client.db.reader() as conn:
        conn.execute("UPDATE mmsearch.record SET acl = '{public}'")
    with pytest.raises(psycopg.errors.InsufficientPrivilege), client.db.transaction() as conn:
        analyst = read_roles(conn).analyst
        conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(analyst)))
        conn.execute("UPDATE mmsearch.record SET tags = '{}'")
    assert visible(client)["public"] == set()


def test_cli_acl_and_tag(client: Client, folder: Path) -> None:
    env = {**os.environ, "MMSEARCH_DATABASE_URL": client.db.dsn}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "mmsearch", *args],
            env=env,
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=300,
        )

    result = run("acl", "set", "-c", "access", "--uri", "crew.txt", "public")
    assert (result.returncode, result.stdout.strip()) == (0, "changed 1"), result.stderr
    assert visible(client)["public"] == {"crew.txt"}
    result = run("tag", "add", "-c", "access", "reviewed", "2026")
    assert (result.returncode, result.stdout.strip()) == (0, "changed 3"), result.stderr
    result = run("acl", "remove", "-c", "access", "public")
    assert result.returncode == 1 and result.stderr.startswith("error: that would leave")
    result = run("acl", "add", "-c", "access", "not a principal")
    assert result.returncode == 1 and "invalid principal" in result.stderr
