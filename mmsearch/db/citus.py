"""The Citus branch of the schema: on a coordinator, distribute the tables.

`mmsearch init` is one code path for every server. Where the `citus` extension is installed
and the node is the coordinator, the tables are distributed after the versioned migrations
and before the idempotent SQL files (which then add the triggers, policies and functions on
distributed tables, and Citus propagates them to every shard):

- `record` and `segment` are hash-distributed by record (`record.id`, `segment.record_id`)
  and co-located: a record and its segments share a shard, so the cascade, the acl/collection
  triggers and every join between them stay on one node, while a search fans out to every
  shard in parallel (bench/citus_distribution.py measures this against "by collection");
- every other table (`collection`, `space`, `ingest_error`, and whatever later migrations
  add) becomes a reference table: a copy on every node, readable locally by the shards.

What Citus refuses in the single-node schema, and what this does about it:
- a unique or primary key must contain the distribution column: `segment`'s key becomes
  (record_id, id); `record`'s UNIQUE (collection_id, uri) cannot hold when records are
  spread by id, so a plain index serves the lookup and the ingest path's per-URI advisory
  lock (taken on the coordinator by every writer) keeps the uniqueness;
- foreign keys are dropped for the conversion and re-added: a table with a foreign key to a
  reference table would first be turned into a "Citus local" table, from which an identity
  column cannot be distributed;
- policies and triggers are dropped before the conversion (the SQL files re-create them):
  Citus refuses to distribute a table with triggers;
- shard queries run as the current role: a view's as the caller, not the view's owner (BI
  gets the column grants of the views role, `grant_view_columns`), and a SECURITY DEFINER
  function's as its owner (the search role logs in, `after_sql_files`);
- `SET LOCAL` reaches the shards only with `citus.propagate_set_commands = 'local'`, made the
  database's default here (settings such as `mmsearch.principals` or `hnsw.ef_search` must
  then be set with `SET LOCAL`, not `set_config`, which no Citus version propagates).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from psycopg import sql

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy import Connection

SCHEMA = "mmsearch"
#: (table, distribution column), in the order they are distributed (co-located)
DISTRIBUTED = (("record", "id"), ("segment", "record_id"))
SHARD_COUNT = 32
#: the roles that own SECURITY DEFINER functions: `search` (the search's core) and `views`
#: (person_principals(), which reads the reference table `person` on whichever node)
DEFINERS = ("search", "views")
#: the tables the metadata views read (040_views.sql)
VIEW_TABLES = ("collection", "space", "record", "segment", "ingest_error")
KEY_CHANGES = (
    "ALTER TABLE mmsearch.record DROP CONSTRAINT IF EXISTS record_collection_id_uri_key",
    "CREATE INDEX IF NOT EXISTS record_collection_uri_idx ON mmsearch.record (collection_id, uri)",
    "ALTER TABLE mmsearch.segment DROP CONSTRAINT segment_pkey",
    "ALTER TABLE mmsearch.segment ADD CONSTRAINT segment_pkey PRIMARY KEY (record_id, id)",
)


def is_coordinator(connection: Connection) -> bool:
    """Whether the server has Citus and this node is its coordinator."""
    raw = connection.connection.driver_connection
    row = raw.execute(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus')"
    ).fetchone()
    return bool(row[0]) and bool(raw.execute("SELECT citus_is_coordinator()").fetchone()[0])


def distribute(connection: Connection) -> None:
    """Prepare the session for the SQL files and distribute what is not distributed yet."""
    raw = connection.connection.driver_connection
    # DDL after a distributed write in one transaction must go over one connection per node;
    # the acl/collection triggers of the SQL files run on the shards (co-located data).
    raw.execute("SET LOCAL citus.multi_shard_modify_mode = 'sequential'")
    raw.execute("SET LOCAL citus.enable_unsafe_triggers = on")
    raw.execute(
        sql.SQL("ALTER DATABASE {} SET citus.propagate_set_commands = 'local'").format(
            sql.Identifier(raw.info.dbname)
        )
    )
    pending = _undistributed_tables(raw)
    if not pending:
        return
    foreign_keys = _drop_foreign_keys(raw, pending)
    _drop_policies_and_triggers(raw, pending)
    distributed = dict(DISTRIBUTED)
    if "record" in pending:
        for statement in KEY_CHANGES:
            raw.execute(statement)
    for table in sorted(pending - distributed.keys()):
        raw.execute("SELECT create_reference_table(%s)", (f"{SCHEMA}.{table}",))
    (first, column), *colocated = DISTRIBUTED
    if first in pending:  # its own co-location group, of SHARD_COUNT shards
        raw.execute(
            "SELECT create_distributed_table(%s, %s, shard_count => %s, colocate_with => 'none')",
            (f"{SCHEMA}.{first}", column, SHARD_COUNT),
        )
    for table, column in colocated:
        if table in pending:
            raw.execute(
                "SELECT create_distributed_table(%s, %s, colocate_with => %s)",
                (f"{SCHEMA}.{table}", column, f"{SCHEMA}.{first}"),
            )
    for statement in foreign_keys:
        raw.execute(statement)


def after_sql_files(connection: Connection) -> None:
    """What the SQL files leave to do on Citus: the grants and logins that Citus needs
    because shard queries run as the current role (`grant_view_columns`, and the owners of
    SECURITY DEFINER functions able to log in to the nodes: `DEFINERS`)."""
    from mmsearch.db.logins import let_definer_reach_shards
    from mmsearch.db.roles import read_roles

    grant_view_columns(connection)
    raw = connection.connection.driver_connection
    roles = read_roles(raw)
    for kind in DEFINERS:
        let_definer_reach_shards(raw, roles.name(kind))


def grant_view_columns(connection: Connection) -> None:
    """Give the BI role, on Citus, the column grants the views role holds on the tables
    behind the metadata views.

    On one server BI reads those views (owned by the views role, security_invoker off) and
    holds no grant on any table. Citus runs a view's shard queries as the caller, so there
    BI needs the columns the views read: metadata only (never content, vectors or
    `mmsearch.person`), and row-level security still applies to BI's own principals.
    """
    from mmsearch.db.roles import read_roles

    raw = connection.connection.driver_connection
    roles = read_roles(raw)
    rows = raw.execute(
        "SELECT table_name, array_agg(column_name::text ORDER BY column_name)"
        " FROM information_schema.column_privileges"
        " WHERE grantee = %s AND table_schema = %s AND privilege_type = 'SELECT'"
        " AND table_name = ANY(%s) GROUP BY table_name",
        (roles.name("views"), SCHEMA, list(VIEW_TABLES)),
    ).fetchall()
    for table, columns in rows:
        raw.execute(
            sql.SQL("GRANT SELECT ({}) ON {} TO {}").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)),
                sql.Identifier(SCHEMA, table),
                sql.Identifier(roles.bi),
            )
        )


def _undistributed_tables(raw: psycopg.Connection) -> set[str]:
    rows = raw.execute(
        "SELECT c.relname FROM pg_catalog.pg_class AS c"
        " WHERE c.relnamespace = %s::regnamespace AND c.relkind = 'r'"
        " AND NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition AS p"
        "                 WHERE p.logicalrelid = c.oid)",
        (SCHEMA,),
    ).fetchall()
    return {name for (name,) in rows}


def _drop_foreign_keys(raw: psycopg.Connection, tables: set[str]) -> list[sql.Composed]:
    """Drop the foreign keys from or to `tables`; return the statements that restore them."""
    rows = raw.execute(
        "SELECT c.conrelid::regclass::text, c.conname, pg_catalog.pg_get_constraintdef(c.oid)"
        " FROM pg_catalog.pg_constraint AS c"
        " JOIN pg_catalog.pg_class AS src ON src.oid = c.conrelid"
        " JOIN pg_catalog.pg_class AS dst ON dst.oid = c.confrelid"
        " WHERE c.contype = 'f' AND c.connamespace = %s::regnamespace"
        " AND (src.relname = ANY(%s) OR dst.relname = ANY(%s))",
        (SCHEMA, list(tables), list(tables)),
    ).fetchall()
    restore = []
    for table, name, definition in rows:
        relation = sql.SQL(table)  # regclass text: already quoted and qualified
        raw.execute(
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(relation, sql.Identifier(name))
        )
        restore.append(
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} {}").format(
                relation, sql.Identifier(name), sql.SQL(definition)
            )
        )
    return restore


def _drop_policies_and_triggers(raw: psycopg.Connection, tables: set[str]) -> None:
    """Citus distributes no table with triggers; the SQL files re-create both right after."""
    policies = raw.execute(
        "SELECT tablename, policyname FROM pg_catalog.pg_policies"
        " WHERE schemaname = %s AND tablename = ANY(%s)",
        (SCHEMA, list(tables)),
    ).fetchall()
    for table, name in policies:
        raw.execute(
            sql.SQL("DROP POLICY {} ON {}").format(
                sql.Identifier(name), sql.Identifier(SCHEMA, table)
            )
        )
    triggers = raw.execute(
        "SELECT c.relname, t.tgname FROM pg_catalog.pg_trigger AS t"
        " JOIN pg_catalog.pg_class AS c ON c.oid = t.tgrelid"
        " WHERE NOT t.tgisinternal AND c.relnamespace = %s::regnamespace"
        " AND c.relname = ANY(%s)",
        (SCHEMA, list(tables)),
    ).fetchall()
    for table, name in triggers:
        raw.execute(
            sql.SQL("DROP TRIGGER {} ON {}").format(
                sql.Identifier(name), sql.Identifier(SCHEMA, table)
            )
        )
