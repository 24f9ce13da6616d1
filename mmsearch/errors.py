"""Typed errors, and the one-line form every message takes before a user sees it.

`UserError`s carry one line fit to show a user (CLI exit code 1).
"""


def one_line(message: str, limit: int = 500) -> str:
    """A message squeezed onto one line, as stored in `ingest_error` and shown in the CLI."""
    return " ".join(message.split())[:limit]


def reason(exc: BaseException) -> str:
    """An exception as a short one-line reason (its type name when it has no message)."""
    return one_line(str(exc), 200) or type(exc).__name__


class MmsearchError(Exception):
    """Base class of everything mmsearch raises on purpose."""


class UserError(MmsearchError):
    """Bad input or a request that cannot be served; the message is one line."""


class DatabaseUnavailable(UserError):
    """The database could not be reached or started."""


class SchemaMissing(UserError):
    """The database has no (or an older) mmsearch schema: run `mmsearch init`."""


class SpaceConflict(UserError):
    """A space name is already bound to another model, dimension or distance."""


class InvalidPrincipal(UserError):
    """A principal is not of the form `public`, `user:<id>` or `group:<id>`."""
