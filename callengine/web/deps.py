"""What the HTTP edge is given (`WebDeps`) and where a handler finds the services built from it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from callengine.recordings import RecordingVault
from callengine.services import Services, Store


@dataclass(frozen=True)
class WebDeps:
    store: Store
    admin_token: str
    on_lead: Callable[[], None]  # tells the engine a lead is waiting
    clock: Callable[[], float] = time.time
    vault: RecordingVault | None = None  # recordings; without private keys, no playback


DEPS = web.AppKey("deps", WebDeps)
SERVICES = web.AppKey("services", Services)


def services(request: web.Request) -> Services:
    return request.app[SERVICES]
