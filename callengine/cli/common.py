"""What every command shares: the actor it acts as, running a use case against the services
opened from the configuration, and printing JSON."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from callengine.access import Principal, Role
from callengine.config import Config
from callengine.services import Services, open_services

T = TypeVar("T")

Handler = Callable[[Config, argparse.Namespace], int]
# command(name, handler, help, parent) -> the command's parser (see callengine.cli.build_parser)
AddCommand = Callable[..., argparse.ArgumentParser]


def emit(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


def principal(args: argparse.Namespace) -> Principal:
    """The CLI's actor for checks and the audit log: the OS user, in the role given."""
    actor = os.environ.get("CALLENGINE_ACTOR") or f"cli:{getpass.getuser()}"
    return Principal(actor, Role(args.role))


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
