"""The order in which a call tries a group's free agents, by the group's strategy: pure, no I/O.

ring-all rings every free agent at once and sequential tries them one at a time in the group's
order; the other three also ring one agent at a time (as app_queue's rrmemory, leastrecent and
random do), each in an order of its own:

- round-robin: the start rotates. The call starts with the member after the one the group's
  previous call started with (in the group's order, wrapping round), or the first free one
  after it; the store keeps who that was (`rotation`), so the rotation survives a restart.
- least-recent: the free agent whose last call ended longest ago first; agents never called
  first of all; ties in the group's order. `last_called` is each agent's last call's end (the
  store's attempts answered by that endpoint, in any group).
- random: a random order, from the random source the engine was given (seedable in tests).

Agents are their endpoints here, as the engine rings them and the store records them.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from callengine.flow import Strategy

# The strategies whose order depends on state the store keeps.
ROTATING = frozenset({Strategy.ROUND_ROBIN})
BY_LAST_CALL = frozenset({Strategy.LEAST_RECENT})


@dataclass(frozen=True)
class RingState:
    """What the store keeps for the orders: group name → the endpoint its last round-robin
    call started with; endpoint → when the last call it answered ended."""

    rotations: Mapping[str, str] = field(default_factory=dict)
    last_called: Mapping[str, float] = field(default_factory=dict)


def ring_order(
    strategy: Strategy,
    members: Sequence[str],
    free: Collection[str],
    *,
    rotation: str | None = None,
    last_called: Mapping[str, float] | None = None,
    rng: random.Random | None = None,
) -> tuple[str, ...]:
    """The free members of a group (`members` in the group's order, `free` the ones that may
    be rung now) in the order the call tries them. `rotation`: the member the group's previous
    round-robin call started with (None, or no longer a member: start with the first);
    `last_called`: endpoint → when its last call ended (absent: never called); `rng`: the
    random source (required for random)."""
    in_order = tuple(dict.fromkeys(m for m in members if m in free))
    if strategy is Strategy.ROUND_ROBIN:
        start = members.index(rotation) + 1 if rotation in members else 0
        turn = {m: (i - start) % len(members) for i, m in enumerate(members)}
        return tuple(sorted(in_order, key=turn.__getitem__))
    if strategy is Strategy.LEAST_RECENT:
        last = last_called or {}
        return tuple(sorted(in_order, key=lambda m: last.get(m, float("-inf"))))  # stable
    if strategy is Strategy.RANDOM:
        if rng is None:
            raise ValueError("the random strategy needs a random source")
        return tuple(rng.sample(in_order, len(in_order)))
    return in_order  # ring-all, sequential


def next_rotation(strategy: Strategy, order: Sequence[str]) -> str | None:
    """What the store keeps for the group after a call rung in `order`: the member it started
    with (round-robin only; None: nothing to keep)."""
    if strategy in ROTATING and order:
        return order[0]
    return None
