"""Pareto frontiers: which candidates no other candidate beats on both objectives.

Owns the frontier rule and which frontier neighbours' latency ranges overlap (pure functions
of numbers); imports neither torch nor plotly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["pareto_mask", "uncertain_order"]


def _usable(value: float | None) -> bool:
    """A known number: not None, not NaN of any float type (numpy's float32 NaN is no Python
    float), not pandas' NA (which cannot even be compared)."""
    if value is None:
        return False
    try:
        return not math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def pareto_mask(cost: Sequence[float | None], gain: Sequence[float | None]) -> list[bool]:
    """True for each candidate on the frontier of lowest ``cost`` and highest ``gain``.

    A candidate is on the frontier when no other candidate has cost <= and gain >= with at
    least one strictly better. Candidates with equal (cost, gain) do not dominate each other,
    so ties are all on the frontier. A candidate whose cost or gain is None or NaN (an
    unsupported model, a model without a published top-1) is never on the frontier and never
    dominates another.
    """
    if len(cost) != len(gain):
        raise ValueError(f"cost and gain differ in length ({len(cost)} != {len(gain)})")
    usable = [i for i in range(len(cost)) if _usable(cost[i]) and _usable(gain[i])]
    # Sweep by cost ascending, gain descending: a candidate is on the frontier when its gain
    # beats every gain seen at a strictly lower cost, or equals the best at its own cost.
    order = sorted(usable, key=lambda i: (cost[i], -gain[i]))  # type: ignore[operator]
    mask = [False] * len(cost)
    best_gain = -math.inf
    i = 0
    while i < len(order):
        j = i
        group_cost = cost[order[i]]
        while j < len(order) and cost[order[j]] == group_cost:
            j += 1
        group = order[i:j]
        top = gain[group[0]]  # highest gain at this cost (sorted descending)
        if top > best_gain:  # type: ignore[operator]
            for k in group:
                if gain[k] == top:
                    mask[k] = True
            best_gain = top  # type: ignore[assignment]
        i = j
    return mask


def uncertain_order(frontier: Sequence[bool], latency: Sequence[float | None],
                    ranges: Sequence[Sequence[float] | None]) -> list[bool]:
    """For each candidate on ``frontier``, whether its latency range (low, high) overlaps that
    of the frontier candidate next to it in latency: which of the two is faster is then not
    known (the frontier is ordered by latency, and their order may be the other way round).

    A candidate off the frontier, or without a latency or a range, is never uncertain and is
    no neighbour: the comparison skips over it to the next one that has a range.
    """
    front = sorted((latency[i], i) for i, on in enumerate(frontier)
                   if on and _usable(latency[i]) and ranges[i] is not None)
    out = [False] * len(frontier)
    for (_, a), (_, b) in zip(front, front[1:], strict=False):
        if ranges[a][1] >= ranges[b][0]:  # type: ignore[index]
            out[a] = out[b] = True
    return out
