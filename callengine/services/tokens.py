"""API tokens with roles: made (shown once; only their hash is kept), revoked, listed, and
resolved to the principal a bearer token stands for."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from callengine.access import Permission, Principal, Role, require, token_hash
from callengine.errors import InvalidInput
from callengine.model import check_name
from callengine.services.base import Service


@dataclass(frozen=True)
class NewToken:
    name: str
    role: Role
    token: str = field(repr=False)  # the only time it exists outside its owner's hands


class Tokens(Service):
    async def create(self, who: Principal, name: Any, role: Any) -> NewToken:
        require(who, Permission.CONFIGURE)
        name = check_name("name", name)
        try:
            parsed = Role(role)
        except ValueError:
            raise InvalidInput("role", "must be admin, supervisor, agent or viewer") from None
        token = "ce_" + secrets.token_urlsafe(32)
        await self.store.add_token(name, parsed, token_hash(token), self.ctx.clock())
        await self.ctx.audit(who, "tokens.create", f"token:{name}", parsed.value)
        return NewToken(name, parsed, token)

    async def revoke(self, who: Principal, name: str) -> None:
        require(who, Permission.CONFIGURE)
        await self.store.revoke_token(name, self.ctx.clock())
        await self.ctx.audit(who, "tokens.revoke", f"token:{name}", "")

    async def list(self, who: Principal) -> list[dict[str, Any]]:
        """Names, roles, when made and revoked; never the tokens."""
        require(who, Permission.CONFIGURE)
        return await self.store.list_tokens()

    async def principal_for(self, token: str) -> Principal | None:
        return await self.store.principal_for(token_hash(token))
