"""What the HTTP edge is given (`WebDeps`) and where a handler finds the services built from it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from callengine.metrics import Metrics
from callengine.services import Services


@dataclass(frozen=True)
class WebDeps:
    services: Services  # built by the composition root (or a test) with the store and vault
    admin_token: str
    # Read timeouts (config [http]): a client slower than this sending its request's headers
    # (from the connection's start, or the next request's first byte) or its body is cut off.
    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0
    # The widget's event streams (web/events.py): open at once per client (its keyed hash,
    # IPv6 by /64) and per lead, and how long one lasts before the widget polls instead.
    events_per_client: int = 8
    events_per_lead: int = 2
    events_lifetime_s: float = 600.0
    # The panel's cookies carry Secure (config [panel] secure_cookies; off only for plain-http
    # development on loopback: a browser would not send them back over http otherwise).
    panel_secure_cookies: bool = True
    # The operator's routes (web/health.py): the metrics, the token that may read them besides
    # the admin token ("": the admin token only), and the readiness checks of what this
    # process runs (None: not run here, not checked).
    metrics: Metrics = field(default_factory=Metrics)
    metrics_token: str = ""
    ari_ready: Callable[[], bool] | None = None
    ami_ready: Callable[[], bool] | None = None


DEPS = web.AppKey("deps", WebDeps)
SERVICES = web.AppKey("services", Services)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]
