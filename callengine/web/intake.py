"""The widget's routes: a visitor's callback request, its CORS preflight, and its status.
Authenticated by the widget's public key, which only says which widget (it is public)."""

from __future__ import annotations

from aiohttp import web

from callengine.services.views import lead_public_view
from callengine.web.deps import services
from callengine.web.problems import json_body
from callengine.web.security import widget_of

# The widget is found, its Origin rule applied and the CORS headers added for every answer
# (errors too) by callengine.web.security.


async def intake_preflight(request: web.Request) -> web.Response:
    response = web.Response(status=204)
    response.headers["Access-Control-Allow-Methods"] = "POST, GET"
    response.headers["Access-Control-Allow-Headers"] = "Content-Type"
    return response


async def create_lead(request: web.Request) -> web.Response:
    leads = services(request).leads
    widget = widget_of(request)
    lead = await leads.create(widget, await json_body(request))
    status_url = f"/api/v1/widgets/{widget.public_key}/leads/{lead.id}"
    response = web.json_response(
        {**lead_public_view(lead), "status_url": status_url,
         "events_url": f"{status_url}/events"},
        status=201,
    )
    return response


async def lead_public_status(request: web.Request) -> web.Response:
    leads = services(request).leads
    lead = await leads.public_status(widget_of(request), request.match_info["lead_id"])
    return web.json_response(lead_public_view(lead))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/widgets/{key}/leads", create_lead)
    app.router.add_route("OPTIONS", "/api/v1/widgets/{key}/leads", intake_preflight)
    app.router.add_get("/api/v1/widgets/{key}/leads/{lead_id}", lead_public_status)
