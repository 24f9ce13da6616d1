"""Person logins for tests: one per (database, role, principals), created on first use."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

_created: dict[tuple[str, str, tuple[str, ...]], str] = {}


def person_dsn(owner_dsn: str, role: str = "analyst", principals: Iterable[str] = ()) -> str:
    """The DSN of a person login of `role` whose principals (from mmsearch.person) are these."""
    from mmsearch.db.logins import add_person

    wanted = tuple(sorted(set(principals)))
    key = (owner_dsn, role, wanted)
    if key not in _created:
        digest = hashlib.sha256(repr(key).encode()).hexdigest()[:10]
        _created[key] = add_person(owner_dsn, f"{role}_{digest}", role, wanted)
    return _created[key]
