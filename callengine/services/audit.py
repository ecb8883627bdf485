"""The tamper-evident audit log: its entries, whether its keyed chain is intact and ends where
its anchor outside the store says (docs/audit.md), and the entries the edges write."""

from __future__ import annotations

from callengine.access import (
    AuditCheck,
    AuditEntry,
    GAP_ACTION,
    AuditFinding,
    Permission,
    Principal,
    require,
    verify_chain,
)
from callengine.services.base import Service

class AuditLog(Service):
    async def entries(self, who: Principal) -> list[AuditEntry]:
        require(who, Permission.CONFIGURE)
        return await self.store.audit_entries()

    async def verify(self) -> AuditCheck:
        """The entries and each thing found wrong (seq, kind, words). Shows only MACs and a
        count, so anyone may check it."""
        state = await self.store.audit_state()
        findings: list[AuditFinding] = []
        if not state.store_id:
            findings.append(AuditFinding(0, "anchor", "the store's audit identity is gone"
                                                      " (its audit_meta rows were removed)"))
        if state.head_problem:
            findings.append(AuditFinding(0, "anchor", state.head_problem))
        findings += verify_chain(state.entries, state.key, keyed_from=state.keyed_from,
                                 head=state.head, head_seal=state.head_seal,
                                 store_id=state.store_id or None)
        findings += [AuditFinding(e.seq, "cut-tail", f"recorded when it was appended: {e.detail}")
                     for e in state.entries if e.action == GAP_ACTION]
        return AuditCheck(state.entries, sorted(findings, key=lambda f: f.seq))

    async def log(self, who: Principal) -> AuditCheck:
        """The whole log with its check, for an admin."""
        require(who, Permission.CONFIGURE)
        return await self.verify()

    async def record(self, who: Principal, action: str, target: str, detail: str) -> None:
        """An entry an edge writes for an act done outside the services (backup, restore)."""
        require(who, Permission.CONFIGURE)
        await self.ctx.audit(who, action, target, detail)

    async def adopt_restored(self, who: Principal, detail: str) -> AuditEntry:
        """This store was restored from a backup: it becomes a chain of its own (new
        identity, anchored at its head, with an entry saying so)."""
        require(who, Permission.CONFIGURE)
        return await self.store.audit_rebase(who, detail, self.ctx.clock())
