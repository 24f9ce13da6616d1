"""Typed errors. `UserError`s carry one line fit to show a user (CLI exit code 1)."""


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
