"""What the HTTP edge is given (`WebDeps`) and where a handler finds the services built from it."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from callengine.services import Services


@dataclass(frozen=True)
class WebDeps:
    services: Services  # built by the composition root (or a test) with the store and vault
    admin_token: str
    # Read timeouts (config [http]): a client slower than this sending its request's headers
    # (from the connection's start, or the next request's first byte) or its body is cut off.
    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0


DEPS = web.AppKey("deps", WebDeps)
SERVICES = web.AppKey("services", Services)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]
