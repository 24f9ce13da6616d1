"""Schema upgrades: Alembic's versioned migrations plus the idempotent SQL files.

Both ship inside the package (`mmsearch/db/migrations`, `mmsearch/db/sql`), found through
`importlib.resources`, so an installed wheel can create and upgrade its schema exactly as a
source checkout does. The Alembic configuration is built here, not read from an ini file.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, create_engine, pool, text

from mmsearch.db.statements import split_statements

if TYPE_CHECKING:
    from alembic.config import Config

SCHEMA = "mmsearch"
VERSION_TABLE = "mmsearch_alembic_version"
#: Serialises concurrent first `init`s (an arbitrary constant, the same in every process).
MIGRATION_LOCK_KEY = 0x6D6D7365
#: the longest a migration waits for one lock before it backs off and tries again
MIGRATION_LOCK_TIMEOUT = "2s"
MIGRATION_ATTEMPTS = 15
PRINCIPALS_ONCE = "(SELECT mmsearch.current_principals())"
PRINCIPALS_PER_ROW = "mmsearch.current_principals()"
#: psql variables of the SQL files whose text differs on a Citus coordinator:
#: name -> (on one server, on Citus); see `server_variables`
SERVER_VARIABLES = {
    "caller_principals": (PRINCIPALS_ONCE, PRINCIPALS_PER_ROW),
    "own_person_row": ("login = session_user", "true"),
}
#: `:name` of one of them (not the cast `::`)
_SERVER_VARIABLE = re.compile(r"(?<!:):({})\b".format("|".join(SERVER_VARIABLES)))


def engine_for(dsn: str) -> Engine:
    """A SQLAlchemy engine over psycopg 3 for any libpq DSN (URI or key=value)."""
    import psycopg

    return create_engine(
        "postgresql+psycopg://", creator=lambda: psycopg.connect(dsn), poolclass=pool.NullPool
    )


@contextmanager
def _package_dir(name: str) -> Iterator[Path]:
    """A directory of package data as a real path (extracted if the package is zipped)."""
    with resources.as_file(resources.files("mmsearch.db") / name) as path:
        yield Path(path)


def sql_files() -> list[tuple[str, str]]:
    """(name, text) of each idempotent SQL file, in the order they are applied."""
    folder = resources.files("mmsearch.db") / "sql"
    entries = [e for e in folder.iterdir() if e.name.endswith(".sql")]
    return [(e.name, e.read_text(encoding="utf-8")) for e in sorted(entries, key=lambda e: e.name)]


@functools.cache
def sql_digest() -> str:
    """The digest of the SQL files, kept in `mmsearch.install.sql_digest` once applied
    (computed once a process: every connect compares it)."""
    import hashlib

    digest = hashlib.sha256()
    for name, body in sql_files():
        digest.update(f"{name}\0{body}\0".encode())
    return digest.hexdigest()


def apply_sql_files(connection: Connection, *, on_citus: bool = False) -> None:
    """Apply functions, roles, policies and views; each file is safe to run again.

    One statement at a time (see `statements`): Citus forwards some DDL to its workers as
    the query string it was given, and a worker refuses a string of several statements.
    The files name this database's roles as psql variables (`mmsearch.db.roles`), and the
    few expressions that differ on Citus too (`server_variables`).
    """
    from mmsearch.db.roles import read_roles

    raw = connection.connection.driver_connection
    roles = read_roles(raw)
    values = server_variables(on_citus=on_citus)
    for _, body in sql_files():
        body = _SERVER_VARIABLE.sub(lambda m: values[m.group(1)], roles.substitute(body))
        for statement in split_statements(body):
            raw.execute(statement)
    raw.execute("UPDATE mmsearch.install SET sql_digest = %s", (sql_digest(),))


def server_variables(*, on_citus: bool) -> dict[str, str]:
    """The SQL files' expressions that differ on a Citus coordinator.

    - `caller_principals`, the caller's principals as an RLS policy reads them: on one
      server a scalar subquery, which PostgreSQL runs once per query (an InitPlan), where a
      plain call of the STABLE function would run once per row. Citus refuses subqueries in
      the policies of distributed tables, so there it is the plain call, evaluated per row
      on the shards: `current_principals()` keeps that cheap (020_functions.sql).
    - `own_person_row`, the rows of `mmsearch.person` its one reader (the views role, in
      `person_principals()`) may see: the caller's, by session_user. Citus may read that
      reference table over a connection as the views role, where session_user is that
      role; there `person_principals()` alone picks the caller's row, by a value it took
      before the read.
    """
    return {name: texts[on_citus] for name, texts in SERVER_VARIABLES.items()}


def alembic_config(stack: ExitStack) -> Config:
    """The Alembic configuration, pointing at the migrations inside the package."""
    from alembic.config import Config

    migrations = stack.enter_context(_package_dir("migrations"))
    config = Config()
    config.set_main_option("script_location", str(migrations))
    config.set_main_option("version_locations", str(migrations / "versions"))
    config.set_main_option("path_separator", "os")
    return config


@contextmanager
def _alembic(dsn: str) -> Iterator[Config]:
    engine = engine_for(dsn)
    try:
        with ExitStack() as stack, engine.connect() as connection:
            config = alembic_config(stack)
            config.attributes["connection"] = connection
            yield config
    finally:
        engine.dispose()


def upgrade(dsn: str, revision: str = "head") -> None:
    """Migrate to `revision`; a lock wait that times out (a long transaction, another
    `init`) rolls the attempt back, lets queued queries run, and tries again."""
    import time

    import psycopg
    from alembic import command
    from sqlalchemy.exc import OperationalError

    for attempt in range(MIGRATION_ATTEMPTS):
        try:
            with _alembic(dsn) as config:
                command.upgrade(config, revision)
            return
        except OperationalError as exc:
            if not isinstance(exc.orig, psycopg.errors.LockNotAvailable):
                raise
            if attempt + 1 == MIGRATION_ATTEMPTS:
                from mmsearch.errors import UserError

                raise UserError(
                    "the schema upgrade gave up: a long transaction (or another init) keeps a"
                    " lock on the tables; see pg_stat_activity and try again"
                ) from exc
            time.sleep(min(0.1 * 2**attempt, 3.0))


def downgrade(dsn: str, revision: str = "base") -> None:
    from alembic import command

    with _alembic(dsn) as config:
        command.downgrade(config, revision)


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    with ExitStack() as stack:
        head = ScriptDirectory.from_config(alembic_config(stack)).get_current_head()
    assert head is not None
    return head


def ensure(dsn: str, *, migrate: bool = True) -> None:
    """Bring the schema to head and its functions to this package's SQL files (cheap when
    both are there), or with `migrate=False` refuse a database that is not at head with
    `SchemaMissing` (functions from other SQL files are then used as they are)."""
    from sqlalchemy.exc import OperationalError

    from mmsearch.db.engine import redact
    from mmsearch.errors import DatabaseUnavailable, SchemaMissing

    head = head_revision()
    engine = engine_for(dsn)
    try:
        with engine.connect() as conn:
            current = current_revision(conn)
            applied = applied_sql_digest(conn) if current == head else None
    except OperationalError as exc:
        reason = " ".join(str(exc.orig).split())
        raise DatabaseUnavailable(f"cannot connect to {redact(dsn)}: {reason}") from None
    finally:
        engine.dispose()
    if current == head and (applied == sql_digest() or not migrate):
        return
    if not migrate:
        found = "no mmsearch schema" if current is None else f"schema revision {current}"
        raise SchemaMissing(f"the database has {found}, not {head}: run mmsearch init")
    upgrade(dsn)


def applied_sql_digest(connection: Connection) -> str | None:
    """The digest of the SQL files the database's functions came from (None: unknown)."""
    return connection.execute(text(f"SELECT sql_digest FROM {SCHEMA}.install")).scalar()


def current_revision(connection: Connection) -> str | None:
    exists = connection.execute(
        text("SELECT to_regclass(:t) IS NOT NULL"), {"t": f"public.{VERSION_TABLE}"}
    ).scalar()
    if not exists:
        return None
    return connection.execute(text(f"SELECT version_num FROM public.{VERSION_TABLE}")).scalar()
