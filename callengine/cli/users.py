"""`user add|list|disable|enable|reset|totp`: the panel's people (the first admin, recovery).

A password never comes from the command line (it would be in `ps` and the shell's history): it
is asked for twice at a prompt, or read from a file (`--password-file`, `-` for stdin: its first
line) or an environment variable (`--password-env NAME`)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

from callengine.access import Role
from callengine.cli.common import AddCommand, emit, group, principal, run
from callengine.config import Config
from callengine.errors import InvalidInput


def read_password(args: argparse.Namespace) -> str:
    if args.password_env:
        value = os.environ.get(args.password_env)
        if not value:
            raise InvalidInput("password", f"${args.password_env} is not set")
        return value
    if args.password_file:
        text = (sys.stdin.read() if args.password_file == "-" else
                Path(args.password_file).read_text(encoding="utf-8"))
        lines = text.splitlines()
        return lines[0] if lines else ""
    first = getpass.getpass("new password: ")
    if getpass.getpass("again: ") != first:
        raise InvalidInput("password", "the two entries differ")
    return first


def _show_totp(uri: str | None, name: str) -> None:
    if uri:
        print(uri)
        print(f"add this otpauth URI to {name}'s authenticator app (shown only now)",
              file=sys.stderr)


def cmd_user_add(config: Config, args: argparse.Namespace) -> int:
    password = read_password(args)
    totp = True if args.totp else False if args.no_totp else None
    made = run(config, lambda s: s.users.add(principal(args), args.name, args.user_role,
                                             password, totp=totp))
    print(f"user {made.username} ({made.role.value}) added", file=sys.stderr)
    _show_totp(made.totp_uri, made.username)
    return 0


def cmd_user_list(config: Config, args: argparse.Namespace) -> int:
    emit(run(config, lambda s: s.users.list(principal(args))))
    return 0


def cmd_user_disable(config: Config, args: argparse.Namespace) -> int:
    run(config, lambda s: s.users.disable(principal(args), args.name))
    print(f"user {args.name} disabled; their sessions ended")
    return 0


def cmd_user_enable(config: Config, args: argparse.Namespace) -> int:
    run(config, lambda s: s.users.enable(principal(args), args.name))
    print(f"user {args.name} enabled")
    return 0


def cmd_user_reset(config: Config, args: argparse.Namespace) -> int:
    password = read_password(args)
    run(config, lambda s: s.users.reset(principal(args), args.name, password))
    print(f"user {args.name}: new password set, lockout cleared, sessions ended")
    return 0


def cmd_user_totp(config: Config, args: argparse.Namespace) -> int:
    uri = run(config, lambda s: s.users.reset_totp(principal(args), args.name,
                                                   remove=args.remove))
    if uri is None:
        print(f"user {args.name}: second factor removed")
    _show_totp(uri, args.name)
    return 0


def _password_options(sub: argparse.ArgumentParser) -> None:
    how = sub.add_mutually_exclusive_group()
    how.add_argument("--password-file", metavar="PATH",
                     help="read the password from the first line of PATH ('-': stdin)")
    how.add_argument("--password-env", metavar="NAME",
                     help="read the password from the environment variable NAME")


def register(commands: argparse._SubParsersAction, command: AddCommand) -> None:
    user = group(commands, "user", "people who log in to the panel (named, with a role)")
    sub = command("add", cmd_user_add, "add a user (a password prompt unless --password-*;"
                  " an admin gets a TOTP second factor, its URI printed once)", user)
    sub.add_argument("name")
    sub.add_argument("user_role", metavar="ROLE", choices=[r.value for r in Role])
    _password_options(sub)
    factor = sub.add_mutually_exclusive_group()
    factor.add_argument("--totp", action="store_true", help="enrol TOTP for a non-admin too")
    factor.add_argument("--no-totp", action="store_true",
                        help="no TOTP yet (an admin then can't log in until `user totp`)")
    command("list", cmd_user_list, "list users (never a password hash or secret)", user)
    sub = command("disable", cmd_user_disable, "disable a user (their sessions end)", user)
    sub.add_argument("name")
    sub = command("enable", cmd_user_enable, "enable a disabled user again", user)
    sub.add_argument("name")
    sub = command("reset", cmd_user_reset, "set a new password (recovery: clears the"
                  " lockout, ends the sessions)", user)
    sub.add_argument("name")
    _password_options(sub)
    sub = command("totp", cmd_user_totp, "enrol a new TOTP secret (URI printed once), or"
                  " --remove it (not for an admin)", user)
    sub.add_argument("name")
    sub.add_argument("--remove", action="store_true")
