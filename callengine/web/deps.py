"""What the HTTP edge is given (`WebDeps`) and where a handler finds the services built from it."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from callengine.services import Services


@dataclass(frozen=True)
class WebDeps:
    services: Services  # built by the composition root (or a test) with the store and vault
    admin_token: str


DEPS = web.AppKey("deps", WebDeps)
SERVICES = web.AppKey("services", Services)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]
