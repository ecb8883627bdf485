"""What every command shares: the actor it acts as, running a use case against the services
opened from the configuration, and printing JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pwd
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from callengine.access import Permission, Principal, Role, allowed
from callengine.config import Config
from callengine.services import Services, open_services

T = TypeVar("T")

Handler = Callable[[Config, argparse.Namespace], int]
# command(name, handler, help, parent) -> the command's parser (see callengine.cli.build_parser)
AddCommand = Callable[..., argparse.ArgumentParser]


def emit(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


class RoleRefused(Exception):
    """The OS user may not act in the role asked for (exit 3, as Forbidden)."""


def os_user() -> str:
    """Who runs this process, as the system knows it (its effective uid, not $USER)."""
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def grants_within(wanted: Role, maximum: Role) -> bool:
    """Whether everything `wanted` may do, `maximum` may do too (supervisor covers agent and
    viewer; agent and viewer cover only themselves)."""
    return all(allowed(maximum, p) for p in Permission if allowed(wanted, p))


def resolve_role(config: Config, args: argparse.Namespace) -> None:
    """Fix `args.role`: the one asked for (--role, else $CALLENGINE_ROLE), else the most the
    OS user may act as; refused (RoleRefused) above that. The most: [cli] roles' entry for the
    user, else [cli] default_role; without a roles table, admin (docs/config.md, "[cli]")."""
    user = os_user()
    table = config.cli.roles
    if not table:
        maximum = Role.ADMIN
    elif (name := table.get(user, config.cli.default_role)) is None:
        raise RoleRefused(f"OS user {user} has no CLI role ([cli] roles; no default_role)")
    else:
        maximum = Role(name)
    asked = args.role or os.environ.get("CALLENGINE_ROLE") or maximum.value
    if asked not in {r.value for r in Role}:
        raise RoleRefused(f"unknown role {asked!r} ($CALLENGINE_ROLE)")
    if not grants_within(Role(asked), maximum):
        raise RoleRefused(f"OS user {user} may act at most as {maximum.value}, not {asked}")
    args.role = asked
    args.actor = f"cli:{user}"
    if label := os.environ.get("CALLENGINE_ACTOR"):
        # A self-chosen name: the audit log's actor without a roles table (as before), next to
        # the OS user with one (where the user is what the role was checked against).
        args.actor = f"cli:{user} ({label})" if table else label


def principal(args: argparse.Namespace) -> Principal:
    """The CLI's actor for checks and the audit log: the OS user, in the role resolved for
    it (resolve_role)."""
    return Principal(args.actor, Role(args.role))


def run(config: Config, work: Callable[[Services], Awaitable[T]], *,
        args: argparse.Namespace | None = None, vault: bool = False) -> T:
    """Open the services (with `vault`: the recordings too, with the --key and --keystore
    given in `args` or the configured ones), do `work`, close them."""
    keys = getattr(args, "key", None)

    async def go() -> T:
        async with open_services(
            config, vault=vault, key_files=[Path(k) for k in keys] if keys else None,
            keystore=getattr(args, "keystore", None),
        ) as services:
            return await work(services)

    return asyncio.run(go())


def group(commands: Any, name: str, help_text: str) -> Any:
    """A command group (`callengine NAME ACTION`)."""
    return commands.add_parser(name, help=help_text).add_subparsers(
        dest="sub", required=True, metavar="ACTION")
