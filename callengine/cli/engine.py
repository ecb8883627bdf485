"""`run`, `check-config`, `migrate`: the engine itself and its configuration."""

from __future__ import annotations

import argparse
import sys

from callengine.cli.common import AddCommand, run
from callengine.config import Config
from callengine.errors import LeaseLost
from callengine.logs import setup_logging


def cmd_run(config: Config, args: argparse.Namespace) -> int:
    from callengine.app import serve

    import uvloop

    setup_logging(config.log_level, config.log_format)
    try:
        uvloop.run(serve(config))  # libuv's loop: the same asyncio API, less CPU per request
    except ExceptionGroup as group:
        if group.subgroup(LeaseLost) is None or group.subgroup(
                lambda exc: not isinstance(exc, (LeaseLost, ExceptionGroup))) is not None:
            raise
        # Logged where it was found; its calls are another engine's now.
        print("callengine: stopped: this engine's lease was taken by another (see the log)",
              file=sys.stderr)
        return 1
    return 0


def cmd_check_config(config: Config, args: argparse.Namespace) -> int:
    """The file and secrets (parsed before this runs), then, unless --offline, whether ARI and
    AMI (where a secret is configured) answer with the configured credentials: exit 1 if not."""
    print(f"configuration OK (store {config.database}, ARI {config.ari.url})")
    settings = config.recording
    if settings.public_key_file is not None:
        print(f"recording: {settings.route} route, {settings.sample_rate} Hz")
        if settings.route == "fifo":
            _print_fifo_capacity(settings.fifo_slack_s, settings.sample_rate,
                                 config.dialing.max_concurrent_calls)
    if args.offline:
        return 0
    import asyncio

    from callengine.app import check_asterisk

    probes = asyncio.run(check_asterisk(config))
    for ok, message in probes:
        print(("ok: " if ok else "FAILED: ") + message)
    return 0 if all(ok for ok, _ in probes) else 1


def _print_fifo_capacity(slack_s: float, sample_rate: int, wanted: int) -> None:
    """How many FIFO recordings the kernel lets this user hold at once (docs/recording-taps.md,
    "The pipe budget"). A recording over the budget is refused, not recorded with less slack."""
    from callengine.audio import bytes_per_second
    from callengine.media.pipe_sizes import concurrent_fifo_capacity, pipe_size_for

    size = pipe_size_for(slack_s, sample_rate)
    seconds = size / bytes_per_second(sample_rate)
    fit = concurrent_fifo_capacity(size)
    print(f"FIFO pipe per recording: {size // 1024} KiB ({seconds:.0f} s of audio); concurrent "
          "recordings that fit under fs.pipe-user-pages-soft: "
          + ("unlimited" if fit is None else str(fit)))
    if seconds < 0.9 * slack_s:
        print(f"WARNING: /proc/sys/fs/pipe-max-size holds only {seconds:.1f} s of audio "
              f"(recording.fifo_slack_s = {slack_s:g})")
    if fit is not None and fit < wanted:
        print(f"WARNING: {fit} FIFO recordings fit, dialing.max_concurrent_calls is {wanted}: "
              "recordings beyond that are refused (their calls go on unrecorded); raise "
              "fs.pipe-user-pages-soft or give the engine CAP_SYS_RESOURCE")


def cmd_db_migrate(config: Config, args: argparse.Namespace) -> int:
    version = run(config, lambda services: services.schema_version())
    print(f"store schema at version {version}")
    return 0


def cmd_move_store(config: Config, args: argparse.Namespace) -> int:
    """Copy the SQLite store into an empty PostgreSQL database (the engines stopped); then
    set store.url (docs/scale-out.md, "From SQLite to PostgreSQL")."""
    import asyncio

    from callengine.services.moving import move_store

    copied = asyncio.run(move_store(config, args.url))
    for table, rows in copied.items():
        print(f"{table}: {rows} row(s)")
    print(f"copied {sum(copied.values())} row(s) from {config.database}; now set"
          f" [store] url = \"{args.url}\" (the keystore stays {config.keystore})")
    return 0


def register(commands: argparse._SubParsersAction, command: AddCommand) -> None:
    command("run", cmd_run, "run the engine: ARI controller and HTTP API")
    check = command("check-config", cmd_check_config,
                    "validate the configuration and secrets; check that ARI and AMI answer")
    check.add_argument("--offline", action="store_true",
                       help="the file and secrets only: do not connect to ARI or AMI")
    command("migrate", cmd_db_migrate, "create or upgrade the store's schema")
    move = command("move-store", cmd_move_store,
                   "copy the SQLite store into an empty PostgreSQL database (engines stopped)")
    move.add_argument("url", help="postgresql://[user@]host[:port]/database (the password:"
                                  " store.password_file or CALLENGINE_STORE_PASSWORD)")
