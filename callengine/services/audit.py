"""The tamper-evident audit log: its entries, and whether its hash chain is intact."""

from __future__ import annotations

from callengine.access import AuditEntry, Permission, Principal, require, verify_chain
from callengine.services.base import Service


class AuditLog(Service):
    async def entries(self, who: Principal) -> list[AuditEntry]:
        require(who, Permission.CONFIGURE)
        return await self.store.audit_entries()

    async def verify(self) -> tuple[list[AuditEntry], str | None]:
        """The entries and where the chain breaks (None: intact). Shows only hashes and a
        count, so anyone may check it."""
        entries = await self.store.audit_entries()
        return entries, verify_chain(entries)

    async def log(self, who: Principal) -> tuple[list[AuditEntry], str | None]:
        """The whole log with its check, for an admin."""
        require(who, Permission.CONFIGURE)
        return await self.verify()
