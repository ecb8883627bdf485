"""The records the engine keeps (widgets, agents, groups, leads, attempts) and their validation.

Plain data, no I/O: the store reads and writes them, the services build them from user input
through the `*_from_input` functions (InvalidInput names the field); their views: services.views.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from callengine.appearance import appearance
from callengine.checks import is_one_line, whole_in as _int_in
from callengine.errors import InvalidInput
from callengine.flow import ACCEPT_DIGITS, Acceptance, Outcome, Strategy
from callengine.hours import Calendar, calendar, check_holidays, check_hours, check_time_zone
from callengine.numbers import (
    DIAL_FORMATS, SUPPORTED_REGIONS, NumberPolicy, VisitorNumber, check_number, mask,
)
from callengine.retries import check_retry_schedule

LEAD_QUEUED = "queued"
LEAD_CALLING = "calling"
LEAD_DONE = "done"
LEAD_STATUSES = (LEAD_QUEUED, LEAD_CALLING, LEAD_DONE)

RECORDING_RECORDING = "recording"  # being written
RECORDING_COMPLETE = "complete"
RECORDING_INCOMPLETE = "incomplete"  # ended early; its sealed part opens
RECORDING_FAILED = "failed"
RECORDING_DELETED = "deleted"  # crypto-shredded: the row is a tombstone

# Each pattern is used with fullmatch: `$` alone would also accept a trailing newline.
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_ENDPOINT = re.compile(r"(PJSIP|SIP|IAX2|Local)/[A-Za-z0-9_.@+-]{1,80}")
_MEDIA = re.compile(r"(sound|recording|tone):[A-Za-z0-9_/.,=|-]{1,120}")
_QUEUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_CLAUSE = re.compile(r"[A-Za-z0-9._-]{1,64}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}\.[A-Za-z]{2,}")
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:\d+)?")
RETRYABLE_OUTCOMES = frozenset(o.value for o in Outcome if o is not Outcome.CONNECTED)
LEAD_FIELDS = frozenset({"phone", "name", "email", "consent", "clause_version", "language"})
ALLOWED_KINDS = {
    "mobile", "fixed_line", "fixed_line_or_mobile", "voip", "toll_free", "personal_number",
    "uan", "pager", "voicemail",
}  # premium_rate, shared_cost and unknown are never allowed: toll fraud.


@dataclass(frozen=True)
class Agent:
    name: str
    endpoint: str
    enabled: bool = True
    paused: bool = False  # by the agent (or for them): not rung until resumed


@dataclass(frozen=True)
class Group:
    name: str
    strategy: Strategy
    ring_timeout: int
    agents: tuple[Agent, ...] = ()
    accept_digit: str | None = None  # pressed after the whisper to take the call (None: off)
    accept_timeout: int = 10  # seconds from the prompt's end to press it in


@functools.lru_cache(maxsize=1024)  # every lead asks for its widget's (checking its fields)
def _number_policy(regions: tuple[str, ...], kinds: tuple[str, ...],
                   default_region: str | None) -> NumberPolicy:
    return NumberPolicy(allowed_regions=frozenset(regions), allowed_kinds=frozenset(kinds),
                        default_region=default_region)


@dataclass(frozen=True)
class WidgetSettings:
    """How a widget's leads are called back. Stored as JSON; see docs/config.md."""

    group: str
    visitor_endpoint: str = "PJSIP/{number}@pstn"  # {number} is the visitor's number
    number_format: str = "e164"
    caller_id: str = ""
    allowed_regions: tuple[str, ...] = ()
    allowed_kinds: tuple[str, ...] = ("mobile", "fixed_line", "fixed_line_or_mobile")
    default_region: str | None = None
    visitor_ring_timeout: int = 30
    whisper: str | None = "sound:beep"
    max_attempts: int = 1
    retry_delay_s: int = 120
    retry_on: tuple[str, ...] = (
        Outcome.AGENTS_NO_ANSWER.value, Outcome.AGENTS_BUSY.value, Outcome.FAILED.value)
    # Overrides the two above for the outcomes it names (callengine.retries has its shape).
    retry_schedule: dict[str, Any] = field(default_factory=dict)
    # Rate limits (docs/config.md "Limits"); the defaults are Oracle Click2Call's abuse figures.
    # Per number, across every widget (the strictest maximum among the widgets that apply):
    max_leads_per_number_per_15min: int = 7
    max_leads_per_number_per_hour: int = 9
    max_leads_per_number_per_day: int = 15
    # Per client (a keyed hash of its address, IPv6 by /64), distinct numbers, across widgets:
    max_numbers_per_client_per_hour: int = 3
    max_numbers_per_client_per_day: int = 4
    max_leads_per_hour: int = 200  # per widget, for everyone
    duplicate_window_s: int = 60  # the same number again to this widget: the same lead back
    allowed_origins: tuple[str, ...] = ()
    recording: str = "off"  # "off" or "on"
    recording_requires_consent: bool = True  # record only leads whose visitor agreed
    recording_notice: str | None = None  # media the visitor hears before a recorded call
    lead_retention_days: int = 365  # closed leads (with attempts, consents) are purged after
    recording_retention_days: int = 90  # recordings are crypto-shredded after
    # Calling hours (callengine.hours): None = always open.
    time_zone: str = "UTC"
    hours: dict[str, list[list[str]]] | None = None
    holidays: tuple[str, ...] = ()
    slot_minutes: int = 30
    slot_capacity: int = 0  # leads per slot; 0 = visitors are not offered slots
    slot_days: int = 7  # slots are offered from today to this many days ahead
    # The widget on the page (callengine.web.widget, services.widgets.public_config).
    challenge: str = "on"  # "on": a lead needs a solved ALTCHA challenge (not the CRM's)
    ask_name: bool = False
    ask_email: bool = False
    countdown_s: int = 30  # the countdown the visitor sees before the call
    texts: dict[str, dict[str, str]] = field(default_factory=dict)  # {lang: {key: text}}
    colour: str = "#1f5fbf"  # brand colour; white text on it has a contrast of 6:1
    position: str = "bottom-right"
    open_after_s: int | None = None  # open by itself after this many seconds on the page
    exit_intent: bool = False  # open when the pointer leaves toward the browser's bar
    # A queue-callback widget (docs/queue-callback.md): the Asterisk queue whose waiting callers
    # press 1 to be called back; its leads wait in that queue (up to queue_wait_s) for a member.
    queue: str | None = None
    queue_wait_s: int = 3600

    def calendar(self) -> Calendar:
        return calendar(self.time_zone, self.hours, self.holidays)

    def should_record(self, consented: bool) -> bool:
        return self.recording == "on" and (consented or not self.recording_requires_consent)

    def number_policy(self) -> NumberPolicy:
        return _number_policy(tuple(sorted(self.allowed_regions)),
                              tuple(sorted(self.allowed_kinds)), self.default_region)

    def to_json(self) -> dict[str, Any]:
        return {name: _jsonable(getattr(self, name)) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class Widget:
    id: str
    name: str
    public_key: str
    settings: WidgetSettings
    disabled_at: float | None = None  # when disabled: no new leads (accepted ones are called)

    @property
    def enabled(self) -> bool:
        return self.disabled_at is None


@dataclass(frozen=True)
class Consent:
    marketing: bool
    recording: bool
    clause_version: str
    # The evidence of it (docs/consent.md), set by services.leads.create: the SHA-256 and
    # language of the registered clause shown (None: an unregistered clause), the recording
    # notice's version shown (the widget records), when it was given (the intake time) and
    # the page's Origin (an allowed browser origin; None for a CRM or another non-browser).
    clause_sha256: str | None = None
    clause_language: str | None = None
    notice_version: str | None = None
    at: float | None = None
    origin: str | None = None


# What a personal field of an erased data subject reads as (its key is gone: a lead seen in a
# store restored from a backup older than the erasure).
ERASED = "erased"
# A lead's outcomes as stored: its last attempt's (flow.Outcome), or ERASED (closed uncalled).
LEAD_OUTCOMES = (*(o.value for o in Outcome), ERASED)


@dataclass(frozen=True)
class Lead:
    id: str
    widget_id: str
    phone_e164: str = field(repr=False)
    phone_region: str
    phone_kind: str
    name: str | None = field(repr=False)
    email: str | None = field(repr=False)
    consent: Consent
    status: str
    progress: str | None
    outcome: str | None
    cause: str | None
    attempts: int
    next_attempt_at: float | None
    created_at: float
    closed_at: float | None
    scheduled_for: float | None = None  # when the visitor asked (a slot) or the next opening
    # Answered to a request that repeated this lead within the widget's duplicate window.
    duplicate: bool = field(default=False, compare=False)

    @property
    def phone_masked(self) -> str:
        return ERASED if self.phone_e164 == ERASED else mask(self.phone_e164)

    @property
    def erased(self) -> bool:
        return self.phone_e164 == ERASED


@dataclass(frozen=True)
class Attempt:
    id: str
    lead_id: str
    number: int
    status: str
    started_at: float
    ended_at: float | None = None
    outcome: str | None = None
    q850: int | None = None
    cause: str | None = None
    agent: str | None = None
    agent_ring_s: float | None = None
    visitor_ring_s: float | None = None
    talk_s: float | None = None
    connected: bool = False
    notice_played: bool = False  # the in-call recording notice was played to the visitor
    acceptances: tuple[Acceptance, ...] = ()  # the agents asked to accept, and their answers
    engine: str | None = None  # the engine that started it ([dialing] engine_id)


@dataclass(frozen=True)
class Recording:
    id: str
    lead_id: str
    attempt_id: str
    route: str
    key_id: str
    status: str  # RECORDING_*
    started_at: float
    widget_id: str
    phone_e164: str = field(repr=False)
    sample_rate: int  # Hz of the PCM inside (the file does not say; rows from before: 16000)
    ended_at: float | None = None
    duration_s: float | None = None
    bytes: int | None = None
    segments: int | None = None
    sha256: str | None = None
    problem: str | None = None
    deleted_at: float | None = None

    @property
    def file_name(self) -> str:
        return f"{self.id}.cerec"


@dataclass(frozen=True)
class LeadInput:
    """A callback request as a widget sent it, validated: the number passed the widget's policy."""

    number: VisitorNumber
    name: str | None = field(repr=False)
    email: str | None = field(repr=False)
    consent: Consent


# ---- validation of user input -------------------------------------------------------------------


def optional_text(field_name: str, value: Any, limit: int) -> str | None:
    """A free-text field: absent or empty is None, else one line of at most `limit` characters."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > limit or not is_one_line(value):
        raise InvalidInput(field_name, f"must be text of at most {limit} characters on one line")
    return value.strip()


def lead_from_input(data: dict[str, Any], policy: NumberPolicy) -> LeadInput:
    """A widget's lead from its JSON fields; the number is checked last, against `policy`
    (raises `NumberRejected` with its code)."""
    unknown = sorted(set(data) - LEAD_FIELDS)
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
    if not isinstance(clause, str) or not _CLAUSE.fullmatch(clause):
        raise InvalidInput("clause_version", "required: the id of the information clause seen")
    name = optional_text("name", data.get("name"), 100)
    email = optional_text("email", data.get("email"), 254)
    if email is not None and not _EMAIL.fullmatch(email):
        raise InvalidInput("email", "is not an e-mail address")
    number = check_number(raw_phone, policy)
    return LeadInput(number, name, email, Consent(consent["marketing"], consent["recording"], clause))


def check_name(field_name: str, value: Any) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InvalidInput(field_name, "use 1–63 lowercase letters, digits, '-' or '_'")
    return value


def agent_from_input(name: Any, endpoint: Any) -> Agent:
    return Agent(name=check_name("name", name), endpoint=check_endpoint(endpoint))


def check_endpoint(endpoint: Any) -> str:
    if not isinstance(endpoint, str) or not _ENDPOINT.fullmatch(endpoint):
        raise InvalidInput("endpoint", "expected a dial string like PJSIP/agent1")
    return endpoint


def group_from_input(name: Any, strategy: Any, ring_timeout: Any) -> tuple[str, Strategy, int]:
    check_name("name", name)
    try:
        parsed = Strategy(strategy)
    except ValueError:
        choices = ", ".join(s.value for s in Strategy)
        raise InvalidInput("strategy", f"must be one of {choices}") from None
    return name, parsed, _int_in("ring_timeout", ring_timeout, 5, 300)


def accept_from_input(digit: Any, timeout: Any) -> tuple[str | None, int]:
    """A group's accept step: the digit (None: off) and the seconds to press it in."""
    if digit is not None and not (isinstance(digit, str) and len(digit) == 1
                                  and digit in ACCEPT_DIGITS):
        raise InvalidInput("accept_digit", "must be one key, 0-9, * or #, or null (off)")
    return digit, _int_in("accept_timeout", timeout, 2, 60)


def widget_settings_from_input(data: Any) -> WidgetSettings:
    if not isinstance(data, dict):
        raise InvalidInput("settings", "must be an object")
    known = set(WidgetSettings.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise InvalidInput(unknown[0], "unknown setting")
    defaults = WidgetSettings(group="x")
    values = {name: data.get(name, getattr(defaults, name)) for name in known}
    check_name("group", values["group"])
    endpoint = values["visitor_endpoint"]
    if not isinstance(endpoint, str) or "{number}" not in endpoint or not _ENDPOINT.fullmatch(
        endpoint.replace("{number}", "0")
    ):
        raise InvalidInput("visitor_endpoint", "expected a dial string with {number}")
    if not isinstance(values["number_format"], str) or values["number_format"] not in DIAL_FORMATS:
        raise InvalidInput("number_format", f"must be one of {', '.join(sorted(DIAL_FORMATS))}")
    caller_id = values["caller_id"]
    if not isinstance(caller_id, str) or len(caller_id) > 80 or not is_one_line(caller_id):
        raise InvalidInput("caller_id", "must be a single line of at most 80 characters")
    regions = _str_tuple("allowed_regions", values["allowed_regions"])
    for region in regions:
        if region not in SUPPORTED_REGIONS:  # what NumberPolicy accepts, so no lead fails on it
            hint = " (the United Kingdom is GB)" if region == "UK" else ""
            raise InvalidInput("allowed_regions",
                               f"{region!r} is not a country code numbers can be checked for{hint}")
    kinds = _str_tuple("allowed_kinds", values["allowed_kinds"])
    for kind in kinds:
        if kind not in ALLOWED_KINDS:
            raise InvalidInput("allowed_kinds", f"{kind!r} may not be dialled")
    default_region = values["default_region"]
    if default_region is not None and (
        not isinstance(default_region, str) or default_region not in SUPPORTED_REGIONS
    ):
        raise InvalidInput("default_region", "must be an ISO country code like PL")
    whisper = values["whisper"]
    if whisper is not None and (not isinstance(whisper, str) or not _MEDIA.fullmatch(whisper)):
        raise InvalidInput("whisper", "expected an Asterisk media URI like sound:beep")
    retry_on = _str_tuple("retry_on", values["retry_on"])
    for outcome in retry_on:
        if outcome not in RETRYABLE_OUTCOMES:
            raise InvalidInput("retry_on", f"{outcome!r} is not a retryable outcome")
    if not isinstance(values["recording"], str) or values["recording"] not in ("off", "on"):
        raise InvalidInput("recording", "must be \"off\" or \"on\"")
    if not isinstance(values["recording_requires_consent"], bool):
        raise InvalidInput("recording_requires_consent", "must be true or false")
    notice = values["recording_notice"]
    if notice is not None and (not isinstance(notice, str) or not _MEDIA.fullmatch(notice)):
        raise InvalidInput("recording_notice", "expected an Asterisk media URI")
    if values["recording"] == "on" and notice is None:
        raise InvalidInput("recording_notice", "required when recording is on: visitors must hear it")
    origins = _str_tuple("allowed_origins", values["allowed_origins"])
    for origin in origins:
        if not _ORIGIN.fullmatch(origin):
            raise InvalidInput("allowed_origins", f"{origin!r} is not an origin like https://a.b")
    queue = values["queue"]
    if queue is not None and (not isinstance(queue, str) or not _QUEUE.fullmatch(queue)):
        raise InvalidInput("queue", "expected an Asterisk queue name (letters, digits, _ and -)")
    return WidgetSettings(
        group=values["group"],
        queue=queue,
        queue_wait_s=_int_in("queue_wait_s", values["queue_wait_s"], 60, 86400),
        visitor_endpoint=endpoint,
        number_format=values["number_format"],
        caller_id=caller_id,
        allowed_regions=regions,
        allowed_kinds=kinds,
        default_region=default_region,
        visitor_ring_timeout=_int_in("visitor_ring_timeout", values["visitor_ring_timeout"], 5, 120),
        whisper=whisper,
        max_attempts=_int_in("max_attempts", values["max_attempts"], 1, 10),
        retry_delay_s=_int_in("retry_delay_s", values["retry_delay_s"], 0, 86400),
        retry_on=retry_on,
        retry_schedule=check_retry_schedule(values["retry_schedule"], RETRYABLE_OUTCOMES),
        **{name: _int_in(name, values[name], 1, 100) for name in (
            "max_leads_per_number_per_day", "max_leads_per_number_per_15min",
            "max_leads_per_number_per_hour")},
        max_numbers_per_client_per_hour=_int_in(
            "max_numbers_per_client_per_hour", values["max_numbers_per_client_per_hour"], 1,
            100000),
        max_numbers_per_client_per_day=_int_in(
            "max_numbers_per_client_per_day", values["max_numbers_per_client_per_day"], 1,
            100000),
        max_leads_per_hour=_int_in("max_leads_per_hour", values["max_leads_per_hour"], 1,
                                   1_000_000),
        duplicate_window_s=_int_in("duplicate_window_s", values["duplicate_window_s"], 0, 3600),
        allowed_origins=origins,
        recording=values["recording"],
        recording_requires_consent=values["recording_requires_consent"],
        recording_notice=notice,
        lead_retention_days=_int_in("lead_retention_days", values["lead_retention_days"], 1,
                                    36500),
        recording_retention_days=_int_in("recording_retention_days",
                                         values["recording_retention_days"], 1, 36500),
        time_zone=check_time_zone(values["time_zone"]),
        hours=check_hours(values["hours"]),
        holidays=check_holidays(values["holidays"]),
        slot_minutes=_int_in("slot_minutes", values["slot_minutes"], 5, 480),
        slot_capacity=_int_in("slot_capacity", values["slot_capacity"], 0, 1000),
        slot_days=_int_in("slot_days", values["slot_days"], 1, 60),
        **appearance(values),
    )


def _str_tuple(field_name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(field_name, "must be a list of strings")
    return tuple(value)


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
