"""The storage interface: what the rest of callengine (engine, services, retention, recordings,
subjects, reports, web, cli, the purge process) asks of a store, as `typing.Protocol`s. The
SQLite `Store` and the PostgreSQL `PgStore` implement it (tests/storage/test_interface.py
checks the signatures) with the same guarantees:

- **Atomic writes.** Each method that writes is all or nothing: a crash or a cancelled task
  leaves the old rows or the new ones, never a mix (start_attempt, finish_attempt, purge_leads,
  audit …). Writers of one process queue on `write_lock`; a purge in another process takes
  turns on the same lock (retention.PurgeProcess), so a backend's own lock must not deadlock
  against it.
- **Rate limits atomic with the insert.** create_lead checks the widget's limits (leads of the
  number in the last day, of the widget in the last hour) and adds the lead in one step:
  concurrent requests can't both slip under a limit, and every lead counts once, wherever it
  waits (SQLite: the intake journal).
- **Reads see every accepted lead.** Once create_lead has returned, every read of leads (get,
  list, due, reports, a number's leads) includes that lead, even if the backend keeps new leads
  apart at first; a lead accepted is never lost, also if the process dies right after.
- **Deletion is erasure, or it says not.** purge_leads leaves a tombstone without personal
  data and removes the lead's attempts and recording rows with it; forget_deleted_pages then
  leaves no copy of deleted rows in the backend's files or logs, or raises ErasureIncomplete
  (errors.py) and records what is left, which scrub_pending (run by the next erasure, purge
  and open) finishes. Never a success with the bytes still there.
- **Erasure survives restore.** Personal fields (number, name, e-mail) are encrypted under
  their data subject's own key, kept in the keystore (outside the backend and its backups)
  with the number's keyed hash, the only way from a number to its subject: a lead row names a
  random subject id. forget_number deletes both, so every copy of the backend's bytes —
  backups, copies, a server's WAL and replicas — is unreadable for that person. A lead whose
  subject has no key reads as model.ERASED and is never called.
- **The audit log is append-only** and chained under the audit key (access.chain_mac), its
  head anchored outside the store (storage/audit_head.py, docs/audit.md).
- Times are Unix seconds; ids are strings the backend makes (time-ordered: UUIDv7).

Two backends implement it: the SQLite `Store` and the PostgreSQL `PgStore` (storage/pg/,
docs/scale-out.md); the whole test suite runs on each. Not in the interface: opening
(storage.open_store picks the backend the configuration names; the composition roots call it),
the keystore (KeyStore: a SQLite file kept apart on purpose, whatever the backend) and the
backup's snapshot (SQLite only: storage.snapshot; a PostgreSQL server has its own tools).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from callengine.access import AuditEntry, PanelSession, Principal, Role, UserAccount
from callengine.flow import Result, Strategy
from callengine.hooks.events import Claimed, Delivery, Endpoint
from callengine.model import (
    Agent, Attempt, Consent, Group, Lead, Recording, Widget, WidgetSettings,
)
from callengine.ringorder import RingState


def engine_lease(engine_id: str) -> str:
    """The name of an engine's lease (job_leases): held while it runs, renewed every third of
    `dialing.engine_lease_s`; start_attempts checks it (docs/scale-out.md)."""
    return f"engine:{engine_id}"


@dataclass(frozen=True)
class LeadFilter:
    """Which leads a listing or a count takes (None: any): of a widget, in a status, with an
    outcome (the lead's last attempt's, its final one once done; or model.ERASED), created in
    [created_from, created_to) (Unix seconds)."""

    widget_id: str | None = None
    status: str | None = None
    outcome: str | None = None
    created_from: float | None = None
    created_to: float | None = None


@runtime_checkable
class PurgeBatchStorage(Protocol):
    """The retention purge's hot path (`Storage.purge_batches`): reads and atomic batches that
    may run on a connection of their own; writes take the store's write lock."""

    async def expired_recordings(self, widget_id: str, cutoff: float, limit: int) -> list[str]:
        """Live (finished, not deleted) recordings of the widget started before cutoff."""

    async def mark_recordings_deleted(self, recording_ids: list[str], now: float) -> None:
        """In one transaction; the rows stay, as tombstones."""

    async def expired_leads(self, widget_id: str, cutoff: float, limit: int
                            ) -> tuple[list[str], list[str]]:
        """Up to limit closed leads created before cutoff, oldest first, and their live
        recordings (whose keys go before the leads' rows)."""

    async def subjects_of(self, lead_ids: list[str]) -> set[str]:
        """The data subjects of these leads (read before they are purged)."""

    async def purge_leads(self, lead_ids: list[str], now: float, reason: str) -> int:
        """As Storage.purge_leads."""

    def after_batch(self) -> None:
        """Called after each batch: housekeeping that must not hold up the next one."""


@runtime_checkable
class Storage(Protocol):
    # Writers of this process queue on it; retention.PurgeProcess gives a purge process turns
    # on it (an asyncio.Lock or anything with the same acquire/release/async with).
    write_lock: asyncio.Lock

    async def schema_version(self) -> int: ...

    def challenge_key(self) -> bytes:
        """The widget challenges' HMAC key derived from the data key (when none is set)."""

    def client_hash(self, address: str | None) -> str | None:
        """The keyed hash of a client's IP address (IPv6 by its /64); None without one."""

    # ---- configuration: agents, groups, widgets ------------------------------------------

    async def add_agent(self, agent: Agent) -> None:
        """Conflict if the name exists."""

    async def list_agents(self) -> list[Agent]: ...

    async def add_group(
        self, name: str, strategy: Strategy, ring_timeout: int, agent_names: list[str],
        accept_digit: str | None = None, accept_timeout: int = 10,
    ) -> Group:
        """Members in the order given; NotFound for an unknown agent, Conflict if the group
        exists or an agent is listed twice. Nothing is written unless all of it is."""

    async def get_group(self, name: str) -> Group:
        """NotFound if there is none."""

    async def list_groups(self) -> list[Group]: ...

    async def update_agent(self, name: str, endpoint: str | None = None,
                           enabled: bool | None = None, paused: bool | None = None) -> Agent:
        """Sets what is given (None: left as it is); NotFound if there is none. The engine's
        next dispatch round reads it (a call in progress keeps the agents it was planned
        with)."""

    async def remove_agent(self, name: str) -> Agent:
        """The agent removed. NotFound if there is none; Conflict naming the groups it is
        in, if any (it is taken out of them first). Atomic with that check."""

    async def update_group(self, name: str, strategy: Strategy | None = None,
                           ring_timeout: int | None = None,
                           agent_names: list[str] | None = None, *,
                           accept: tuple[str | None, int] | None = None) -> Group:
        """Sets what is given (None: left as it is), the members replaced in the order given;
        NotFound for the group or an unknown agent, nothing written unless all of it is."""

    async def remove_group(self, name: str) -> Group:
        """The group removed (as it was just before). NotFound if there is none; Conflict
        naming the widgets that use it, if any. Atomic with that check."""

    async def add_widget(self, widget_id: str, name: str, settings: WidgetSettings, now: float
                         ) -> Widget:
        """With a new random public key; NotFound if settings.group does not exist, Conflict
        if the id does."""

    async def get_widget(self, widget_id: str) -> Widget: ...

    async def get_widget_by_key(self, public_key: str) -> Widget:
        """The widget a visitor's request names (on intake's path: keep it fast)."""

    async def list_widgets(self) -> list[Widget]: ...

    async def update_widget(self, widget_id: str, name: str, settings: WidgetSettings
                            ) -> Widget:
        """NotFound for an unknown widget or settings.group."""

    async def set_widget_disabled(self, widget_id: str, disabled_at: float | None) -> Widget:
        """Disabled since `disabled_at`, or enabled (None); NotFound for an unknown widget."""

    async def widget_references(self, widget_id: str) -> tuple[int, int]:
        """(its leads, the store's and the intake journal's; its leads' tombstones)."""

    async def remove_widget(self, widget_id: str) -> None:
        """With its clause records; WidgetInUse while a lead or tombstone names it."""

    # ---- leads and attempts ----------------------------------------------------------------

    async def create_lead(
        self,
        widget: Widget,
        *,
        phone_e164: str,
        phone_region: str,
        phone_kind: str,
        name: str | None,
        email: str | None,
        consent: Consent,
        now: float,
        scheduled_for: float | None = None,
        slot_capacity: int | None = None,
        client: str | None = None,
    ) -> Lead:
        """A new lead, queued and due now (or at `scheduled_for`), once the rate limits pass
        (RateLimited otherwise, saying which) and, with `slot_capacity`, fewer than that many
        of the widget's leads not closed are scheduled for the same time (SlotFull otherwise),
        checked atomically with the insert; durable when this returns.
        client: the visitor's IP address (only its keyed hash is kept). Within the widget's
        duplicate window, the same number's earlier lead comes back (`duplicate` set)."""

    async def get_lead(self, lead_id: str) -> Lead: ...

    async def lead_statuses(self, lead_ids: list[str]) -> dict[str, dict[str, object]]:
        """The public state (widget_id, status, progress, outcome, scheduled_for) of each of
        these leads that exists, by id."""

    async def list_leads(self, where: LeadFilter | None = None, *, limit: int = 100
                         ) -> list[Lead]:
        """The leads `where` takes (all without it), newest first."""

    async def count_leads(self, where: LeadFilter | None = None) -> int:
        """How many leads `where` takes (all without it)."""

    async def lead_counts(self) -> dict[tuple[str, str], int]:
        """Leads by (status, outcome or "" while not done), for the metrics."""

    async def due_leads(self, now: float, limit: int) -> list[Lead]:
        """Queued leads whose next attempt is due, the longest waiting first."""

    async def next_due_at(self, after: float | None = None) -> float | None:
        """When the earliest queued lead is due (None: nothing queued); with `after`, the
        earliest due later than that (the next one not due yet)."""

    async def leads_in_slots(self, widget_id: str, starts: list[float]) -> dict[float, int]:
        """The widget's leads not closed, counted by scheduled_for, for each of `starts`."""

    async def dialling_plans(self, widget_ids) -> dict[str, tuple[Widget, Group]]:
        """Widget id → (the widget, its group with its agents in order), for the dispatcher's
        round, read together (NotFound for a widget or group not there)."""

    async def add_queue_callback(self, lead_id: str, queue: str, joined_at: float,
                                 evidence: dict[str, Any]) -> None:
        """A queue callback's lead (created with create_lead): the queue, when the caller had
        joined it, and the consent evidence (JSON-able; no personal data). Goes with the lead."""

    async def queue_callbacks(self, lead_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Each of these leads that is a queue callback → {queue, joined_at, evidence}."""

    async def start_attempt(self, lead_id: str, now: float) -> Attempt:
        """The lead goes from queued to calling with a new active attempt, atomically (Conflict
        if it is not queued); committed before any dial."""

    async def ring_state(self, groups: list[str], endpoints: list[str]) -> RingState:
        """For the ring orders (callengine.ringorder): the rotation of each of these groups
        that has one, and when each of these agent endpoints' last answered call ended."""

    async def start_attempts(self, lead_ids: list[str], now: float,
                             progress: str | None = None,
                             rotations: dict[str, tuple[str, str]] | None = None,
                             engine: str | None = None, lease_owner: str | None = None
                             ) -> dict[str, Attempt]:
        """start_attempt for many leads in one atomic write: lead id → attempt for those that
        were queued (the others are left out, no Conflict); each lead's progress set to
        `progress` with it. rotations: lead id → (group, endpoint) — for each lead that gets
        its attempt, its group's rotation becomes that endpoint, in the same write. engine:
        the id of the engine that makes the calls, kept on each attempt. lease_owner: with it,
        nothing starts unless that owner holds engine_lease(engine), checked in the same write
        (LeaseLost otherwise: fenced). Committed before any of them is dialled."""

    async def set_progress(self, lead_id: str, progress: str, connected: bool, attempt_id: str,
                           now: float) -> None: ...

    async def mark_notice_played(self, attempt_id: str) -> None:
        """The in-call recording notice was played to the attempt's visitor (evidence)."""

    async def finish_attempt(
        self, attempt: Attempt, result: Result, now: float, retry_at: float | None
    ) -> Lead:
        """Close the attempt with its result and queue the lead again (retry_at) or close it,
        atomically. AttemptClosed, with nothing written, if the attempt is closed already
        (another engine took it over)."""

    async def active_attempts(self, engine: str | None = None) -> list[Attempt]:
        """Attempts still open; with `engine`, only those that engine started (and those
        from before attempts named their engine): what it closes after its restart."""

    async def attempts_for(self, lead_id: str) -> list[Attempt]: ...

    # ---- recordings (metadata; the audio is a file, its key in the KeyStore) ---------------

    async def add_recording(
        self, recording_id: str, attempt: Attempt, route: str, key_id: str, now: float, *,
        sample_rate: int,
    ) -> None:
        """Registered before the tap starts: a crash mid-call leaves a row to mark incomplete."""

    async def finish_recording(
        self, recording_id: str, *, status: str, now: float, duration_s: float, bytes_in: int,
        segments: int, sha256: str | None, problem: str | None,
    ) -> None: ...

    async def recordings_in_progress(self, attempt_ids: list[str] | None = None
                                     ) -> list[Recording]:
        """Recordings still being made (of these attempts only, when named)."""

    async def get_recording(self, recording_id: str) -> Recording: ...

    async def list_recordings(self, *, lead_id: str | None = None,
                              include_deleted: bool = False) -> list[Recording]: ...

    async def mark_recording_deleted(self, recording_id: str, now: float) -> None:
        """The row stays as a tombstone (no personal data in it)."""

    # ---- information clauses (docs/consent.md) --------------------------------------------

    async def put_clause(self, clause: dict[str, Any], *, replace: bool = False) -> None:
        """Conflict if the version exists (unless replace) or any lead referenced it."""

    async def delete_clause(self, widget_id: str, language: str, version: str) -> None:
        """Conflict if a lead referenced it; NotFound if there is none."""

    async def list_clauses(self, widget_id: str, language: str | None = None
                           ) -> list[dict[str, Any]]:
        """Oldest first."""

    async def get_clause(self, widget_id: str, language: str, version: str
                         ) -> dict[str, Any]: ...

    async def clause_for_lead(self, widget_id: str, languages: tuple[str, ...], version: str
                              ) -> dict[str, Any] | None:
        """`version` in the first of `languages` that has it; None when the widget has no
        clauses at all; NotFound when it has some but not this one (may be cached briefly)."""

    # ---- access: tokens and the audit log ------------------------------------------------

    async def add_token(self, name: str, role: Role, token_hash: str, now: float) -> None:
        """Only the token's hash is stored; Conflict if the name exists."""

    async def revoke_token(self, name: str, now: float) -> None:
        """NotFound unless an active token has that name."""

    async def principal_for(self, token_hash: str) -> Principal | None: ...

    async def list_tokens(self) -> list[dict[str, Any]]: ...

    async def audit(self, principal: Principal, action: str, target: str, detail: str,
                    now: float, *, new_anchor: bool = False) -> AuditEntry:
        """Append one entry to the chain, atomically with reading its predecessor, and move
        the anchor to it (new_anchor: this store's anchor starts here, see audit_rebase)."""

    async def audit_entries(self) -> list[AuditEntry]: ...

    async def audit_state(self) -> Any:
        """The entries with what verify checks them against (queries.access.AuditState)."""

    async def audit_rebase(self, principal: Principal, detail: str, now: float) -> AuditEntry:
        """A restored copy: a new audit identity, anchored at its head, and an entry saying so."""

    # ---- people: panel accounts, sessions, the login throttle (services/users.py) -------

    async def add_user(self, username: str, role: Role, password_hash: str,
                       totp_secret: str | None, now: float) -> None:
        """Conflict if the name exists. The TOTP secret is kept encrypted (the field cipher)."""

    async def get_user(self, username: str) -> UserAccount | None: ...

    async def list_users(self) -> list[UserAccount]:
        """By name."""

    async def update_user(self, username: str, *, password_hash: str | None = None,
                          totp_secret: str | None = None, clear_totp: bool = False,
                          disabled_at: float | None = None, enable: bool = False) -> None:
        """Change what is given, end the user's sessions and clear its account lockout, in
        one transaction; NotFound if there is no such user."""

    async def use_totp_step(self, username: str, step: int) -> bool:
        """Accept a TOTP code of this time step once, atomically: False if it or a later step
        was accepted before (a replay)."""

    async def add_session(self, token_hash: str, username: str, now: float, *,
                          pending: bool = False, replaces: str | None = None) -> None:
        """Only the session token's hash is kept; `replaces`: a pending session it ends in
        the same transaction. A full (not pending) session sets the user's last login."""

    async def get_session(self, token_hash: str) -> PanelSession | None: ...

    async def touch_session(self, token_hash: str, now: float) -> None: ...

    async def end_session(self, token_hash: str) -> bool:
        """True if there was such a session."""

    async def end_stale_sessions(self, seen_before: float, created_before: float
                                 ) -> list[str]:
        """Delete sessions idle since `seen_before` or made before `created_before`; the user
        names of the full sessions among them (one per session)."""

    async def login_locked(self, username: str, client: str | None, now: float
                           ) -> tuple[str, float] | None:
        """("account" or "client", until) of a lock holding this login now; None if none.
        client: the address (only its keyed hash is kept, like the account name's)."""

    async def login_failed(self, username: str, client: str | None, now: float, *,
                           account_limit: int, client_limit: int, window_s: float,
                           lockout_s: float) -> list[str]:
        """Count a failure for the account name (known or not) and the client, atomically;
        reaching a limit within window_s locks that one for lockout_s. Which were locked."""

    async def login_succeeded(self, username: str) -> None:
        """The account's count of failures starts afresh (the client's does not)."""

    # ---- retention: the purge's lease, counts and purges -------------------------------

    async def acquire_lease(self, name: str, owner: str, now: float, ttl_s: float) -> bool:
        """Take or renew the named lease; False while another owner holds an unexpired one."""

    async def renew_lease(self, name: str, owner: str, now: float, ttl_s: float) -> bool:
        """Extend a lease this owner holds (expired or not); False if another owner holds it
        now or it is gone (taken over)."""

    async def engines_to_take_over(self, me: str, now: float) -> list[str]:
        """Engines other than `me` with open attempts and no unexpired engine_lease."""

    async def release_lease(self, name: str, owner: str) -> None: ...

    async def count_expired_recordings(self, widget_id: str, cutoff: float) -> int: ...

    async def count_expired_leads(self, widget_id: str, cutoff: float) -> int: ...

    async def live_recording_ids(self, lead_ids: list[str]) -> list[str]:
        """The leads' recordings not deleted yet."""

    async def live_recording_id_set(self) -> set[str]: ...

    async def purge_leads(self, lead_ids: list[str], now: float, reason: str) -> int:
        """Tombstone and delete the leads (with their attempts and recording rows) in one
        transaction; returns how many went."""

    def purge_batches(self, thread_initializer: Callable[[], None] | None = None
                      ) -> AbstractAsyncContextManager[PurgeBatchStorage]:
        """The purge's batches, for as long as the context lasts; thread_initializer runs first
        in any worker thread the backend starts for them."""

    async def count_tombstones(self, widget_id: str | None = None) -> int: ...

    # ---- reports and data subjects -------------------------------------------------------

    async def report_rows(self, widget_id: str, start: float, end: float
                          ) -> list[tuple[Lead | None, dict[str, Any]]]:
        """Every lead of the widget created in [start, end) with its last attempt's figures;
        purged leads from their tombstones (no Lead)."""

    async def leads_for_number(self, e164: str) -> list[Lead]:
        """Every lead of the number (its keyed hash → its subject, in the keystore), oldest
        first."""

    async def forget_number(self, e164: str) -> None:
        """After its leads are purged: the number's subject key and keyed hash deleted where
        they are kept (ErasureIncomplete otherwise; scrub_pending retries)."""

    async def forget_unused_subjects(self, subject_ids: set[str] | list[str]) -> int:
        """Of these subjects (a purge's), forget those no lead names any more; how many."""

    async def forget_deleted_pages(self) -> None:
        """After an erasure or a purge: no copy of the deleted rows left in the backend's files
        or logs — or ErasureIncomplete, with what is left recorded for scrub_pending."""

    async def scrub_pending(self) -> bool:
        """Finish what an earlier erasure or purge could not; True if there was something and
        it is done; ErasureIncomplete while it still can't be."""

    # ---- webhooks (storage/outbox.py writes the events with the changes they report) -----

    async def add_webhook(self, url: str, description: str, events: tuple[str, ...],
                          full_numbers: bool, secret: str, now: float) -> Endpoint:
        """The secret kept encrypted (the field cipher)."""

    async def get_webhook(self, endpoint_id: str) -> Endpoint:
        """NotFound if there is none."""

    async def list_webhooks(self) -> list[Endpoint]: ...

    async def update_webhook(self, endpoint_id: str, now: float, *, url: str | None = None,
                             events: tuple[str, ...] | None = None,
                             full_numbers: bool | None = None,
                             enabled: bool | None = None) -> Endpoint: ...

    async def remove_webhook(self, endpoint_id: str) -> Endpoint:
        """With its deliveries."""

    async def rotate_webhook_secret(self, endpoint_id: str, secret: str, now: float,
                                    grace_until: float) -> Endpoint:
        """The new secret signs from now, the current one too until grace_until."""

    async def claim_deliveries(self, now: float, lease_s: float, limit: int) -> list[Claimed]:
        """Due pending deliveries leased until now + lease_s (no other claim gets them
        meanwhile, in this process or another), oldest event first; each with the
        endpoint's secrets and the lead's number read now (None once erased or purged)."""

    async def record_delivery(self, delivery_id: str, now: float, *, code: int | None,
                              latency_ms: float, error: str | None, delivered: bool,
                              retry_at: float | None) -> None:
        """One attempt: delivered, pending again at retry_at, or dead (neither)."""

    async def release_deliveries(self, delivery_ids: list[str], next_at: float | None) -> None:
        """Claimed, not tried: due at next_at (None: unchanged), no attempt counted."""

    async def list_deliveries(self, *, endpoint_id: str | None = None,
                              status: str | None = None, limit: int = 100) -> list[Delivery]:
        """Newest event first."""

    async def delivery_attempts(self, delivery_id: str) -> list[dict[str, Any]]: ...

    async def replay_deliveries(self, now: float, *, delivery_id: str | None = None,
                                endpoint_id: str | None = None) -> int:
        """One delivery (NotFound if none) or an endpoint's dead ones, due now."""

    async def prune_outbox(self, delivered_before: float, dead_before: float,
                           limit: int = 1000) -> int:
        """One batch of pruning: deliveries delivered before delivered_before or dead and made
        before dead_before, their attempts and orphaned events; how many deliveries (0: done)."""
