"""Ground truth: exact top 10 with numpy over the rows a scenario lets through, decided from
the generated data alone (nothing from the systems under test)."""

from __future__ import annotations

import numpy as np

from bench.search.data import PER_RECORD, Dataset
from bench.search.scenarios import K, Scenario

Truth = dict[str, list[list[int]]]


def passing(data: Dataset, scenario: Scenario) -> np.ndarray:
    """Which segments pass the scenario's filter (or are visible to its principal)."""
    segments = data.segments
    if scenario.flag:
        return segments.flags[scenario.flag]
    by_record = None
    if scenario.tag:
        by_record = np.array([scenario.tag in tags for tags in segments.tags])
    elif scenario.principal:
        by_record = np.array([scenario.principal in acl for acl in segments.acl])
    if by_record is None:
        return np.ones(len(segments.vectors), dtype=bool)
    return by_record[segments.record]


def ground_truth(data: Dataset, scenario: Scenario) -> Truth | None:
    """The exact top 10 "segments" (segment numbers) and "records" (record numbers, by their
    best segment) of each query; None for text searches (no common ground truth)."""
    if scenario.legs != "vector":
        return None
    vectors = data.segments.vectors
    n = len(vectors)
    allowed = passing(data, scenario)
    out: Truth = {"segments": [], "records": []}
    for chunk in np.array_split(data.queries, max(1, len(data.queries) // 16)):
        similarity = chunk @ vectors.T
        similarity[:, ~allowed] = -np.inf
        best = similarity.reshape(len(chunk), n // PER_RECORD, PER_RECORD).max(axis=2)
        for name, scores in (("segments", similarity), ("records", best)):
            for row in scores:
                top = np.argsort(-row, kind="stable")[:K]
                out[name].append([int(i) for i in top if np.isfinite(row[i])])
    return out
