"""What the engine is configured with: agents, groups and widgets (admin only; every change
audited, with what it set)."""

from __future__ import annotations

import json
from typing import Any

from callengine.access import Permission, Principal, require
from callengine.errors import InvalidInput
from callengine.model import (
    Agent,
    Group,
    Widget,
    agent_from_input,
    check_name,
    group_from_input,
    optional_text,
    widget_settings_from_input,
)
from callengine.services.base import Service


class Configuration(Service):
    async def add_agent(self, who: Principal, name: Any, endpoint: Any) -> Agent:
        require(who, Permission.CONFIGURE)
        agent = agent_from_input(name, endpoint)
        await self.store.add_agent(agent)
        await self.ctx.audit(who, "config.agent.create", f"agent:{agent.name}", agent.endpoint)
        return agent

    async def agents(self, who: Principal) -> list[Agent]:
        require(who, Permission.CONFIGURE)
        return await self.store.list_agents()

    async def add_group(self, who: Principal, name: Any, strategy: Any, ring_timeout: Any,
                        agents: Any) -> Group:
        require(who, Permission.CONFIGURE)
        name, parsed, timeout = group_from_input(name, strategy, ring_timeout)
        if not isinstance(agents, list) or not agents or not all(isinstance(a, str)
                                                                 for a in agents):
            raise InvalidInput("agents", "required: a non-empty list of agent names")
        group = await self.store.add_group(name, parsed, timeout, agents)
        await self.ctx.audit(who, "config.group.create", f"group:{group.name}",
                             f"{parsed.value} ring={timeout}s agents="
                             + ",".join(a.name for a in group.agents))
        return group

    async def groups(self, who: Principal) -> list[Group]:
        require(who, Permission.CONFIGURE)
        return await self.store.list_groups()

    async def add_widget(self, who: Principal, widget_id: Any, name: Any, settings: Any
                         ) -> Widget:
        """A widget and its settings (docs/config.md); its name defaults to its id."""
        require(who, Permission.CONFIGURE)
        widget_id = check_name("id", widget_id)
        name = optional_text("name", name, 100) or widget_id
        parsed = widget_settings_from_input(settings)
        widget = await self.store.add_widget(widget_id, name, parsed, self.ctx.clock())
        await self.ctx.audit(who, "config.widget.create", f"widget:{widget.id}",
                             json.dumps(parsed.to_json(), sort_keys=True, separators=(",", ":")))
        return widget

    async def widget_choices(self, who: Principal) -> list[tuple[str, str]]:
        """Each widget's id and name (no settings), for the filters of those who read leads."""
        require(who, Permission.READ_LEADS)
        return [(w.id, w.name) for w in await self.store.list_widgets()]

    async def widgets(self, who: Principal) -> list[Widget]:
        require(who, Permission.CONFIGURE)
        return await self.store.list_widgets()
