"""pareto_mask: lowest cost, highest gain; ties, unknowns, order, empty input. uncertain_order:
which frontier neighbours' latency ranges overlap."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from roofline.analyses.pareto import pareto_mask, uncertain_order


def _dominated(i: int, cost, gain) -> bool:
    """The definition: some other usable candidate is no worse on both and better on one."""
    return any(cost[j] <= cost[i] and gain[j] >= gain[i]
               and (cost[j] < cost[i] or gain[j] > gain[i])
               for j in range(len(cost)) if j != i and cost[j] is not None
               and gain[j] is not None)


def test_empty_input():
    assert pareto_mask([], []) == []


def test_lengths_must_agree():
    with pytest.raises(ValueError, match="differ in length"):
        pareto_mask([1.0, 2.0], [1.0])


def test_single_candidate_is_the_frontier():
    assert pareto_mask([3.0], [70.0]) == [True]


def test_faster_and_more_accurate_dominates():
    # (1 ms, 70%) beats (2 ms, 60%); (3 ms, 80%) is the accurate end of the frontier.
    assert pareto_mask([1.0, 2.0, 3.0], [70.0, 60.0, 80.0]) == [True, False, True]


def test_ties_are_all_on_the_frontier():
    # Equal (cost, gain) pairs do not dominate each other.
    assert pareto_mask([1.0, 1.0, 2.0], [70.0, 70.0, 70.0]) == [True, True, False]


def test_equal_cost_keeps_only_the_best_gain():
    assert pareto_mask([1.0, 1.0], [70.0, 69.0]) == [True, False]


def test_equal_gain_keeps_only_the_lowest_cost():
    assert pareto_mask([1.0, 1.5], [70.0, 70.0]) == [True, False]


@pytest.mark.parametrize("missing", [None, math.nan, np.float64("nan"), np.float32("nan")])
def test_unsupported_model_is_never_on_and_never_dominates(missing):
    # Model 0 cannot run (no latency): it would dominate model 1 if it counted.
    assert pareto_mask([missing, 2.0], [80.0, 60.0]) == [False, True]


@pytest.mark.parametrize("missing", [None, math.nan, np.float32("nan")])
def test_model_without_top1_is_never_on_and_never_dominates(missing):
    # Model 0 is the fastest but has no published top-1: ranked, never on the frontier.
    assert pareto_mask([0.1, 2.0], [missing, 60.0]) == [False, True]


def test_pandas_missing_values_are_unknowns():
    import pandas as pd

    assert pareto_mask([pd.NA, 1.0, 2.0], [90.0, pd.NA, 60.0]) == [False, False, True]


def test_all_unknown_gives_an_empty_frontier():
    assert pareto_mask([None, 1.0], [50.0, None]) == [False, False]


def test_numpy_scalars_and_ints():
    assert pareto_mask(np.array([2, 1, 3]), np.array([60, 50, 70])) == [True, True, True]


values = st.one_of(st.none(), st.sampled_from([0.5, 1.0, 2.0, 3.0, 5.0]))


@given(st.lists(st.tuples(values, values), max_size=12), st.randoms(use_true_random=False))
def test_matches_the_definition_and_ignores_order(pairs, rnd):
    cost = [c for c, _ in pairs]
    gain = [g for _, g in pairs]
    mask = pareto_mask(cost, gain)
    expected = [c is not None and g is not None and not _dominated(i, cost, gain)
                for i, (c, g) in enumerate(pairs)]
    assert mask == expected
    order = list(range(len(pairs)))
    rnd.shuffle(order)
    shuffled = pareto_mask([cost[i] for i in order], [gain[i] for i in order])
    assert shuffled == [mask[i] for i in order]


def test_uncertain_order_marks_frontier_neighbours_whose_ranges_overlap():
    # Frontier by latency: a (1.0, range 0.8-1.3), b (1.2, 1.1-1.4), c (2.0, 1.5-2.5). a's
    # high 1.3 >= b's low 1.1: a and b overlap; b's high 1.4 < c's low 1.5: c stands apart.
    # d overlaps everything but is off the frontier; e is on it without a range; f is
    # unsupported. Neither is marked nor taken as a neighbour.
    frontier = [True, True, True, False, True, True]
    latency = [1.0, 1.2, 2.0, 1.1, 1.6, None]
    ranges = [(0.8, 1.3), (1.1, 1.4), (1.5, 2.5), (0.1, 9.0), None, None]
    assert uncertain_order(frontier, latency, ranges) == [True, True, False, False, False,
                                                          False]
    # Touching ends count as overlapping (the order is not known either way).
    assert uncertain_order([True, True], [1.0, 2.0], [(0.5, 1.5), (1.5, 3.0)]) == [True, True]
    # Neighbours by latency, not by position: c, a, b in any order give the same marks.
    assert uncertain_order([True] * 3, [2.0, 1.0, 1.2], [ranges[2], ranges[0], ranges[1]]) \
        == [False, True, True]
    assert uncertain_order([True], [float("nan")], [(1.0, 2.0)]) == [False]
