"""Who is calling: a bearer token (the configured admin token, or a token with a role) becomes
the `Principal` the services check. 401 here; what the principal may do, the services decide."""

from __future__ import annotations

import hmac

from aiohttp import web

from callengine.access import Principal, Role
from callengine.web.deps import DEPS, services
from callengine.web.problems import Problem

UNMASK_VALUES = ("1", "true", "yes")


async def principal(request: web.Request) -> Principal:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    found = None
    if scheme.lower() == "bearer" and token:
        if hmac.compare_digest(token.encode(), request.app[DEPS].admin_token.encode()):
            found = Principal("admin-token", Role.ADMIN)
        else:
            found = await services(request).tokens.principal_for(token)
    if found is None:
        raise Problem(401, "unauthorized", "Authentication required",
                      "send an API token as 'Authorization: Bearer <token>'")
    return found


def wants_unmasked(request: web.Request) -> bool:
    """Numbers are masked unless asked for (?unmask=true); the services check and audit it."""
    return request.query.get("unmask") in UNMASK_VALUES
