"""What each scenario asks, said once for every system: mmsearch's options, the
hand-written query's WHERE clause, and the filter as numpy and the peers apply it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from psycopg.types.json import Jsonb

K = 10
TARGET = 0.95
EVERYONE = ["group:all"]
META = "r.metadata @> %(f)s"
TAGS = "r.tags && %(f)s::text[]"
ACL = "s.acl && %(f)s::text[]"


@dataclass(frozen=True)
class Scenario:
    key: str
    name: str
    principals: list[str]
    #: the `SearchOptions` filters of mmsearch's request
    options: dict[str, Any] = field(default_factory=dict)
    #: the legs of the request: one vector leg, vector + keyword, or keyword alone
    legs: Literal["vector", "hybrid", "keyword"] = "vector"
    #: the hand-written query's WHERE clause (a constant of this module, its value bound as
    #: %(f)s) and that value; None: the hand-written query has no equivalent
    floor: tuple[str, Any] | None = ("true", None)
    #: the same filter for numpy and the peers: a record flag, a tag, or the one principal
    flag: str | None = None
    tag: str | None = None
    principal: str | None = None


SCENARIOS = [
    Scenario("unfiltered", "unfiltered", EVERYONE),
    Scenario(
        "filter10", "filter 10%", EVERYONE, {"metadata": {"s10": True}},
        floor=(META, Jsonb({"s10": True})), flag="s10",
    ),
    Scenario(
        "filter1", "filter 1%", EVERYONE, {"metadata": {"s1": True}},
        floor=(META, Jsonb({"s1": True})), flag="s1",
    ),
    Scenario(
        "filter01", "filter 0.1%", EVERYONE, {"metadata": {"s01": True}},
        floor=(META, Jsonb({"s01": True})), flag="s01",
    ),
    Scenario("tag1", "tag 1%", EVERYONE, {"tags": ["t7"]}, floor=(TAGS, ["t7"]), tag="t7"),
    Scenario(
        "perm10", "permission 10%", ["group:g3"], floor=(ACL, ["group:g3"]),
        principal="group:g3",
    ),
    Scenario(
        "perm1", "permission 1%", ["group:h42"], floor=(ACL, ["group:h42"]),
        principal="group:h42",
    ),
    Scenario("hybrid", "hybrid (vector + keyword)", EVERYONE, legs="hybrid", floor=None),
    Scenario("keyword", "keyword only", EVERYONE, legs="keyword"),
]  # fmt: skip
BY_KEY = {scenario.key: scenario for scenario in SCENARIOS}
