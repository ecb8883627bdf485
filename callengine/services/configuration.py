"""What the engine is configured with: agents, groups and widgets (admin only; every change
audited, with what it set)."""

from __future__ import annotations

import json
from typing import Any

from callengine.access import Permission, Principal, Role, require
from callengine.errors import Conflict, InvalidInput, NotFound, WidgetInUse
from callengine.model import (
    Agent,
    Group,
    Widget,
    accept_from_input,
    agent_from_input,
    check_endpoint,
    check_name,
    group_from_input,
    optional_text,
    widget_settings_from_input,
)
from callengine.services.base import Service

REMOVE_AFTER_DISABLED_S = 60.0  # see remove_widget
KEEP: Any = object()  # update_group's accept_digit when not given (None turns accepting off)


_DOING = {"on-call": "on a call", "ringing": "being rung for a call",
          "held": "kept for a call that rings the others first"}  # Engine.agent_activity's


def _described(group: Group) -> str:
    """A group as its audit entries name it: "ring-all ring=20s agents=alice,bob"."""
    accept = f" {_accept_described(group)}" if group.accept_digit is not None else ""
    return (f"{group.strategy.value} ring={group.ring_timeout}s{accept} agents="
            + ",".join(a.name for a in group.agents))


def _accept_described(group: Group) -> str:
    if group.accept_digit is None:
        return "accept=off"
    return f"accept={group.accept_digit}/{group.accept_timeout}s"


def _known(name: Any, what: str) -> str:
    """A name to look up (anything else names nothing there is)."""
    if not isinstance(name, str):
        raise NotFound(what, str(name))
    return name


def _members(agents: Any) -> list[str]:
    """A group's members, in order: a non-empty list of agent names, each once."""
    if not isinstance(agents, list) or not agents or not all(isinstance(a, str)
                                                             for a in agents):
        raise InvalidInput("agents", "required: a non-empty list of agent names")
    twice = sorted({a for a in agents if agents.count(a) > 1})
    if twice:
        raise InvalidInput("agents", f"lists {', '.join(twice)} more than once")
    return agents


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
                        agents: Any, *, accept_digit: Any = None,
                        accept_timeout: Any = 10) -> Group:
        """accept_digit: what the agent presses after the whisper to take a call (None: the
        answer is enough), within accept_timeout seconds."""
        require(who, Permission.CONFIGURE)
        name, parsed, timeout = group_from_input(name, strategy, ring_timeout)
        accept = accept_from_input(accept_digit, accept_timeout)
        group = await self.store.add_group(name, parsed, timeout, _members(agents), *accept)
        await self.ctx.audit(who, "config.group.create", f"group:{group.name}",
                             _described(group))
        return group

    async def groups(self, who: Principal) -> list[Group]:
        require(who, Permission.CONFIGURE)
        return await self.store.list_groups()

    async def update_agent(self, who: Principal, name: Any, *, endpoint: Any = None,
                           enabled: Any = None, paused: Any = None) -> Agent:
        """Its endpoint (validated as a new agent's), enabled or not, paused or not, any of
        them. A disabled or paused agent is not rung from the engine's next dispatch round on;
        a call it is on (or being rung for) goes on to its end. A new endpoint is refused
        (Conflict) while the engine in this process holds the old one for a call. Each change
        audited: config.agent.update (the endpoint), config.agent.disable / .enable,
        config.agent.pause / .resume."""
        require(who, Permission.CONFIGURE)
        if endpoint is None and enabled is None and paused is None:
            raise InvalidInput("endpoint", "give an endpoint, enabled or paused")
        if endpoint is not None:
            check_endpoint(endpoint)
        for field, given in (("enabled", enabled), ("paused", paused)):
            if given is not None and not isinstance(given, bool):
                raise InvalidInput(field, "must be true or false")
        name = _known(name, "agent")
        if endpoint is not None:
            await self._refuse_while_busy(name, endpoint)
        agent = await self.store.update_agent(name, endpoint, enabled, paused)
        if endpoint is not None:
            await self.ctx.audit(who, "config.agent.update", f"agent:{agent.name}", endpoint)
        if enabled is not None:
            await self.ctx.audit(who, "config.agent.enable" if enabled else
                                 "config.agent.disable", f"agent:{agent.name}", "")
        if paused is not None:
            await self._audit_pause(who, agent)
        return agent

    async def pause_from_phone(self, endpoint: str, channel_name: str) -> Agent | None:
        """The agent's phone dialled the pause feature code: flip that agent's pause. Only a
        known, enabled agent's own endpoint may: `endpoint` (what the dialplan passed) must be
        the agent's and the channel (PJSIP/agent1-00000003) must be on it; else None and
        nothing changes. Audited as the phone (actor phone:<endpoint>), as a change in the
        panel would be."""
        if not channel_name.startswith(f"{endpoint}-"):
            return None
        for agent in await self.store.list_agents():
            if agent.endpoint == endpoint and agent.enabled:
                changed = await self.store.update_agent(agent.name, paused=not agent.paused)
                await self._audit_pause(Principal(f"phone:{endpoint}", Role.AGENT), changed)
                return changed
        return None

    async def _audit_pause(self, who: Principal, agent: Agent) -> None:
        await self.ctx.audit(who, "config.agent.pause" if agent.paused else
                             "config.agent.resume", f"agent:{agent.name}", "")

    async def _refuse_while_busy(self, name: str, endpoint: str) -> None:
        """A new endpoint while the engine in this process holds the old one for a call
        (on it, ringing, or kept for later) is refused: the engine knows an agent by its
        endpoint, and would ring the new one for another lead meanwhile. (An engine in
        another process is not seen from here.)"""
        activity = self.ctx.agent_activity() if self.ctx.agent_activity else {}
        for agent in await self.store.list_agents():
            if (agent.name == name and agent.endpoint != endpoint
                    and activity.get(agent.endpoint) in _DOING):
                doing = _DOING.get(activity[agent.endpoint], "busy with a call")
                raise Conflict(f"agent {name!r} is {doing}: change its endpoint once it is"
                               " free")

    async def remove_agent(self, who: Principal, name: Any) -> None:
        """Refused (Conflict, naming them) while the agent is in a group."""
        require(who, Permission.CONFIGURE)
        gone = await self.store.remove_agent(_known(name, "agent"))
        await self.ctx.audit(who, "config.agent.remove", f"agent:{gone.name}", gone.endpoint)

    async def update_group(self, who: Principal, name: Any, *, strategy: Any = None,
                           ring_timeout: Any = None, agents: Any = None,
                           accept_digit: Any = KEEP, accept_timeout: Any = None) -> Group:
        """Its strategy, ring timeout, members (in the order given, replacing the old ones),
        accept digit (None turns it off) and timeout, any of them, validated as a new
        group's. Audited (config.group.update) with what it set."""
        require(who, Permission.CONFIGURE)
        if (strategy is None and ring_timeout is None and agents is None
                and accept_digit is KEEP and accept_timeout is None):
            raise InvalidInput("agents", "give a strategy, ring_timeout, agents, accept_digit"
                               " or accept_timeout")
        current = await self.store.get_group(_known(name, "group"))
        _, parsed, timeout = group_from_input(
            current.name, current.strategy.value if strategy is None else strategy,
            current.ring_timeout if ring_timeout is None else ring_timeout)
        accept = None
        if accept_digit is not KEEP or accept_timeout is not None:
            accept = accept_from_input(
                current.accept_digit if accept_digit is KEEP else accept_digit,
                current.accept_timeout if accept_timeout is None else accept_timeout)
        members = None if agents is None else _members(agents)
        group = await self.store.update_group(
            current.name, None if strategy is None else parsed,
            None if ring_timeout is None else timeout, members, accept=accept)
        detail = [f"strategy={parsed.value}"] if strategy is not None else []
        detail += [f"ring={timeout}s"] if ring_timeout is not None else []
        detail += [_accept_described(group)] if accept is not None else []
        if members is not None:
            detail.append("agents=" + ",".join(a.name for a in group.agents))
        await self.ctx.audit(who, "config.group.update", f"group:{group.name}", " ".join(detail))
        return group

    async def remove_group(self, who: Principal, name: Any) -> None:
        """Refused (Conflict, naming them) while a widget uses the group."""
        require(who, Permission.CONFIGURE)
        gone = await self.store.remove_group(_known(name, "group"))
        await self.ctx.audit(who, "config.group.remove", f"group:{gone.name}", _described(gone))

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

    async def widget(self, who: Principal, widget_id: str) -> Widget:
        require(who, Permission.CONFIGURE)
        return await self.store.get_widget(widget_id)

    async def edit_widget(self, who: Principal, widget_id: str, *, name: Any = None,
                          settings: Any = None, enabled: Any = None) -> Widget:
        """A widget's new name; its settings given merged over the current ones and the whole
        validated (widget_settings_from_input; its group must exist); `enabled` False or True
        disables or enables it. All of it is checked before anything is written. Audited:
        `config.widget.update` with the name and settings changed and their new values (JSON),
        `config.widget.disable` / `config.widget.enable`. A change nobody would see (the same
        values) writes and audits nothing."""
        require(who, Permission.CONFIGURE)
        widget = await self.store.get_widget(widget_id)
        new_name = widget.name if name is None else optional_text("name", name, 100)
        if new_name is None:
            raise InvalidInput("name", "must not be empty")
        if enabled is not None and not isinstance(enabled, bool):
            raise InvalidInput("enabled", "must be true or false")
        old = widget.settings.to_json()
        parsed = _merged(widget, settings).settings
        changed = {k: v for k, v in parsed.to_json().items() if _differs(v, old[k])}
        if new_name != widget.name:
            changed = {"name": new_name, **changed}
        if changed:
            widget = await self.store.update_widget(widget.id, new_name, parsed)
            await self.ctx.audit(who, "config.widget.update", f"widget:{widget.id}",
                                 json.dumps(changed, sort_keys=True, separators=(",", ":")))
        if enabled is not None and enabled != widget.enabled:
            widget = await self.store.set_widget_disabled(
                widget.id, None if enabled else self.ctx.clock())
            await self.ctx.audit(who, "config.widget.enable" if enabled
                                 else "config.widget.disable", f"widget:{widget.id}", "")
        return widget

    async def widget_preview(self, who: Principal, widget_id: str, settings: Any = None
                             ) -> Widget:
        """The widget as it would be with `settings` merged over its own (validated as
        edit_widget does), for the panel's preview: nothing written, nothing audited."""
        require(who, Permission.CONFIGURE)
        widget = await self.store.get_widget(widget_id)
        return _merged(widget, settings)

    async def set_widget_enabled(self, who: Principal, widget_id: str, enabled: bool
                                 ) -> Widget:
        """Disabled, a widget takes no new leads (its intake answers `widget-disabled`, its
        public config says `enabled: false`); the leads it took are called all the same."""
        return await self.edit_widget(who, widget_id, enabled=enabled)

    async def widget_references(self, who: Principal, widget_id: str) -> tuple[int, int]:
        """(its leads, the tombstones of its purged ones): while either is not 0, the widget
        can't be removed."""
        require(who, Permission.CONFIGURE)
        await self.store.get_widget(widget_id)
        return await self.store.widget_references(widget_id)

    async def removal_refused(self, who: Principal, widget_id: str) -> Conflict | None:
        """Why the widget can't be removed now, or None: while a lead (or a purged lead's
        tombstone) names it (WidgetInUse); while it is enabled or was disabled less than
        REMOVE_AFTER_DISABLED_S ago — a visitor's request that read it before may still be
        writing its lead (group commit under load: seconds), and a lead for a removed widget
        could not be kept."""
        require(who, Permission.CONFIGURE)
        widget = await self.store.get_widget(widget_id)
        leads, tombstones = await self.store.widget_references(widget.id)
        if leads or tombstones:
            return WidgetInUse(widget.id, leads, tombstones)
        if widget.disabled_at is None:
            return Conflict(f"widget {widget.id!r} is enabled: disable it first, then remove"
                            f" it {REMOVE_AFTER_DISABLED_S:.0f} s later")
        wait = widget.disabled_at + REMOVE_AFTER_DISABLED_S - self.ctx.clock()
        if wait > 0:
            return Conflict(f"widget {widget.id!r} was disabled only now: it can be removed in"
                            f" {wait:.0f} s (requests that read it before may still be writing"
                            " their lead)")
        return None

    async def remove_widget(self, who: Principal, widget_id: str) -> None:
        """The widget and its clause records, unless `removal_refused` says why not (raised;
        the store checks the leads again as it removes). Audited `config.widget.remove`."""
        refused = await self.removal_refused(who, widget_id)
        if refused is not None:
            raise refused
        widget = await self.store.get_widget(widget_id)
        await self.store.remove_widget(widget.id)
        await self.ctx.audit(who, "config.widget.remove", f"widget:{widget.id}",
                             f"name={widget.name}")

def _merged(widget: Widget, settings: Any) -> Widget:
    """The widget with the settings given (None: none) over its own, validated whole."""
    if settings is None:
        settings = {}
    if not isinstance(settings, dict):
        raise InvalidInput("settings", "must be an object")
    merged = widget_settings_from_input({**widget.settings.to_json(), **settings})
    return Widget(widget.id, widget.name, widget.public_key, merged, widget.disabled_at)


def _differs(new: Any, old: Any) -> bool:
    """A setting changed; a list's (regions, kinds, outcomes, origins, holidays: sets in
    all but the name) order alone is no change."""
    if isinstance(new, list) and isinstance(old, list):
        return sorted(new) != sorted(old)
    return new != old
