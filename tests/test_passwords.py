"""Passwords never reach output: `redact()` in every DSN form libpq accepts, `status` and
`init`, connection errors, and `db url --role app` (the service login, not the owner's).

`mmsearch db url` and `mmsearch user add` print a DSN with its password on purpose (that is
what they are for); everything else shows at most `***`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from mmsearch.db.engine import redact
from tests.incli import Ran, invoke

SECRET = "s3cr-9f"


@pytest.mark.parametrize(
    "dsn",
    [
        f"postgresql://ann:{SECRET}@db.example:5433/search",
        f"postgres://ann:{SECRET}@/search?host=/run/pg",
        f"postgresql://ann@db.example/search?sslmode=require&password={SECRET}",
        f"host=db.example user=ann password={SECRET} dbname=search",
        f"host=db.example password = {SECRET} user=ann",
        f"host=db.example password='{SECRET} two words' user=ann",
        f"host=db.example password='it\\'s {SECRET}' user=ann",
    ],
)
def test_redact_hides_the_password_in_every_dsn_form(dsn: str) -> None:
    shown = redact(dsn)
    assert SECRET not in shown and "words" not in shown
    assert "db.example" in shown or "/run/pg" in shown  # still says where it connects
    assert "ann" in shown


@pytest.fixture()
def with_database(monkeypatch: pytest.MonkeyPatch, test_home: Path) -> Iterator[None]:
    monkeypatch.setenv("MMSEARCH_HOME", str(test_home))
    monkeypatch.delenv("MMSEARCH_URL", raising=False)
    yield


def run_with(database_url: str, *argv: str) -> Ran:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MMSEARCH_DATABASE_URL", database_url)
        return invoke(*argv)


def password_of(dsn: str) -> str:
    password = psycopg.conninfo.conninfo_to_dict(dsn).get("password")
    assert password, "the test database's DSN carries a password"
    return str(password)


@pytest.mark.usefixtures("with_database")
def test_status_and_init_show_the_database_without_its_password(dsn: str) -> None:
    password = password_of(dsn)
    keywords = psycopg.conninfo.make_conninfo(**psycopg.conninfo.conninfo_to_dict(dsn))
    for url in (dsn, keywords):
        for argv in (("init", "--no-spaces"), ("status",), ("status", "--json")):
            ran = run_with(url, *argv)
            assert ran.code == 0, ran.err
            assert "***" in ran.out, (argv, ran.out)  # the database is shown, redacted
            assert password not in ran.out + ran.err, argv


@pytest.mark.usefixtures("with_database")
@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://nobody:{SECRET}@127.0.0.1:1/none?connect_timeout=2",
        f"host=127.0.0.1 port=1 user=nobody password='{SECRET} two words' connect_timeout=2",
        f"host=127.0.0.1 port=1 user=nobody password = {SECRET} connect_timeout=2",
    ],
)
def test_a_failed_connection_says_why_without_the_password(url: str) -> None:
    ran = run_with(url, "status")
    assert ran.code in (1, 2) and ran.out == ""
    assert "connection" in ran.err and ran.err.count("\n") == 1
    assert SECRET not in ran.err and "words" not in ran.err


@pytest.mark.usefixtures("with_database")
def test_a_wrong_password_is_not_echoed(dsn: str) -> None:
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    ran = run_with(psycopg.conninfo.make_conninfo(**{**params, "password": SECRET}), "status")
    assert ran.code in (1, 2) and "password authentication failed" in ran.err
    assert SECRET not in ran.err and password_of(dsn) not in ran.err


@pytest.mark.usefixtures("with_database")
def test_db_url_role_app_is_the_service_login_not_the_owner(dsn: str) -> None:
    owner = run_with(dsn, "db", "url")
    assert (owner.code, owner.out) == (0, dsn + "\n")  # the owner's DSN: printed on purpose
    app = run_with(dsn, "db", "url", "--role", "app")
    assert app.code == 0, app.err
    assert password_of(dsn) not in app.out
    with psycopg.connect(app.out.strip()) as conn:
        user, superuser = conn.execute(
            "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    assert user.endswith(".service") and not superuser
