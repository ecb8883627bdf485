"""`token create|revoke|list`: API tokens with roles."""

from __future__ import annotations

import argparse
import sys

from callengine.access import Role
from callengine.cli.common import AddCommand, emit, group, principal, run
from callengine.config import Config


def cmd_token_create(config: Config, args: argparse.Namespace) -> int:
    made = run(config, lambda s: s.tokens.create(principal(args), args.name, args.token_role))
    print(made.token)
    print(f"token {made.name} ({made.role.value}) created; it is shown only now",
          file=sys.stderr)
    return 0


def cmd_token_revoke(config: Config, args: argparse.Namespace) -> int:
    run(config, lambda s: s.tokens.revoke(principal(args), args.name))
    print(f"token {args.name} revoked")
    return 0


def cmd_token_list(config: Config, args: argparse.Namespace) -> int:
    emit(run(config, lambda s: s.tokens.list(principal(args))))
    return 0


def register(commands: argparse._SubParsersAction, command: AddCommand) -> None:
    token = group(commands, "token", "API tokens with roles")
    sub = command("create", cmd_token_create, "create a token (printed once)", token)
    sub.add_argument("name")
    sub.add_argument("token_role", metavar="ROLE", choices=[r.value for r in Role])
    sub = command("revoke", cmd_token_revoke, "revoke a token", token)
    sub.add_argument("name")
    command("list", cmd_token_list, "list tokens (never the tokens themselves)", token)
