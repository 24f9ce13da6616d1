"""Schema upgrades: Alembic's versioned migrations plus the idempotent `sql/` files."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, pool, text

SCHEMA = "mmsearch"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
SQL_DIR = PROJECT_ROOT / "sql"
ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"
#: Serialises concurrent `init`s (an arbitrary constant, the same in every process).
MIGRATION_LOCK_KEY = 0x6D6D7365


def engine_for(dsn: str) -> Engine:
    """A SQLAlchemy engine over psycopg 3 for any libpq DSN (URI or key=value)."""
    import psycopg

    return create_engine(
        "postgresql+psycopg://", creator=lambda: psycopg.connect(dsn), poolclass=pool.NullPool
    )


def sql_files() -> list[Path]:
    return sorted(SQL_DIR.glob("*.sql"))


def apply_sql_files(connection: Connection) -> None:
    """Apply functions, roles, policies and views; each file is safe to run again."""
    raw = connection.connection.driver_connection
    for path in sql_files():
        # psycopg runs a multi-statement string as one simple query (no parameters).
        raw.execute(path.read_text())


@contextmanager
def _alembic(dsn: str) -> Iterator[tuple[object, Connection]]:
    from alembic.config import Config

    config = Config(str(ALEMBIC_INI))
    engine = engine_for(dsn)
    try:
        with engine.connect() as connection:
            config.attributes["connection"] = connection
            yield config, connection
    finally:
        engine.dispose()


def upgrade(dsn: str, revision: str = "head") -> None:
    from alembic import command

    with _alembic(dsn) as (config, _):
        command.upgrade(config, revision)


def downgrade(dsn: str, revision: str = "base") -> None:
    from alembic import command

    with _alembic(dsn) as (config, _):
        command.downgrade(config, revision)


def head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(Config(str(ALEMBIC_INI))).get_current_head()
    assert head is not None
    return head


def current_revision(connection: Connection) -> str | None:
    exists = connection.execute(
        text("SELECT to_regclass('public.mmsearch_alembic_version') IS NOT NULL")
    ).scalar()
    if not exists:
        return None
    return connection.execute(
        text("SELECT version_num FROM public.mmsearch_alembic_version")
    ).scalar()
