"""The widget's proof of work (ALTCHA, v1 SHA-256 challenges): a challenge for the visitor's
browser to solve, and the check of a solved one when a lead comes in.

A challenge is stateless: its salt carries its expiry and its signature is an HMAC with the
challenge key (`http.challenge_key_file` / `CALLENGINE_CHALLENGE_KEY`, else derived from the
store's data key: docs/config.md). A solution is accepted once: the signatures of accepted
solutions are kept until their challenge expires. That memory is this process's (the engine is
one process); engines behind one balancer would each accept a solution once."""

from __future__ import annotations

import base64
import datetime
import json
from dataclasses import dataclass, field
from typing import Any

from altcha.v1 import ChallengeOptions, create_challenge, extract_params, verify_solution

from callengine.errors import ChallengeFailed

CHALLENGE_TTL_S = 300  # a challenge is solved within seconds; 5 minutes leaves a form's time
MAX_NUMBER = 50_000  # about 0.1–0.5 s of SHA-256 in a phone's browser
MAX_PAYLOAD = 4096  # characters of base64: a payload is ~300


@dataclass
class ChallengeBook:
    """The HMAC key and the solutions already used (signature → expiry), in memory."""

    key: bytes
    used: dict[str, float] = field(default_factory=dict)
    ttl_s: int = CHALLENGE_TTL_S
    max_number: int = MAX_NUMBER

    def create(self, now: float) -> dict[str, Any]:
        expires = datetime.datetime.fromtimestamp(now + self.ttl_s, datetime.timezone.utc)
        challenge = create_challenge(ChallengeOptions(
            hmac_key=self.key, max_number=self.max_number, expires=expires))
        return challenge.to_dict()

    def redeem(self, payload: Any, now: float) -> None:
        """Accept a solved challenge once (ChallengeFailed: missing, malformed, wrong, expired
        or used before). The expiry is checked against `now` (the services' clock)."""
        if not isinstance(payload, str) or not payload or len(payload) > MAX_PAYLOAD:
            raise ChallengeFailed("the request needs a solved challenge (altcha)")
        try:
            ok, _ = verify_solution(payload, self.key, check_expires=False)
            parsed = _decode(payload)
            expires = float(extract_params(parsed).get("expires", ["0"])[0])
        except Exception:  # a malformed payload of any shape is a failed challenge
            ok, expires = False, 0.0
        if not ok:
            raise ChallengeFailed("the challenge's solution is not valid")
        if expires < now:
            raise ChallengeFailed("the challenge has expired: solve a new one")
        self._forget(now)
        signature = parsed["signature"]
        if signature in self.used:
            raise ChallengeFailed("this challenge was used already: solve a new one")
        self.used[signature] = expires

    def _forget(self, now: float) -> None:
        for signature in [s for s, expires in self.used.items() if expires < now]:
            del self.used[signature]


def _decode(payload: str) -> dict[str, Any]:
    parsed = json.loads(base64.b64decode(payload, validate=True).decode())
    if not isinstance(parsed, dict) or not isinstance(parsed.get("signature"), str):
        raise ValueError("not an ALTCHA payload")
    return parsed
