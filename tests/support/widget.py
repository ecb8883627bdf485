"""What a test needs to act as the widget: a solved ALTCHA challenge for a lead's `altcha`."""

from __future__ import annotations

import base64
import json
from typing import Any

from altcha.v1 import Challenge, solve_challenge as solve


def solution_payload(challenge: dict[str, Any]) -> str:
    """The base64 payload the widget sends for a challenge (GET …/challenge's JSON)."""
    found = solve(Challenge(challenge["algorithm"], challenge["challenge"],
                            challenge["maxNumber"], challenge["salt"], challenge["signature"]))
    assert found is not None, "the challenge has no solution in its range"
    return base64.b64encode(json.dumps({
        "algorithm": challenge["algorithm"], "challenge": challenge["challenge"],
        "number": found.number, "salt": challenge["salt"],
        "signature": challenge["signature"]}).encode()).decode()


async def solve_challenge(client: Any, key: str, **headers: str) -> str:
    """Fetch the widget's challenge through `client` (aiohttp TestClient) and solve it."""
    response = await client.get(f"/api/v1/widgets/{key}/challenge", headers=headers)
    assert response.status == 200, await response.text()
    return solution_payload(await response.json())
