"""The ring order by strategy (callengine.ringorder.ring_order), table-driven."""

from __future__ import annotations

import random

import pytest

from callengine.flow import Strategy
from callengine.ringorder import next_rotation, ring_order

A, B, C, D = "PJSIP/a", "PJSIP/b", "PJSIP/c", "PJSIP/d"
MEMBERS = (A, B, C, D)
ALL = set(MEMBERS)


@pytest.mark.parametrize("strategy, free, state, expected", [
    (Strategy.RING_ALL, ALL, {}, (A, B, C, D)),
    (Strategy.SEQUENTIAL, ALL, {}, (A, B, C, D)),
    (Strategy.SEQUENTIAL, {C, A}, {}, (A, C)),  # the group's order, not the free set's
    # round-robin: after the member the previous call started with, wrapping round
    (Strategy.ROUND_ROBIN, ALL, {}, (A, B, C, D)),
    (Strategy.ROUND_ROBIN, ALL, {"rotation": A}, (B, C, D, A)),
    (Strategy.ROUND_ROBIN, ALL, {"rotation": D}, (A, B, C, D)),
    (Strategy.ROUND_ROBIN, {A, D}, {"rotation": A}, (D, A)),  # B, C busy: the next free
    (Strategy.ROUND_ROBIN, ALL, {"rotation": "PJSIP/gone"}, (A, B, C, D)),
    # least-recent: never called first (group order), then the oldest last call
    (Strategy.LEAST_RECENT, ALL, {"last_called": {A: 30.0, B: 10.0, C: 20.0}}, (D, B, C, A)),
    (Strategy.LEAST_RECENT, ALL, {"last_called": {}}, (A, B, C, D)),
    (Strategy.LEAST_RECENT, {A, C}, {"last_called": {A: 5.0, C: 5.0}}, (A, C)),  # ties
    (Strategy.LEAST_RECENT, {B, C}, {"last_called": {B: 9.0, D: 1.0}}, (C, B)),
])
def test_ring_order(strategy, free, state, expected):
    assert ring_order(strategy, MEMBERS, free, **state) == expected


def test_random_is_a_permutation_of_the_free_from_the_source_given():
    orders = {ring_order(Strategy.RANDOM, MEMBERS, ALL - {B}, rng=random.Random(seed))
              for seed in range(40)}
    assert all(sorted(o) == sorted((A, C, D)) for o in orders)
    assert len(orders) == 6  # every order comes up
    assert (ring_order(Strategy.RANDOM, MEMBERS, ALL, rng=random.Random(7))
            == ring_order(Strategy.RANDOM, MEMBERS, ALL, rng=random.Random(7)))
    with pytest.raises(ValueError):
        ring_order(Strategy.RANDOM, MEMBERS, ALL)


def test_round_robin_over_a_series_of_calls_rotates_the_start():
    rotation, starts = None, []
    for _ in range(6):
        order = ring_order(Strategy.ROUND_ROBIN, MEMBERS, ALL, rotation=rotation)
        rotation = next_rotation(Strategy.ROUND_ROBIN, order)
        starts.append(order[0])
    assert starts == [A, B, C, D, A, B]


@pytest.mark.parametrize("strategy", [s for s in Strategy if s is not Strategy.ROUND_ROBIN])
def test_only_round_robin_keeps_a_rotation(strategy):
    assert next_rotation(strategy, (A, B)) is None
    assert next_rotation(Strategy.ROUND_ROBIN, ()) is None
