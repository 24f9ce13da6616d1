"""Logins of one database: the app's service login, the ingest login, and one per person.

The owner (the DSN mmsearch is given, or the embedded server's superuser) only migrates and
manages logins. Searches run as the service login (a member of the app role only, the one
login whose per-request principals count); ingestion writes as the writer login. Both get
generated passwords kept in the credentials file (`mmsearch.db.credentials`); a lost or
stale one is reset by the owner. A person's login (`mmsearch user add`) sees with the
principals the owner lists for it in `mmsearch.person`, whatever the person sets.

Every login carries limits: a connection limit and per-role defaults for statement and
idle-in-transaction timeouts, temporary files and lock waits. `temp_file_limit` and the
connection limit cannot be changed by the login itself; the timeouts are defaults a login
may lower or, being PostgreSQL user settings, raise (docs/security.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from psycopg import sql

from mmsearch.db.credentials import CredentialStore, new_password, server_key
from mmsearch.db.roles import PERSON_ROLES, Roles, read_roles
from mmsearch.errors import UserError

if TYPE_CHECKING:
    import psycopg


@dataclass(frozen=True)
class Limits:
    """What one login may hold: connections, and per-session setting defaults."""

    connections: int
    settings: dict[str, str] = field(default_factory=dict)


LIMITS: dict[str, Limits] = {
    "service": Limits(64, {"statement_timeout": "60s", "lock_timeout": "10s",
                           "idle_in_transaction_session_timeout": "60s",
                           "temp_file_limit": "4GB"}),
    "writer": Limits(32, {"statement_timeout": "10min", "lock_timeout": "10s",
                          "idle_in_transaction_session_timeout": "5min",
                          "temp_file_limit": "8GB"}),
    "analyst": Limits(10, {"statement_timeout": "5min", "lock_timeout": "10s",
                           "idle_in_transaction_session_timeout": "10min",
                           "temp_file_limit": "2GB"}),
    "bi": Limits(10, {"statement_timeout": "2min", "lock_timeout": "10s",
                      "idle_in_transaction_session_timeout": "10min",
                      "temp_file_limit": "1GB"}),
}  # fmt: skip


@dataclass(frozen=True)
class AppLogins:
    """DSNs of the service and writer logins (None: the given DSN is not the owner's)."""

    roles: Roles
    service: str
    writer: str | None


@dataclass(frozen=True)
class Person:
    name: str
    login: str
    role: str
    principals: list[str]


def with_login(dsn: str, user: str, password: str, **overrides: str) -> str:
    """`dsn` as another login (same server, database and options), as a URI when it was one."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = {**conninfo_to_dict(dsn), "user": user, "password": password, **overrides}
    return (
        as_uri(params) if dsn.startswith(("postgresql:", "postgres:")) else make_conninfo(**params)
    )


def as_uri(params: dict[str, str]) -> str:
    """A libpq URI from conninfo parameters; a socket directory and its port go in the query."""
    from urllib.parse import quote, urlencode

    rest = dict(params)
    host, port = rest.pop("host", ""), rest.pop("port", "")
    user, password = quote(rest.pop("user", ""), safe=""), rest.pop("password", None)
    dbname = quote(rest.pop("dbname", ""), safe="")
    userinfo = user if password is None else f"{user}:{quote(password, safe='')}"
    if host.startswith("/") or not host:
        netloc, query = f"{userinfo}@", {"host": host, "port": port}
    else:
        bracketed = f"[{host}]" if ":" in host else host
        netloc, query = f"{userinfo}@{bracketed}" + (f":{port}" if port else ""), {}
    query = {k: v for k, v in {**query, **rest}.items() if v}
    return f"postgresql://{netloc}/{dbname}" + (f"?{urlencode(query, safe='/')}" if query else "")


def app_logins(dsn: str, store: CredentialStore) -> AppLogins:
    """The service and writer logins of the database at `dsn`, created or repaired if needed.

    With the owner's DSN both are ensured (a missing or wrong password is reset); with any
    other login's DSN (e.g. the service login's own) that DSN serves reads and nothing writes.
    """
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        roles = read_roles(conn)
        if not _can_manage(conn):
            return AppLogins(roles, dsn, None)
        server, database = _keys(conn)
        with store.edit(server, database) as saved:
            service = _ensure_login(conn, dsn, saved, roles, "service", roles.app)
            writer = _ensure_login(conn, dsn, saved, roles, "writer", roles.ingest)
    return AppLogins(roles, service, writer)


def apply_limits(owner_dsn: str) -> None:
    """Set every login's limits again (after an upgrade changed them): `mmsearch init`."""
    import psycopg

    with psycopg.connect(owner_dsn, autocommit=True) as conn:
        roles = read_roles(conn)
        for kind in ("service", "writer"):
            if _role_exists(conn, roles.name(kind)):
                _set_limits(conn, roles.name(kind), LIMITS[kind])
        for person in _people(conn):
            _set_limits(conn, person.login, LIMITS[person.role])


# -- people ---------------------------------------------------------------------------------


def add_person(owner_dsn: str, name: str, role: str, principals: Iterable[str]) -> str:
    """Create a person's login with a generated password; return its DSN (shown once)."""
    import psycopg

    if role not in PERSON_ROLES:
        raise UserError(f"unknown role {role!r}: use {' or '.join(PERSON_ROLES)}")
    checked = _principals(principals)
    password = new_password()
    with psycopg.connect(owner_dsn, autocommit=True) as conn:
        roles = read_roles(conn)
        login = roles.person(name)
        if _role_exists(conn, login):
            raise UserError(f"user {name!r} exists; `mmsearch user password {name}` resets it")
        with conn.transaction():
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
                    sql.Identifier(login), sql.Literal(_verifier(conn, login, password)),
                    sql.Identifier(roles.name(role)),
                )
            )  # fmt: skip
            conn.execute(
                "INSERT INTO mmsearch.person (login, name, role, principals)"
                " VALUES (%s, %s, %s, %s)",
                (login, name, role, checked),
            )
            _tell_citus(conn, login, password)
        _set_limits(conn, login, LIMITS[role])
    return with_login(owner_dsn, login, password)


def reset_password(owner_dsn: str, name: str) -> str:
    """A new generated password for a person; return the new DSN."""
    import psycopg

    password = new_password()
    with psycopg.connect(owner_dsn, autocommit=True) as conn:
        login = _existing_person(conn, name).login
        _set_password(conn, login, password)
    return with_login(owner_dsn, login, password)


def set_principals(owner_dsn: str, name: str, principals: Iterable[str]) -> list[str]:
    """Replace a person's principals; the next query of theirs already sees with these."""
    import psycopg

    checked = _principals(principals)
    with psycopg.connect(owner_dsn, autocommit=True) as conn:
        login = _existing_person(conn, name).login
        conn.execute(
            "UPDATE mmsearch.person SET principals = %s WHERE login = %s", (checked, login)
        )
    return checked


def remove_person(owner_dsn: str, name: str) -> None:
    """Drop a person's login and end their sessions."""
    import psycopg

    with psycopg.connect(owner_dsn, autocommit=True) as conn:
        login = _existing_person(conn, name).login
        with conn.transaction():
            conn.execute("DELETE FROM mmsearch.person WHERE login = %s", (login,))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(login)))
            _tell_citus(conn, login, None)
        # sessions outlive DROP ROLE; ending them needs pg_signal_backend or a superuser
        with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (login,),
            )


def list_people(owner_dsn: str) -> list[Person]:
    import psycopg

    with psycopg.connect(owner_dsn, autocommit=True) as conn:
        read_roles(conn)  # a clear error when there is no schema
        return _people(conn)


# -- helpers --------------------------------------------------------------------------------


def _ensure_login(
    conn: psycopg.Connection, dsn: str, saved: dict[str, str], roles: Roles, kind: str, group: str
) -> str:
    """The DSN of a service login; (re)created with a new password unless the saved one works."""
    login = roles.name(kind)
    password = saved.get(login)
    if password is not None and _can_log_in(with_login(dsn, login, password)):
        return with_login(dsn, login, password)
    password = new_password()
    if _role_exists(conn, login):
        _set_password(conn, login, password)
    else:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
                sql.Identifier(login), sql.Literal(_verifier(conn, login, password)),
                sql.Identifier(group),
            )
        )  # fmt: skip
        _tell_citus(conn, login, password)
        _set_limits(conn, login, LIMITS[kind])
    saved[login] = password
    return with_login(dsn, login, password)


def _set_limits(conn: psycopg.Connection, login: str, limits: Limits) -> None:
    import psycopg

    conn.execute(
        sql.SQL("ALTER ROLE {} CONNECTION LIMIT {}").format(
            sql.Identifier(login), sql.Literal(limits.connections)
        )
    )
    for name, value in limits.settings.items():
        # temp_file_limit needs a superuser (or GRANT SET ON PARAMETER) to set
        with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                sql.SQL("ALTER ROLE {} SET {} = {}").format(
                    sql.Identifier(login), sql.Identifier(name), sql.Literal(value)
                )
            )


def _set_password(conn: psycopg.Connection, login: str, password: str) -> None:
    conn.execute(
        sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(login), sql.Literal(_verifier(conn, login, password))
        )
    )
    _tell_citus(conn, login, password)


def let_definer_reach_shards(conn: psycopg.Connection, role: str) -> None:
    """On a Citus coordinator: let a role that owns SECURITY DEFINER functions log in, with a
    new generated password that only `pg_dist_authinfo` holds.

    Citus opens the shard connections of a definer function's queries as its owner, so a
    NOLOGIN owner cannot reach the workers. Nobody is told the password: only Citus (and a
    superuser, who may read `pg_dist_authinfo`) can log in as the role.
    """
    password = new_password()
    conn.execute(
        sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(_verifier(conn, role, password))
        )
    )
    _tell_citus(conn, role, password)


def _tell_citus(conn: psycopg.Connection, login: str, password: str | None) -> None:
    """On a Citus coordinator, the password Citus opens shard connections with as `login`
    (`pg_dist_authinfo`, for every node): without it the login's queries cannot reach the
    workers. None forgets it. Elsewhere nothing to do."""
    citus = conn.execute(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus')"
    ).fetchone()
    if not (citus and citus[0]):
        return
    conn.execute("DELETE FROM pg_catalog.pg_dist_authinfo WHERE rolename = %s", (login,))
    if password is not None:
        conn.execute(
            "INSERT INTO pg_catalog.pg_dist_authinfo (nodeid, rolename, authinfo)"
            " VALUES (0, %s, %s)",
            (login, f"password={password}"),
        )


def _verifier(conn: psycopg.Connection, login: str, password: str) -> str:
    """The SCRAM verifier, computed here: the password itself never reaches the server's logs."""
    return conn.pgconn.encrypt_password(
        password.encode(), login.encode(), b"scram-sha-256"
    ).decode()


def _can_log_in(dsn: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=10):
            return True
    except psycopg.OperationalError:
        return False


def _can_manage(conn: psycopg.Connection) -> bool:
    """Whether this session may create and alter logins (the owner's)."""
    row = conn.execute(
        "SELECT rolsuper OR rolcreaterole FROM pg_catalog.pg_roles WHERE rolname = session_user"
    ).fetchone()
    return bool(row and row[0])


def _keys(conn: psycopg.Connection) -> tuple[str, str]:
    info = conn.info
    return server_key({"host": info.host, "port": str(info.port)}), info.dbname


def _role_exists(conn: psycopg.Connection, login: str) -> bool:
    return bool(
        conn.execute("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s", (login,)).fetchone()
    )


def _people(conn: psycopg.Connection) -> list[Person]:
    rows = conn.execute(
        "SELECT name, login, role, principals FROM mmsearch.person ORDER BY name"
    ).fetchall()
    return [Person(*row) for row in rows]


def _existing_person(conn: psycopg.Connection, name: str) -> Person:
    login = read_roles(conn).person(name)
    for person in _people(conn):
        if person.login == login:
            return person
    raise UserError(f"no user {name!r} (mmsearch user list shows them)")


def _principals(principals: Iterable[str]) -> list[str]:
    from mmsearch.db.engine import validate_principals

    if isinstance(principals, str):
        raise TypeError("principals must be a list of strings, not one string")
    return sorted(set(validate_principals(principals)))
