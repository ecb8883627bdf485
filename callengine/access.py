"""Who may do what: roles, their permissions, and the audit record of sensitive acts.

Pure data and functions; the store keeps tokens and the audit log, the web edge and the CLI ask
`allowed()`. Numbers are masked everywhere unless the role may unmask AND the caller asks
explicitly; every unmask, export, playback and deletion is written to the audit log.
"""

from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import dataclass


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


_GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    Role.SUPERVISOR: frozenset({
        Permission.READ_LEADS, Permission.UNMASK, Permission.PLAY_RECORDINGS,
        Permission.READ_REPORTS,
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


# ---- the audit chain ----------------------------------------------------------------------------

GENESIS = "0" * 64


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
    hash: str


def chain_hash(prev_hash: str, seq: int, at: float, actor: str, role: str, action: str,
               target: str, detail: str) -> str:
    """Each entry's hash covers its content and the previous hash: changing, removing or
    reordering any entry breaks every hash after it."""
    body = json.dumps([seq, repr(at), actor, role, action, target, detail],
                      separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def verify_chain(entries: list[AuditEntry]) -> str | None:
    """None if the chain is intact, else where and how it breaks."""
    prev = GENESIS
    expected_seq = 1
    for entry in entries:
        if entry.seq != expected_seq:
            return f"entry {expected_seq} is missing (found {entry.seq})"
        if entry.prev_hash != prev:
            return f"entry {entry.seq}: its link to entry {entry.seq - 1} is broken"
        recomputed = chain_hash(prev, entry.seq, entry.at, entry.actor, entry.role,
                                entry.action, entry.target, entry.detail)
        if recomputed != entry.hash:
            return f"entry {entry.seq} was altered (its hash no longer matches its content)"
        prev = entry.hash
        expected_seq += 1
    return None
