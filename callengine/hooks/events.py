"""The webhooks' events, endpoints and deliveries as records, the payload envelope and the
retry schedule: pure (no I/O), shared by the store's outbox writes, the services and the
delivery worker."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

LEAD_CREATED = "lead.created"
ATTEMPT_FINISHED = "attempt.finished"
CALL_CONNECTED = "call.connected"
LEAD_DONE = "lead.done"
RECORDING_READY = "recording.ready"
SUBJECT_ERASED = "subject.erased"
LEAD_PURGED = "lead.purged"  # retention deleted closed leads: a CRM's copy may go too
EVENT_TYPES = (LEAD_CREATED, ATTEMPT_FINISHED, CALL_CONNECTED, LEAD_DONE, RECORDING_READY,
               SUBJECT_ERASED, LEAD_PURGED)
ALL_EVENTS = "*"  # an endpoint subscribed to every type, present and future

# Seconds to wait after the n-th failed attempt (n = 1, 2, …); after the last, the delivery is
# dead (replayed by hand). About 17 hours in all.
BACKOFF_S = (10, 60, 300, 1800, 7200, 18000, 36000)
MAX_ATTEMPTS = len(BACKOFF_S) + 1
# A rotated endpoint's previous secret still signs (beside the new one) this long.
ROTATION_GRACE_S = 24 * 3600

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
DELIVERY_STATUSES = (PENDING, DELIVERED, DEAD)


def retry_delay(attempts: int) -> float | None:
    """The wait after the `attempts`-th failed attempt; None: no more, the delivery is dead."""
    if attempts < 1 or attempts > len(BACKOFF_S):
        return None
    return float(BACKOFF_S[attempts - 1])


@dataclass(frozen=True)
class Endpoint:
    id: str
    url: str
    description: str
    events: tuple[str, ...]
    full_numbers: bool
    enabled: bool
    created_at: float
    updated_at: float
    rotated_until: float | None  # the previous secret signs too until then

    def subscribed(self, event_type: str) -> bool:
        return ALL_EVENTS in self.events or event_type in self.events


@dataclass(frozen=True)
class Delivery:
    id: str
    event_id: str  # the webhook-id: the same for every attempt (the receiver's dedup key)
    endpoint_id: str
    event_type: str
    lead_id: str | None
    status: str
    attempts: int
    next_at: float | None
    last_code: int | None
    last_error: str | None
    last_latency_ms: float | None
    created_at: float
    delivered_at: float | None


@dataclass(frozen=True)
class Claimed:
    """A delivery the worker holds (its lease), with what it needs to send it."""
    delivery: Delivery
    url: str
    secrets: tuple[str, ...]  # whsec_…: the current one first
    full_numbers: bool
    payload: dict  # the event's data, no number yet
    event_at: float
    phone_e164: str | None  # the lead's number at delivery time (None: erased, purged, none)


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def envelope(event_type: str, event_at: float, data: dict) -> str:
    """The body per Standard Webhooks: type, timestamp, data (compact JSON)."""
    return json.dumps({"type": event_type, "timestamp": iso(event_at), "data": data},
                      separators=(",", ":"), sort_keys=True)
