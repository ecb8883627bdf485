"""The HTTP edge (aiohttp): lead intake for widgets, lead status, and the admin API.

Domain errors become HTTP answers here and only here, as RFC 9457 problem details; nothing
below this module knows about status codes. Intake is authenticated by the widget's public key
(it is public: it only says which widget); everything else needs the admin bearer token.
"""

from __future__ import annotations

import hmac
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from callengine.model import (
    Consent,
    InvalidInput,
    Lead,
    Widget,
    agent_from_input,
    check_name,
    group_from_input,
    widget_settings_from_input,
)
from callengine.crypto import RecordingError
from callengine.numbers import NumberRejected, check_number, mask
from callengine.recordings import RecordingUnavailable, decrypt, recording_path, shred, wav_header
from callengine.store import Conflict, NotFound, RateLimited, Store

log = logging.getLogger(__name__)

PROBLEM_TYPE = "https://callengine.invalid/problems/"  # stable identifiers, not fetched
MAX_BODY = 16 * 1024
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[A-Za-z]{2,}$")


class Problem(Exception):
    """An RFC 9457 problem; raised anywhere in a handler, rendered by the middleware."""

    def __init__(self, status: int, slug: str, title: str, detail: str = "", **extra: Any):
        super().__init__(detail or title)
        self.status, self.slug, self.title, self.detail, self.extra = (
            status, slug, title, detail, extra
        )


@dataclass(frozen=True)
class WebDeps:
    store: Store
    admin_token: str
    on_lead: Callable[[], None]  # tells the engine a lead is waiting
    clock: Callable[[], float] = time.time
    recordings_dir: Path | None = None
    private_keys: tuple[bytes, ...] = ()  # empty: playback refused on this host


DEPS = web.AppKey("deps", WebDeps)


def problem_response(problem: Problem, instance: str) -> web.Response:
    body = {
        "type": PROBLEM_TYPE + problem.slug,
        "title": problem.title,
        "status": problem.status,
        "instance": instance,
        **({"detail": problem.detail} if problem.detail else {}),
        **problem.extra,
    }
    headers = {}
    if "retry_after" in problem.extra:
        headers["Retry-After"] = str(problem.extra["retry_after"])
    if problem.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="callengine"'
    return web.json_response(
        body, status=problem.status, content_type="application/problem+json", headers=headers
    )


@web.middleware
async def problems_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except Problem as problem:
        return problem_response(problem, request.path)
    except InvalidInput as exc:
        return problem_response(
            Problem(422, "invalid-field", "A field is not valid", exc.message, field=exc.field),
            request.path,
        )
    except NotFound as exc:
        return problem_response(Problem(404, "not-found", "Not found", str(exc)), request.path)
    except Conflict as exc:
        return problem_response(Problem(409, "conflict", "Conflict", str(exc)), request.path)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return problem_response(
            Problem(exc.status, f"http-{exc.status}", exc.reason or "HTTP error"), request.path
        )
    except Exception:
        # Log the trace for operators; the client gets no internals.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem_response(
            Problem(500, "internal", "Internal error", "the error was logged"), request.path
        )


# ---- helpers --------------------------------------------------------------------------------


async def json_body(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise Problem(413, "too-large", "Request body too large", f"at most {MAX_BODY} bytes")
    if request.content_type != "application/json":
        raise Problem(415, "unsupported-media-type", "Send JSON",
                      "Content-Type must be application/json")
    try:
        data = await request.json()
    except ValueError:
        raise Problem(400, "malformed-json", "Malformed JSON", "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise Problem(400, "malformed-json", "Malformed JSON", "the body must be a JSON object")
    return data


def require_admin(request: web.Request) -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    expected = request.app[DEPS].admin_token
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Problem(401, "unauthorized", "Authentication required",
                      "send the admin token as 'Authorization: Bearer <token>'")


def _optional_text(data: dict[str, Any], name: str, limit: int) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > limit or any(ord(c) < 32 for c in value):
        raise InvalidInput(name, f"must be text of at most {limit} characters on one line")
    return value.strip()


def lead_admin_view(lead: Lead) -> dict[str, Any]:
    return {
        "id": lead.id,
        "widget": lead.widget_id,
        "phone": lead.phone_masked,
        "region": lead.phone_region,
        "status": lead.status,
        "progress": lead.progress,
        "outcome": lead.outcome,
        "cause": lead.cause,
        "attempts": lead.attempts,
        "consent": {
            "marketing": lead.consent.marketing,
            "recording": lead.consent.recording,
            "clause_version": lead.consent.clause_version,
        },
        "created_at": lead.created_at,
        "closed_at": lead.closed_at,
    }


def widget_view(widget: Widget) -> dict[str, Any]:
    return {
        "id": widget.id, "name": widget.name, "public_key": widget.public_key,
        "settings": widget.settings.to_json(),
    }


# ---- intake (widget) --------------------------------------------------------------------------


async def _widget_for(request: web.Request) -> Widget:
    try:
        return await request.app[DEPS].store.get_widget_by_key(request.match_info["key"])
    except NotFound:
        raise Problem(404, "unknown-widget", "Unknown widget",
                      "no widget has this public key") from None


def _cors(request: web.Request, widget: Widget, response: web.StreamResponse) -> None:
    origin = request.headers.get("Origin")
    if origin and origin in widget.settings.allowed_origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"


async def intake_preflight(request: web.Request) -> web.Response:
    widget = await _widget_for(request)
    response = web.Response(status=204)
    _cors(request, widget, response)
    response.headers["Access-Control-Allow-Methods"] = "POST, GET"
    response.headers["Access-Control-Allow-Headers"] = "Content-Type"
    return response


async def create_lead(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    widget = await _widget_for(request)
    data = await json_body(request)
    unknown = sorted(set(data) - {"phone", "name", "email", "consent", "clause_version"})
    if unknown:
        raise InvalidInput(unknown[0], "unknown field")
    raw_phone = data.get("phone")
    if not isinstance(raw_phone, str) or not raw_phone.strip():
        raise InvalidInput("phone", "required: the number to call back")
    consent = data.get("consent")
    if not isinstance(consent, dict) or set(consent) - {"marketing", "recording"} or not all(
        isinstance(consent.get(k), bool) for k in ("marketing", "recording")
    ):
        raise InvalidInput("consent", "required: {\"marketing\": bool, \"recording\": bool}")
    clause = data.get("clause_version")
    if not isinstance(clause, str) or not re.match(r"^[A-Za-z0-9._-]{1,64}$", clause):
        raise InvalidInput(
            "clause_version", "required: the id of the information clause the visitor saw"
        )
    name = _optional_text(data, "name", 100)
    email = _optional_text(data, "email", 254)
    if email is not None and not _EMAIL.match(email):
        raise InvalidInput("email", "is not an e-mail address")
    try:
        number = check_number(raw_phone, widget.settings.number_policy())
    except NumberRejected as exc:
        raise Problem(422, f"number-{exc.code}", "This number can't be called back", str(exc),
                      field="phone", code=exc.code) from None
    try:
        lead = await deps.store.create_lead(
            widget,
            phone_e164=number.e164,
            phone_region=number.region,
            phone_kind=number.kind,
            name=name,
            email=email,
            consent=Consent(consent["marketing"], consent["recording"], clause),
            now=deps.clock(),
        )
    except RateLimited as exc:
        raise Problem(429, "rate-limited", "Too many requests", str(exc),
                      retry_after=exc.retry_after_s) from None
    log.info("[lead %s] queued for widget %s (number %s)", lead.id, widget.id, mask(number.e164))
    deps.on_lead()
    response = web.json_response(
        {**lead.public_view(), "status_url": f"/api/v1/widgets/{widget.public_key}/leads/{lead.id}"},
        status=201,
    )
    _cors(request, widget, response)
    return response


async def lead_public_status(request: web.Request) -> web.Response:
    widget = await _widget_for(request)
    lead = await request.app[DEPS].store.get_lead(request.match_info["lead_id"])
    if lead.widget_id != widget.id:
        raise NotFound("lead", request.match_info["lead_id"])
    response = web.json_response(lead.public_view())
    _cors(request, widget, response)
    return response


# ---- admin ---------------------------------------------------------------------------------------


async def get_lead(request: web.Request) -> web.Response:
    require_admin(request)
    store = request.app[DEPS].store
    lead = await store.get_lead(request.match_info["lead_id"])
    attempts = await store.attempts_for(lead.id)
    view = lead_admin_view(lead)
    view["attempts_detail"] = [
        {
            "number": a.number, "status": a.status, "outcome": a.outcome, "q850": a.q850,
            "cause": a.cause, "agent": a.agent, "agent_ring_s": a.agent_ring_s,
            "visitor_ring_s": a.visitor_ring_s, "talk_s": a.talk_s,
            "started_at": a.started_at, "ended_at": a.ended_at,
        }
        for a in attempts
    ]
    return web.json_response(view)


async def list_leads(request: web.Request) -> web.Response:
    require_admin(request)
    status = request.query.get("status")
    if status is not None and status not in ("queued", "calling", "done"):
        raise InvalidInput("status", "must be queued, calling or done")
    try:
        limit = int(request.query.get("limit", "100"))
    except ValueError:
        raise InvalidInput("limit", "must be a whole number") from None
    if not 1 <= limit <= 1000:
        raise InvalidInput("limit", "must be from 1 to 1000")
    leads = await request.app[DEPS].store.list_leads(
        widget_id=request.query.get("widget"), status=status, limit=limit
    )
    return web.json_response({"leads": [lead_admin_view(lead) for lead in leads]})


async def create_agent(request: web.Request) -> web.Response:
    require_admin(request)
    data = await json_body(request)
    agent = agent_from_input(data.get("name"), data.get("endpoint"))
    await request.app[DEPS].store.add_agent(agent)
    return web.json_response({"name": agent.name, "endpoint": agent.endpoint}, status=201)


async def create_group(request: web.Request) -> web.Response:
    require_admin(request)
    data = await json_body(request)
    name, strategy, ring_timeout = group_from_input(
        data.get("name"), data.get("strategy", "ring-all"), data.get("ring_timeout", 20)
    )
    agents = data.get("agents")
    if not isinstance(agents, list) or not agents or not all(isinstance(a, str) for a in agents):
        raise InvalidInput("agents", "required: a non-empty list of agent names")
    group = await request.app[DEPS].store.add_group(name, strategy, ring_timeout, agents)
    return web.json_response(
        {"name": group.name, "strategy": group.strategy.value,
         "ring_timeout": group.ring_timeout, "agents": [a.name for a in group.agents]},
        status=201,
    )


async def create_widget(request: web.Request) -> web.Response:
    require_admin(request)
    deps = request.app[DEPS]
    data = await json_body(request)
    widget_id = check_name("id", data.get("id"))
    name = _optional_text(data, "name", 100) or widget_id
    settings = widget_settings_from_input(data.get("settings", {}))
    widget = await deps.store.add_widget(widget_id, name, settings, deps.clock())
    return web.json_response(widget_view(widget), status=201)


async def list_widgets(request: web.Request) -> web.Response:
    require_admin(request)
    widgets = await request.app[DEPS].store.list_widgets()
    return web.json_response({"widgets": [widget_view(w) for w in widgets]})


async def list_recordings(request: web.Request) -> web.Response:
    require_admin(request)
    recordings = await request.app[DEPS].store.list_recordings(lead_id=request.query.get("lead"))
    return web.json_response({"recordings": [r.view() for r in recordings]})


async def recording_audio(request: web.Request) -> web.StreamResponse:
    """Decrypt on the fly into the response: plaintext exists only in memory, never on disk."""
    require_admin(request)
    deps = request.app[DEPS]
    recording = await deps.store.get_recording(request.match_info["recording_id"])
    if recording.status == "deleted" or deps.recordings_dir is None:
        raise NotFound("recording", recording.id)
    try:
        plain = decrypt(recording_path(deps.recordings_dir, recording), list(deps.private_keys))
    except RecordingUnavailable as exc:
        raise Problem(409, "playback-unavailable", "Playback is not possible here",
                      str(exc)) from None
    except RecordingError as exc:
        raise Problem(422, "recording-damaged", "The recording fails verification",
                      f"{type(exc).__name__}: {exc}") from None
    log.info("[lead %s] recording %s played back", recording.lead_id, recording.id)
    response = web.StreamResponse(headers={
        "Content-Type": "audio/wav",
        "Content-Length": str(44 + plain.size),
        "Cache-Control": "no-store",
        "X-Recording-Complete": "true" if plain.complete else "false",
    })
    await response.prepare(request)
    await response.write(wav_header(plain.size))
    for chunk in plain.chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


async def delete_recording(request: web.Request) -> web.Response:
    require_admin(request)
    deps = request.app[DEPS]
    recording = await deps.store.get_recording(request.match_info["recording_id"])
    if deps.recordings_dir is not None:
        shred(recording_path(deps.recordings_dir, recording))
    await deps.store.mark_recording_deleted(recording.id, deps.clock())
    log.info("[lead %s] recording %s crypto-shredded", recording.lead_id, recording.id)
    return web.Response(status=204)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def make_app(deps: WebDeps) -> web.Application:
    app = web.Application(middlewares=[problems_middleware], client_max_size=MAX_BODY)
    app[DEPS] = deps
    app.router.add_get("/healthz", health)
    app.router.add_post("/api/v1/widgets/{key}/leads", create_lead)
    app.router.add_route("OPTIONS", "/api/v1/widgets/{key}/leads", intake_preflight)
    app.router.add_get("/api/v1/widgets/{key}/leads/{lead_id}", lead_public_status)
    app.router.add_get("/api/v1/leads", list_leads)
    app.router.add_get("/api/v1/leads/{lead_id}", get_lead)
    app.router.add_post("/api/v1/agents", create_agent)
    app.router.add_post("/api/v1/groups", create_group)
    app.router.add_get("/api/v1/widgets", list_widgets)
    app.router.add_post("/api/v1/widgets", create_widget)
    app.router.add_get("/api/v1/recordings", list_recordings)
    app.router.add_get("/api/v1/recordings/{recording_id}/audio", recording_audio)
    app.router.add_delete("/api/v1/recordings/{recording_id}", delete_recording)
    return app
