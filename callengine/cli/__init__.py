"""`callengine …`: run the engine and manage what it knows (agents, groups, widgets, leads).

One module per command group; each registers its commands and calls `callengine.services`.
`main` maps domain errors to messages and exit codes, here and only here: 2 bad input or
configuration, 3 not allowed, 1 anything else that failed, 130 interrupted."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from callengine import __version__
from callengine.access import Forbidden, Role
from callengine.services.backup import BackupError
from callengine.cli import (
    audit,
    backup,
    clauses,
    configure,
    engine,
    keys,
    leads,
    prompt,
    purge,
    recordings,
    report,
    subjects,
    tokens,
    users,
    webhook,
)
from callengine.cli.common import RoleRefused, resolve_role
from callengine.config import ConfigError, load_config
from callengine.crypto import RecordingError
from callengine.errors import Conflict, ErasureIncomplete, InvalidInput, NotFound
from callengine.logs import install_redaction
from callengine.numbers import NumberRejected
from callengine.recordings import RecordingUnavailable

GROUPS = (engine, configure, leads, clauses, tokens, users, webhook, audit, keys, recordings, subjects, report, backup,
          purge, prompt)  # in the order `callengine --help` lists them


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callengine",
        description="Self-hosted, privacy-first call-me-back engine for Asterisk.",
    )
    parser.add_argument("--version", action="version", version=f"callengine {__version__}")
    parser.add_argument(
        "--role", default=None, choices=[r.value for r in Role],
        help="act in this role (default: $CALLENGINE_ROLE, else the most your OS user may: "
             "[cli] roles in the configuration; admin without one); sensitive acts are audited",
    )
    parser.add_argument(
        "-c", "--config", default=os.environ.get("CALLENGINE_CONFIG", "callengine.toml"),
        help="configuration file (default: $CALLENGINE_CONFIG or ./callengine.toml)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[..., int], help_text: str,
                parent: Any = commands) -> argparse.ArgumentParser:
        sub = parent.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    for module in GROUPS:
        module.register(commands, command)
    return parser


def main(argv: list[str] | None = None) -> int:
    """The command line (`argv` None: the process's own, and the process is the CLI's, so its
    log records and tracebacks get the number redaction; tests pass `argv` and keep theirs)."""
    if argv is None:
        install_redaction()
    args = build_parser().parse_args(argv)
    try:
        if not getattr(args, "needs_config", True):
            return args.handler(None, args)
        config = load_config(args.config)
        resolve_role(config, args)
        return args.handler(config, args)
    except Exception as exc:
        message, code = error_exit(exc)
        if code is None:
            raise
        print(message, file=sys.stderr)
        return code
    except KeyboardInterrupt:
        return 130


def error_exit(exc: Exception) -> tuple[str, int | None]:
    """The one mapping: an error as the message printed and the exit code (None: a bug,
    raised with its trace)."""
    if isinstance(exc, (ConfigError, NumberRejected)):
        return f"callengine: {exc}", 2
    if isinstance(exc, InvalidInput):
        return f"callengine: invalid {exc.field}: {exc.message}", 2
    if isinstance(exc, json.JSONDecodeError):
        return f"callengine: --settings is not valid JSON: {exc}", 2
    if isinstance(exc, (Forbidden, RoleRefused)):
        return f"callengine: not allowed: {exc}", 3
    if isinstance(exc, (BackupError, NotFound, Conflict, RecordingUnavailable, FileExistsError)):
        return f"callengine: {exc}", 1
    if isinstance(exc, RecordingError):
        return f"callengine: {type(exc).__name__}: {exc}", 1
    if isinstance(exc, ErasureIncomplete):
        return f"callengine: ERASURE NOT COMPLETE: {exc}", 1
    return "", None
