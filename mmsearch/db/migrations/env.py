"""Alembic environment: run the versioned migrations, then re-apply the idempotent SQL.

The versioned scripts own tables and indexes; `mmsearch/db/sql/*.sql` (functions, views, roles,
policies, all CREATE OR REPLACE / IF NOT EXISTS) is applied after every upgrade in the
same transaction, so a plain `alembic upgrade head` leaves a complete database.
`mmsearch init` passes its connection in; the bare `alembic` command resolves the DSN
like every other entry point (MMSEARCH_DATABASE_URL, else the embedded server).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from mmsearch.db import citus
from mmsearch.db.schema import (
    MIGRATION_LOCK_KEY,
    MIGRATION_LOCK_TIMEOUT,
    SCHEMA,
    VERSION_TABLE,
    apply_sql_files,
    engine_for,
)


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        version_table=VERSION_TABLE,
        version_table_schema="public",
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        serialise(connection)
        context.run_migrations()
        schema_present = connection.execute(  # at a revision that has the role prefix
            text("SELECT to_regclass(:t) IS NOT NULL"), {"t": f"{SCHEMA}.install"}
        ).scalar()
        if schema_present:
            on_citus = citus.is_coordinator(connection)
            if on_citus:
                citus.distribute(connection)
            apply_sql_files(connection, on_citus=on_citus)
            if on_citus:
                citus.after_sql_files(connection)


def serialise(connection: Connection) -> None:
    """One migration at a time, and no lock wait longer than `MIGRATION_LOCK_TIMEOUT`.

    Once the schema exists the lock is EXCLUSIVE on the version table, which needs rights
    only the owner has; before, an advisory lock (no mmsearch login exists yet to hold it).
    A wait that times out fails the migration, and `schema.upgrade` tries again, so DDL never
    queues every query behind it for long.
    """
    connection.execute(
        text("SELECT set_config('lock_timeout', :t, true)"), {"t": MIGRATION_LOCK_TIMEOUT}
    )
    versioned = connection.execute(
        text("SELECT to_regclass(:t) IS NOT NULL"), {"t": f"public.{VERSION_TABLE}"}
    ).scalar()
    if versioned:
        connection.execute(text(f"LOCK TABLE public.{VERSION_TABLE} IN EXCLUSIVE MODE"))
    else:
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY})


def main() -> None:
    if context.is_offline_mode():
        raise SystemExit("offline (--sql) mode is not supported: the SQL files need a database")
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run(connection)
        connection.commit()
        return
    from mmsearch.db.engine import resolve_dsn

    engine = engine_for(resolve_dsn())
    with engine.connect() as own:
        run(own)
        own.commit()
    engine.dispose()


main()
