"""Who may do what: roles, their permissions, and the audit record of sensitive acts.

Pure data and functions; the store keeps tokens and the audit log, the web edge and the CLI ask
`allowed()`. Numbers are masked everywhere unless the role may unmask AND the caller asks
explicitly; every unmask, export, playback and deletion is written to the audit log.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
from dataclasses import dataclass, field


class Role(str, enum.Enum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    AGENT = "agent"
    VIEWER = "viewer"


class Permission(str, enum.Enum):
    READ_LEADS = "leads.read"  # masked
    UNMASK = "numbers.unmask"
    PLAY_RECORDINGS = "recordings.play"
    DELETE_RECORDINGS = "recordings.delete"
    READ_REPORTS = "reports.read"  # masked
    EXPORT_SUBJECT = "subjects.export"
    ERASE_SUBJECT = "subjects.erase"
    CONFIGURE = "config.write"  # agents, groups, widgets, tokens
    CREATE_LEADS = "leads.create"  # a CRM queues (or schedules) a callback


_GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.SUPERVISOR: frozenset({
        Permission.READ_LEADS, Permission.UNMASK, Permission.PLAY_RECORDINGS,
        Permission.READ_REPORTS, Permission.CREATE_LEADS,
    }),
    Role.AGENT: frozenset({Permission.READ_LEADS, Permission.PLAY_RECORDINGS}),
    Role.VIEWER: frozenset({Permission.READ_LEADS, Permission.READ_REPORTS}),
}


def allowed(role: Role, permission: Permission) -> bool:
    return permission in _GRANTS[role]


@dataclass(frozen=True)
class Principal:
    """Who is acting: a name for the audit log and a role for the checks."""

    actor: str
    role: Role

    def may(self, permission: Permission) -> bool:
        return allowed(self.role, permission)


class Forbidden(Exception):
    def __init__(self, principal: Principal, permission: Permission):
        super().__init__(
            f"role {principal.role.value} may not {permission.value}"
        )
        self.permission = permission


def require(principal: Principal, permission: Permission) -> None:
    if not principal.may(permission):
        raise Forbidden(principal, permission)


def token_hash(token: str) -> str:
    # Tokens are 32 random bytes: a plain hash is enough (no dictionary to attack).
    return hashlib.sha256(token.encode()).hexdigest()


# ---- people: named accounts of the panel (services/users.py) ------------------------------------

USER_ACTOR = "user:"  # a person's audit actor is "user:<name>" (a token's is its bare name)


@dataclass(frozen=True)
class UserAccount:
    """A person who logs in to the panel: a name, a role, an argon2id hash of the password and,
    for a second factor, a TOTP secret (kept encrypted by the store; neither ever shown)."""

    username: str
    role: Role
    created_at: float
    disabled_at: float | None
    password_hash: str = field(repr=False)
    totp_secret: str | None = field(default=None, repr=False)
    totp_last_step: int | None = None  # the last accepted code's 30-s step (no replay)
    last_login_at: float | None = None

    @property
    def principal(self) -> Principal:
        return Principal(USER_ACTOR + self.username, self.role)


@dataclass(frozen=True)
class PanelSession:
    """A panel session as the store keeps it: never the token, only its hash (token_hash)."""

    username: str
    role: Role
    created_at: float
    last_seen: float
    pending: bool  # the password was right, the second factor not yet given
    disabled: bool  # the account was disabled meanwhile


# ---- the audit chain (docs/audit.md) -------------------------------------------------------------

GENESIS = "0" * 64
MAC_DOMAIN = b"callengine-audit-2\n"  # keyed entries; the unkeyed ones (before it) had none
HEAD_DOMAIN = b"callengine-audit-head-2\n"
GAP_ACTION = "audit.gap"  # an append found the anchor ahead of the table: entries were cut
MOVED_WINDOW = 16  # how far from its place a moved entry is looked for


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: float
    actor: str
    role: str
    action: str
    target: str
    detail: str
    prev_hash: str
    hash: str  # SHA-256 (unkeyed, before keyed_from) or HMAC-SHA256 under the audit key


def _body(seq: int, at: float, actor: str, role: str, action: str, target: str,
          detail: str) -> str:
    return json.dumps([seq, repr(at), actor, role, action, target, detail],
                      separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, seq: int, at: float, actor: str, role: str, action: str,
               target: str, detail: str) -> str:
    """The unkeyed rule of the entries made before the keyed chain (legacy, verify only)."""
    body = _body(seq, at, actor, role, action, target, detail)
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def chain_mac(key: bytes, prev_hash: str, seq: int, at: float, actor: str, role: str,
              action: str, target: str, detail: str) -> str:
    """A keyed entry's MAC: HMAC-SHA256 under the audit key over the previous entry's MAC and
    this entry's content, its seq included (so a moved entry no longer verifies in its place)."""
    body = _body(seq, at, actor, role, action, target, detail)
    return hmac.new(key, MAC_DOMAIN + (prev_hash + body).encode(), hashlib.sha256).hexdigest()


def _entry_mac(key: bytes, entry: AuditEntry, seq: int | None = None) -> str:
    return chain_mac(key, entry.prev_hash, entry.seq if seq is None else seq, entry.at,
                     entry.actor, entry.role, entry.action, entry.target, entry.detail)


@dataclass(frozen=True)
class AuditHead:
    """The chain's head as kept outside the store (the anchor): which store, from which seq
    the chain is keyed, and the last entry's seq and MAC."""

    store_id: str
    keyed_from: int
    seq: int
    mac: str

    def seal(self, key: bytes) -> str:
        text = f"{self.store_id}|{self.keyed_from}|{self.seq}|{self.mac}".encode()
        return hmac.new(key, HEAD_DOMAIN + text, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class AuditFinding:
    """One thing `audit verify` found: the entry (seq) it is about, what kind, in words.
    Kinds: edited, deleted, inserted, reordered, cut-tail, rewritten, anchor (problems);
    anchor-behind, unkeyed (notes: not a break)."""

    seq: int
    kind: str
    text: str

    @property
    def problem(self) -> bool:
        return self.kind not in NOTE_KINDS

    def __str__(self) -> str:
        return f"entry {self.seq}: {self.kind}: {self.text}"


NOTE_KINDS = frozenset({"anchor-behind", "unkeyed"})


def verify_chain(entries: list[AuditEntry], key: bytes | None = None, *,
                 keyed_from: int = 1, head: AuditHead | None = None,
                 head_seal: str | None = None, store_id: str | None = None
                 ) -> list[AuditFinding]:
    """What is wrong with the chain (entries in seq order): [] if intact and anchored.

    Entries before `keyed_from` follow the old unkeyed rule, the rest the keyed one; `head` is
    the anchor read from outside the store (None: none found) and `head_seal` its MAC."""
    found: list[AuditFinding] = []
    if head is not None:
        if key is None or head_seal is None or not hmac.compare_digest(head.seal(key), head_seal):
            return [AuditFinding(head.seq, "anchor", "the anchor was not written with this audit"
                                 " key (a wrong key, or a forged anchor): nothing can be trusted")]
        if store_id is not None and head.store_id != store_id:
            found.append(AuditFinding(0, "anchor", f"the store says it is {store_id}, the anchor"
                                                   f" belongs to {head.store_id}"))
        if keyed_from != head.keyed_from:
            found.append(AuditFinding(head.keyed_from, "edited", "the store's record of where the"
                                      f" keyed chain begins was changed (to {keyed_from})"))
            keyed_from = head.keyed_from
    keyed = [e for e in entries if e.seq >= keyed_from]
    if keyed and key is not None and not any(_entry_mac(key, e) == e.hash for e in keyed):
        how = ("recomputed with the old unkeyed rule" if all(
            chain_hash(e.prev_hash, e.seq, e.at, e.actor, e.role, e.action, e.target, e.detail)
            == e.hash for e in keyed) else "not made with this audit key")
        found.append(AuditFinding(keyed[0].seq, "rewritten", f"entries {keyed[0].seq}–"
                                  f"{keyed[-1].seq}: no MAC verifies under the audit key ({how}):"
                                  " the chain was rewritten whole, or this is the wrong key"))
        return found
    walked = _walk(entries, key, keyed_from, head)
    found += walked
    valid = [e for e in entries if not any(f.seq == e.seq for f in walked)]
    moved_head = head is not None and walked and valid and valid[-1].seq < head.seq and any(
        e.hash == head.mac for e in entries)  # the anchored entry is there, moved (named)
    if not moved_head:
        found += _against_head(valid, head, keyed_from)
    return found


def _valid(entry: AuditEntry, key: bytes | None, keyed_from: int) -> bool:
    if entry.seq < keyed_from:
        return chain_hash(entry.prev_hash, entry.seq, entry.at, entry.actor, entry.role,
                          entry.action, entry.target, entry.detail) == entry.hash
    return key is not None and hmac.compare_digest(_entry_mac(key, entry), entry.hash)


def _moved_from(entry: AuditEntry, key: bytes | None, keyed_from: int) -> int | None:
    """The seq a keyed entry was made at, if it verifies there and not where it stands."""
    if key is None or entry.seq < keyed_from:
        return None
    for distance in range(1, MOVED_WINDOW + 1):
        for seq in (entry.seq - distance, entry.seq + distance):
            if seq >= keyed_from and hmac.compare_digest(_entry_mac(key, entry, seq), entry.hash):
                return seq
    return None


def _walk(entries: list[AuditEntry], key: bytes | None, keyed_from: int,
          head: AuditHead | None) -> list[AuditFinding]:
    found: list[AuditFinding] = []
    shifted: list[tuple[int, int]] = []  # (seq, made as) of moved entries, collapsed below
    prev, expected = GENESIS, 1
    for i, entry in enumerate(entries):
        following = entries[i + 1] if i + 1 < len(entries) else None
        if not _valid(entry, key, keyed_from):
            moved = _moved_from(entry, key, keyed_from)
            if moved is not None:
                shifted.append((entry.seq, moved))
                found.append(AuditFinding(entry.seq, "reordered", f"holds the entry made as"
                                          f" {moved} (moved, or renumbered)"))
            elif head is not None and entry.seq > head.seq:
                found.append(AuditFinding(entry.seq, "inserted", "not made with the audit key,"
                                          f" after the anchored head ({head.seq})"))
            elif following is not None and following.prev_hash == prev and entry.prev_hash == prev:
                found.append(AuditFinding(entry.seq, "inserted", "not made with the audit key,"
                                          " and the chain runs past it (its successor links to"
                                          " its predecessor)"))
            elif following is None or following.prev_hash == entry.hash:
                rule = "hash" if entry.seq < keyed_from else "MAC"
                found.append(AuditFinding(entry.seq, "edited", f"its {rule} no longer matches"
                                          " its content"))
            else:
                found.append(AuditFinding(entry.seq, "inserted", "not made with the audit key"
                                          " (a forged entry)"))
        elif entry.seq > expected:
            last = entry.seq - 1
            span = f"entry {expected} is" if last == expected else f"entries {expected}–{last} are"
            found.append(AuditFinding(expected, "deleted", f"{span} missing (entry"
                                      f" {entry.seq} links to what is gone)"))
        elif entry.prev_hash != prev and not (found and found[-1].seq == entry.seq - 1):
            found.append(AuditFinding(entry.seq, "deleted", "it links to an entry that is no"
                                      f" longer at {entry.seq - 1} (removed and renumbered)"))
        prev, expected = entry.hash, entry.seq + 1
    return _collapse(found, dict(shifted))


def _collapse(found: list[AuditFinding], made_as: dict[int, int]) -> list[AuditFinding]:
    """A run of entries all moved by the same offset (a renumbering) as one finding."""
    out: list[AuditFinding] = []
    run: list[AuditFinding] = []

    def flush() -> None:
        if len(run) > 2:
            first, last = run[0].seq, run[-1].seq
            offset = first - made_as[first]
            if offset < 0:
                out.append(AuditFinding(first, "deleted", f"the entries made as {first}–"
                                        f"{made_as[first] - 1} are gone, those after moved up"))
            out.append(AuditFinding(first, "reordered", f"entries {first}–{last} hold the"
                                    f" entries made as {made_as[first]}–{made_as[last]}"
                                    f" (renumbered by {offset:+d}: one was inserted or deleted"
                                    " before them)"))
        else:
            out.extend(run)
        run.clear()

    for finding in found:
        if finding.kind == "reordered" and run and finding.seq == run[-1].seq + 1 and (
                finding.seq - made_as[finding.seq] == run[-1].seq - made_as[run[-1].seq]):
            run.append(finding)
            continue
        flush()
        if finding.kind == "reordered":
            run.append(finding)
        else:
            out.append(finding)
    flush()
    return out


def _against_head(entries: list[AuditEntry], head: AuditHead | None, keyed_from: int
                  ) -> list[AuditFinding]:
    """The valid entries' end against the anchor."""
    last = entries[-1].seq if entries else 0
    if head is None:
        if last >= keyed_from:
            return [AuditFinding(last, "anchor", "no anchor for this store's chain outside the"
                                 " store: its head can't be checked (a cut tail would not show)")]
        if entries:
            return [AuditFinding(last, "unkeyed", f"entries 1–{last} are of the old unkeyed"
                                 " chain, not yet anchored (the next entry starts the keyed one)")]
        return []
    if head.seq > last:
        span = (f"entry {last + 1} is" if head.seq == last + 1 else
                f"entries {last + 1}–{head.seq} are")
        return [AuditFinding(last + 1, "cut-tail", f"{span} missing at the end: the"
                             f" anchor outside the store says the log reached {head.seq}")]
    at_head = next((e for e in entries if e.seq == head.seq), None)
    if at_head is None or not hmac.compare_digest(at_head.hash, head.mac):
        return [AuditFinding(head.seq, "edited", "is not the entry the anchor holds (replaced)")]
    if last == head.seq + 1:
        return [AuditFinding(last, "anchor-behind", "made and committed, but the anchor was not"
                             " updated after it (a crash between the two); the next entry"
                             " repairs it")]
    if last > head.seq + 1:
        return [AuditFinding(head.seq + 1, "anchor", f"the anchor is {last - head.seq} entries"
                             " behind (a crash leaves at most 1): it was rolled back, or entries"
                             " were appended without it")]
    return []


@dataclass(frozen=True)
class AuditCheck:
    """`audit verify`'s answer: the entries, and what was found (problems and notes)."""

    entries: list[AuditEntry]
    findings: list[AuditFinding]

    @property
    def problems(self) -> list[AuditFinding]:
        return [f for f in self.findings if f.problem]

    @property
    def intact(self) -> bool:
        return not self.problems

    @property
    def problem(self) -> str | None:
        """The problems in one line each (None: intact)."""
        return "\n".join(str(f) for f in self.problems) or None
