"""Timing and recall: one search per query in turn (p50, p95, QPS), the same with four
clients, and the sweep of a system's accuracy knob."""

from __future__ import annotations

import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from bench.search.scenarios import TARGET

#: a search of query i at a knob setting (None: the system's default), returning the ids
#: that the ground truth uses
Search = Callable[[int, "int | None"], list[int]]


@dataclass
class Point:
    """One sweep setting of one system in one scenario."""

    knob: int | None
    queries: int  # how many ran (fewer than asked where the setting ran out of budget)
    recall_at_10: float  # against numpy, NaN where there is none
    p50_ms: float
    p95_ms: float
    qps_1: float


@dataclass
class Row:
    scenario: str
    system: str
    path: str
    setting: str
    recall_at_10: float
    p50_ms: float
    p95_ms: float
    qps_1: float
    qps_4: float
    #: "" or "below target" (no setting reached recall 0.95) or "cannot express it: why"
    note: str = ""
    sweep: list[Point] = field(default_factory=list)
    #: the knob of the setting shown
    knob: int | None = None
    #: mmsearch doing the hand-written query's work: its p50 over the hand-written p50
    p50_ratio: float = float("nan")


def cannot(scenario: str, system: str, why: str) -> Row:
    nan = float("nan")
    return Row(scenario, system, "n/a", "", nan, nan, nan, nan, nan, f"cannot express it: {why}")


def tune(
    scenario: str,
    system: str,
    how: str,
    knob_name: str,
    search: Search,
    knobs: Sequence[int | None],
    truth: list[list[int]] | None,
    n: int,
    budget_s: float,
    knob_label: Callable[[int | None], str] | None = None,
) -> Row:
    """Run every knob setting (`n` queries each); keep the cheapest reaching the target
    recall (else the most accurate), and measure it with 4 clients."""
    started = time.perf_counter()
    points: list[Point] = []
    for knob in knobs:
        points.append(timed(lambda i, k=knob: search(i, k), knob, n, truth, budget_s))
        if points[-1].queries < n:
            break
    reaching = [p for p in points if p.recall_at_10 >= TARGET]
    if reaching:
        best, note = max(reaching, key=lambda p: p.qps_1), ""
    elif truth is not None:
        best, note = max(points, key=lambda p: (p.recall_at_10, p.qps_1)), "below target"
    else:  # no ground truth (text search): the default setting
        best, note = points[0], ""
    if best.queries < n:
        note = "; ".join(filter(None, [note, f"{best.queries} of {n} queries (over budget)"]))
    label = knob_label or (lambda k: "default" if k is None else f"{knob_name}={k}")
    total = 2 * n if best.queries == n else best.queries
    qps_4 = concurrent_qps(lambda i: search(i, best.knob), n, clients=4, total=total)
    print(f"  {scenario} / {system}: {len(points)} settings, {time.perf_counter() - started:.0f} s",
          file=sys.stderr, flush=True)  # fmt: skip
    return Row(scenario, system, how, label(best.knob), best.recall_at_10, best.p50_ms,
               best.p95_ms, best.qps_1, qps_4, note, points, best.knob)  # fmt: skip


def timed(
    search: Callable[[int], list[int]],
    knob: int | None,
    n: int,
    truth: list[list[int]] | None,
    budget_s: float,
) -> Point:
    """Latency of each of `n` queries in turn, and recall against numpy.

    One untimed query first: a setting change may reopen an index (Chroma does), and that
    load is not a query's cost.
    """
    search(n - 1)
    latencies: list[float] = []
    found = []
    for i in range(n):
        if sum(latencies) > budget_s and i >= 10:
            break
        started = time.perf_counter()
        found.append(search(i))
        latencies.append(time.perf_counter() - started)
    done = len(found)
    return Point(
        knob,
        done,
        recall(found, truth[:done] if truth is not None else None),
        1e3 * float(np.percentile(latencies, 50)),
        1e3 * float(np.percentile(latencies, 95)),
        done / sum(latencies),
    )


def recall(found: list[list[int]], truth: list[list[int]] | None) -> float:
    if truth is None:
        return float("nan")
    return statistics.fmean(
        len(set(f) & set(t)) / max(len(t), 1) for f, t in zip(found, truth, strict=True)
    )


def concurrent_qps(
    search: Callable[[int], list[int]], n: int, *, clients: int, total: int | None = None
) -> float:
    """Queries per second with `clients` threads (each on its own pooled connection),
    over `total` searches (default: each query twice)."""
    total = total or max(2 * n, 40)
    counter = iter(range(total))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            search(i % n)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return total / (time.perf_counter() - started)
