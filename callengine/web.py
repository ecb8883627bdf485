"""The HTTP edge (aiohttp): lead intake for widgets, lead status, and the admin API.

Domain errors become HTTP answers here and only here, as RFC 9457 problem details; nothing
below this module knows about status codes. Intake is authenticated by the widget's public key
(it is public: it only says which widget); everything else needs the admin bearer token.
"""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from callengine.errors import InvalidInput
from callengine.model import (
    Consent,
    Lead,
    Widget,
    agent_from_input,
    check_name,
    group_from_input,
    widget_settings_from_input,
)
from callengine.access import Permission, Principal, Role, token_hash, verify_chain
from callengine.crypto import RecordingError
from callengine.numbers import NumberRejected, any_number, check_number, mask
from callengine.recordings import RecordingUnavailable, RecordingVault
from callengine.errors import Conflict, NotFound, RateLimited
from callengine.storage import Store
from callengine.reports import call_report, parse_day, to_csv
from callengine.subjects import erase_subject, export_subject

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
    vault: RecordingVault | None = None  # recordings; without private keys, no playback


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


async def authorize(request: web.Request, permission: Permission) -> Principal:
    """Who is calling (bearer token: the configured admin token, or a token with a role) and
    may they do this? 401 without a valid token, 403 when the role lacks the permission."""
    deps = request.app[DEPS]
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    principal = None
    if scheme.lower() == "bearer" and token:
        if hmac.compare_digest(token.encode(), deps.admin_token.encode()):
            principal = Principal("admin-token", Role.ADMIN)
        else:
            principal = await deps.store.principal_for(token_hash(token))
    if principal is None:
        raise Problem(401, "unauthorized", "Authentication required",
                      "send an API token as 'Authorization: Bearer <token>'")
    if not principal.may(permission):
        raise Problem(403, "forbidden", "Not allowed",
                      f"role {principal.role.value} may not {permission.value}")
    return principal


async def wants_unmasked(request: web.Request, principal: Principal, target: str) -> bool:
    """Numbers are masked unless asked for (?unmask=true) by a role that may: audited."""
    if request.query.get("unmask") not in ("1", "true", "yes"):
        return False
    if not principal.may(Permission.UNMASK):
        raise Problem(403, "forbidden", "Not allowed",
                      f"role {principal.role.value} may not {Permission.UNMASK.value}")
    deps = request.app[DEPS]
    await deps.store.audit(principal, "numbers.unmask", target, "api", deps.clock())
    return True


def _optional_text(data: dict[str, Any], name: str, limit: int) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > limit or any(ord(c) < 32 for c in value):
        raise InvalidInput(name, f"must be text of at most {limit} characters on one line")
    return value.strip()


def lead_admin_view(lead: Lead, unmasked: bool = False) -> dict[str, Any]:
    return {
        "id": lead.id,
        "widget": lead.widget_id,
        "phone": lead.phone_e164 if unmasked else lead.phone_masked,
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
    principal = await authorize(request, Permission.READ_LEADS)
    store = request.app[DEPS].store
    lead = await store.get_lead(request.match_info["lead_id"])
    attempts = await store.attempts_for(lead.id)
    view = lead_admin_view(lead, await wants_unmasked(request, principal, f"lead:{lead.id}"))
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
    principal = await authorize(request, Permission.READ_LEADS)
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
    unmasked = bool(leads) and await wants_unmasked(
        request, principal, "leads:" + ",".join(lead.id for lead in leads))
    return web.json_response({"leads": [lead_admin_view(lead, unmasked) for lead in leads]})


async def create_agent(request: web.Request) -> web.Response:
    await authorize(request, Permission.CONFIGURE)
    data = await json_body(request)
    agent = agent_from_input(data.get("name"), data.get("endpoint"))
    await request.app[DEPS].store.add_agent(agent)
    return web.json_response({"name": agent.name, "endpoint": agent.endpoint}, status=201)


async def create_group(request: web.Request) -> web.Response:
    await authorize(request, Permission.CONFIGURE)
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
    await authorize(request, Permission.CONFIGURE)
    deps = request.app[DEPS]
    data = await json_body(request)
    widget_id = check_name("id", data.get("id"))
    name = _optional_text(data, "name", 100) or widget_id
    settings = widget_settings_from_input(data.get("settings", {}))
    widget = await deps.store.add_widget(widget_id, name, settings, deps.clock())
    return web.json_response(widget_view(widget), status=201)


async def list_widgets(request: web.Request) -> web.Response:
    await authorize(request, Permission.CONFIGURE)
    widgets = await request.app[DEPS].store.list_widgets()
    return web.json_response({"widgets": [widget_view(w) for w in widgets]})


async def list_recordings(request: web.Request) -> web.Response:
    await authorize(request, Permission.READ_LEADS)
    recordings = await request.app[DEPS].store.list_recordings(lead_id=request.query.get("lead"))
    return web.json_response({"recordings": [r.view() for r in recordings]})


async def recording_audio(request: web.Request) -> web.StreamResponse:
    """Decrypt on the fly into the response: plaintext exists only in memory, never on disk."""
    principal = await authorize(request, Permission.PLAY_RECORDINGS)
    deps = request.app[DEPS]
    recording = await deps.store.get_recording(request.match_info["recording_id"])
    if recording.status == "deleted" or deps.vault is None:
        raise NotFound("recording", recording.id)
    try:
        plain = await deps.vault.open(recording)
    except RecordingUnavailable as exc:
        raise Problem(409, "playback-unavailable", "Playback is not possible here",
                      str(exc)) from None
    except RecordingError as exc:
        raise Problem(422, "recording-damaged", "The recording fails verification",
                      f"{type(exc).__name__}: {exc}") from None
    await deps.store.audit(principal, "recordings.play", f"recording:{recording.id}",
                           f"lead:{recording.lead_id}", deps.clock())
    log.info("[lead %s] recording %s played back", recording.lead_id, recording.id)
    response = web.StreamResponse(headers={
        "Content-Type": "audio/wav",
        "Content-Length": str(44 + plain.size),
        "Cache-Control": "no-store",
        "X-Recording-Complete": "true" if plain.complete else "false",
    })
    await response.prepare(request)
    await response.write(plain.wav_header())
    for chunk in plain.chunks:
        await response.write(chunk)
    await response.write_eof()
    return response


async def delete_recording(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.DELETE_RECORDINGS)
    deps = request.app[DEPS]
    recording = await deps.store.get_recording(request.match_info["recording_id"])
    if deps.vault is not None:
        await deps.vault.shred([recording.id])
    await deps.store.mark_recording_deleted(recording.id, deps.clock())
    await deps.store.audit(principal, "recordings.delete", f"recording:{recording.id}",
                           f"lead:{recording.lead_id}", deps.clock())
    log.info("[lead %s] recording %s crypto-shredded", recording.lead_id, recording.id)
    return web.Response(status=204)


async def create_token(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.CONFIGURE)
    deps = request.app[DEPS]
    data = await json_body(request)
    name = check_name("name", data.get("name"))
    try:
        role = Role(data.get("role"))
    except ValueError:
        raise InvalidInput("role", "must be admin, supervisor, agent or viewer") from None
    token = "ce_" + secrets.token_urlsafe(32)
    await deps.store.add_token(name, role, token_hash(token), deps.clock())
    await deps.store.audit(principal, "tokens.create", f"token:{name}", role.value, deps.clock())
    return web.json_response({"name": name, "role": role.value, "token": token}, status=201)


async def audit_log(request: web.Request) -> web.Response:
    await authorize(request, Permission.CONFIGURE)
    entries = await request.app[DEPS].store.audit_entries()
    return web.json_response({
        "intact": verify_chain(entries) is None,
        "problem": verify_chain(entries),
        "entries": [entry.__dict__ for entry in entries],
    })


async def _subject_number(request: web.Request) -> str:
    data = await json_body(request)
    raw = data.get("phone")
    if not isinstance(raw, str):
        raise InvalidInput("phone", "required: the data subject's number")
    try:
        return any_number(raw).e164
    except NumberRejected as exc:
        raise Problem(422, f"number-{exc.code}", "Not a valid number", str(exc),
                      field="phone") from None


async def subject_export(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.EXPORT_SUBJECT)
    deps = request.app[DEPS]
    e164 = await _subject_number(request)
    data = await export_subject(deps.store, e164, principal, deps.clock(), vault=deps.vault)
    return web.json_response(data, headers={"Cache-Control": "no-store"})


async def subject_erase(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.ERASE_SUBJECT)
    deps = request.app[DEPS]
    e164 = await _subject_number(request)
    erasure = await erase_subject(deps.store, e164, principal, deps.clock(), vault=deps.vault)
    return web.json_response({"leads": erasure.leads, "recordings": erasure.recordings})


async def report(request: web.Request) -> web.Response:
    principal = await authorize(request, Permission.READ_REPORTS)
    deps = request.app[DEPS]
    widget_id = request.query.get("widget", "")
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "csv"):
        raise InvalidInput("format", "must be json or csv")
    try:
        start = parse_day(request.query.get("from", ""))
        end = parse_day(request.query.get("to", ""))
    except ValueError as exc:
        raise InvalidInput("from/to", str(exc)) from None
    unmasked = await wants_unmasked(request, principal, f"report:{widget_id}")
    rows = await call_report(deps.store, widget_id, start, end, unmasked=unmasked)
    if fmt == "csv":
        return web.Response(text=to_csv(rows), content_type="text/csv")
    return web.json_response({"widget": widget_id, "rows": rows})


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
    app.router.add_post("/api/v1/tokens", create_token)
    app.router.add_get("/api/v1/audit", audit_log)
    app.router.add_post("/api/v1/subjects/export", subject_export)
    app.router.add_post("/api/v1/subjects/erase", subject_erase)
    app.router.add_get("/api/v1/reports/calls", report)
    return app
