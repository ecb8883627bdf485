"""`callengine …`: run the engine and manage what it knows (agents, groups, widgets, leads)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from callengine import __version__
from callengine.access import Forbidden, Permission, Principal, Role, require, token_hash
from callengine.access import verify_chain
from callengine.config import Config, ConfigError, load_config
from callengine.services.backup import BackupError
from callengine.crypto import RecordingError
from callengine.numbers import NumberRejected
from callengine.recordings import RecordingUnavailable
from callengine.logs import setup_logging
from callengine.errors import InvalidInput
from callengine.model import (
    agent_from_input,
    check_name,
    group_from_input,
    widget_settings_from_input,
)
from callengine.recordings import RecordingVault, load_private_keys
from callengine.errors import Conflict, NotFound
from callengine.storage import KeyStore, Store
from callengine.web import lead_admin_view, widget_view


def _print(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))


async def _with_store(config: Config, work: Callable[[Store], Awaitable[Any]]) -> Any:
    async with Store.open(config.database, config.data_key) as store:
        return await work(store)


def cmd_run(config: Config, args: argparse.Namespace) -> int:
    from callengine.app import serve

    setup_logging(config.log_level)
    asyncio.run(serve(config))
    return 0


def cmd_check_config(config: Config, args: argparse.Namespace) -> int:
    print(f"configuration OK (store {config.database}, ARI {config.ari.url})")
    settings = config.recording
    if settings.public_key_file is not None:
        print(f"recording: {settings.route} route, {settings.sample_rate} Hz")
        if settings.route == "fifo":
            _print_fifo_capacity(settings.fifo_slack_s, settings.sample_rate,
                                 config.dialing.max_concurrent_calls)
    return 0


def _print_fifo_capacity(slack_s: float, sample_rate: int, wanted: int) -> None:
    """How many FIFO recordings the kernel lets this user hold at once (docs/recording-taps.md,
    "The pipe budget"). A recording over the budget is refused, not recorded with less slack."""
    from callengine.media.fifo import concurrent_fifo_capacity, pipe_size_for
    from callengine.recorder import bytes_per_second

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
    version = asyncio.run(_with_store(config, lambda store: store.schema_version()))
    print(f"store schema at version {version}")
    return 0


def cmd_agent_add(config: Config, args: argparse.Namespace) -> int:
    agent = agent_from_input(args.name, args.endpoint)
    asyncio.run(_with_store(config, lambda store: store.add_agent(agent)))
    print(f"agent {agent.name} added ({agent.endpoint})")
    return 0


def cmd_agent_list(config: Config, args: argparse.Namespace) -> int:
    agents = asyncio.run(_with_store(config, lambda store: store.list_agents()))
    _print([{"name": a.name, "endpoint": a.endpoint, "enabled": a.enabled} for a in agents])
    return 0


def cmd_group_add(config: Config, args: argparse.Namespace) -> int:
    name, strategy, timeout = group_from_input(args.name, args.strategy, args.ring_timeout)
    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    group = asyncio.run(
        _with_store(config, lambda store: store.add_group(name, strategy, timeout, agents))
    )
    print(f"group {group.name} added: {', '.join(a.name for a in group.agents)}")
    return 0


def cmd_group_list(config: Config, args: argparse.Namespace) -> int:
    groups = asyncio.run(_with_store(config, lambda store: store.list_groups()))
    _print([
        {"name": g.name, "strategy": g.strategy.value, "ring_timeout": g.ring_timeout,
         "agents": [a.name for a in g.agents]}
        for g in groups
    ])
    return 0


def cmd_widget_add(config: Config, args: argparse.Namespace) -> int:
    widget_id = check_name("id", args.id)
    raw: dict[str, Any] = json.loads(args.settings) if args.settings else {}
    for key in ("group", "caller_id", "visitor_endpoint", "default_region", "whisper"):
        value = getattr(args, key)
        if value is not None:
            raw[key] = value
    if args.regions is not None:
        raw["allowed_regions"] = args.regions
    settings = widget_settings_from_input(raw)
    widget = asyncio.run(
        _with_store(
            config,
            lambda store: store.add_widget(widget_id, args.name or widget_id, settings, time.time()),
        )
    )
    if args.quiet:
        print(widget.public_key)
    else:
        _print(widget_view(widget))
    return 0


def cmd_widget_list(config: Config, args: argparse.Namespace) -> int:
    widgets = asyncio.run(_with_store(config, lambda store: store.list_widgets()))
    _print([widget_view(w) for w in widgets])
    return 0


def principal(args: argparse.Namespace) -> Principal:
    """The CLI's actor for checks and the audit log: the OS user, in the role given."""
    actor = os.environ.get("CALLENGINE_ACTOR") or f"cli:{getpass.getuser()}"
    return Principal(actor, Role(args.role))


def check(args: argparse.Namespace, permission: Permission) -> Principal:
    who = principal(args)
    require(who, permission)
    return who


async def _unmask(store: Store, args: argparse.Namespace, target: str) -> bool:
    """Numbers stay masked unless --unmask is given by a role that may see them: audited."""
    if not getattr(args, "unmask", False):
        return False
    who = check(args, Permission.UNMASK)
    await store.audit(who, "numbers.unmask", target, "cli", time.time())
    return True


def cmd_lead_list(config: Config, args: argparse.Namespace) -> int:
    check(args, Permission.READ_LEADS)

    async def listing(store: Store) -> list[dict[str, Any]]:
        leads = await store.list_leads(widget_id=args.widget, status=args.status,
                                       limit=args.limit)
        unmasked = bool(leads) and await _unmask(
            store, args, "leads:" + ",".join(lead.id for lead in leads))
        return [lead_admin_view(lead, unmasked) for lead in leads]

    _print(asyncio.run(_with_store(config, listing)))
    return 0


def cmd_lead_show(config: Config, args: argparse.Namespace) -> int:
    check(args, Permission.READ_LEADS)

    async def show(store: Store) -> dict[str, Any]:
        lead = await store.get_lead(args.id)
        view = lead_admin_view(lead, await _unmask(store, args, f"lead:{lead.id}"))
        view["attempts_detail"] = [a.__dict__ for a in await store.attempts_for(lead.id)]
        return view

    _print(asyncio.run(_with_store(config, show)))
    return 0


def cmd_token_create(config: Config, args: argparse.Namespace) -> int:
    who = check(args, Permission.CONFIGURE)
    name = check_name("name", args.name)
    role = Role(args.token_role)
    token = "ce_" + secrets.token_urlsafe(32)

    async def create(store: Store) -> None:
        await store.add_token(name, role, token_hash(token), time.time())
        await store.audit(who, "tokens.create", f"token:{name}", role.value, time.time())

    asyncio.run(_with_store(config, create))
    print(token)
    print(f"token {name} ({role.value}) created; it is shown only now", file=sys.stderr)
    return 0


def cmd_token_revoke(config: Config, args: argparse.Namespace) -> int:
    who = check(args, Permission.CONFIGURE)

    async def revoke(store: Store) -> None:
        await store.revoke_token(args.name, time.time())
        await store.audit(who, "tokens.revoke", f"token:{args.name}", "", time.time())

    asyncio.run(_with_store(config, revoke))
    print(f"token {args.name} revoked")
    return 0


def cmd_token_list(config: Config, args: argparse.Namespace) -> int:
    check(args, Permission.CONFIGURE)
    _print(asyncio.run(_with_store(config, lambda store: store.list_tokens())))
    return 0


def cmd_audit_verify(config: Config, args: argparse.Namespace) -> int:
    entries = asyncio.run(_with_store(config, lambda store: store.audit_entries()))
    problem = verify_chain(entries)
    if problem:
        print(f"audit log BROKEN: {problem}")
        return 1
    head = entries[-1].hash if entries else "(empty)"
    print(f"audit log intact: {len(entries)} entries, head {head}")
    return 0


def cmd_audit_list(config: Config, args: argparse.Namespace) -> int:
    check(args, Permission.CONFIGURE)
    entries = asyncio.run(_with_store(config, lambda store: store.audit_entries()))
    _print([e.__dict__ for e in entries[-args.last:]])
    return 0


def cmd_keys_generate(config: Config | None, args: argparse.Namespace) -> int:
    from callengine import crypto

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    private, public = crypto.generate_recipient_keypair()
    crypto.save_private_key(out / f"{args.name}.key", private)
    crypto.save_public_key(out / f"{args.name}.pub", public)
    print(f"key id {crypto.key_id(public).hex()}: public {out / (args.name + '.pub')} "
          f"(for recording hosts), private {out / (args.name + '.key')} (mode 0600; keep it "
          "off the recording host unless it must play recordings)")
    return 0


def cmd_keys_data_key(config: Config | None, args: argparse.Namespace) -> int:
    import base64

    from callengine import crypto

    out = Path(args.out)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(base64.b64encode(crypto.generate_data_key()).decode() + "\n")
    print(f"store data key written to {out} (mode 0600): point store.data_key_file at it, "
          "or pass it as CALLENGINE_DATA_KEY; without it the store's personal data is unreadable")
    return 0


async def _with_vault(config: Config, args: argparse.Namespace,
                      work: Callable[[Store, RecordingVault], Awaitable[Any]]) -> Any:
    """The store plus the recordings: files, keystore, and the private keys given with --key
    (or the configured ones); without any, recordings can be listed and shredded, not opened."""
    paths = [Path(k) for k in args.key] if getattr(args, "key", None) else list(
        config.recording.private_key_files)
    async with Store.open(config.database, config.data_key) as store, \
            KeyStore.open(getattr(args, "keystore", None) or config.keystore) as keystore:
        vault = RecordingVault(config.recordings_dir, keystore, load_private_keys(paths))
        return await work(store, vault)


def cmd_recording_list(config: Config, args: argparse.Namespace) -> int:
    recordings = asyncio.run(_with_store(
        config, lambda store: store.list_recordings(lead_id=args.lead,
                                                    include_deleted=args.all)))
    _print([r.view() for r in recordings])
    return 0


def cmd_recording_verify(config: Config, args: argparse.Namespace) -> int:
    from callengine import crypto

    async def verify(store: Store, vault: RecordingVault) -> tuple[int, int, bool]:
        recordings = await store.list_recordings()
        if args.id:
            recordings = [r for r in recordings if r.id in args.id]
            missing = set(args.id) - {r.id for r in recordings}
            if missing:
                raise NotFound("recording", sorted(missing)[0])
        failures = 0
        for recording in recordings:
            try:
                report = await vault.verify(recording)
                mismatch = recording.sha256 is not None and recording.sha256 != report.sha256
                print(f"{recording.id}: {report}"
                      + ("; SHA-256 DIFFERS FROM THE STORE" if mismatch else ""))
                failures += mismatch
            except (OSError, crypto.RecordingError, RecordingUnavailable) as exc:
                print(f"{recording.id}: FAILED: {type(exc).__name__}: {exc}")
                failures += 1
        return len(recordings), failures, bool(vault.private_keys)

    total, failures, keyed = asyncio.run(_with_vault(config, args, verify))
    print(f"{total - failures} of {total} recordings verified"
          + ("" if keyed else " (structure only: no private key)"))
    return 1 if failures else 0


def cmd_recording_export(config: Config, args: argparse.Namespace) -> int:
    who = check(args, Permission.PLAY_RECORDINGS)
    fmt = args.format or Path(args.out).suffix.lstrip(".").lower() or "wav"

    async def export(store: Store, vault: RecordingVault):
        recording = await store.get_recording(args.id)
        if recording.status == "deleted":
            raise NotFound("recording", args.id)
        await store.audit(who, "recordings.export", f"recording:{recording.id}",
                          f"lead:{recording.lead_id}", time.time())
        return await vault.export(recording, Path(args.out), fmt)

    plain = asyncio.run(_with_vault(config, args, export))
    print(f"exported {plain.duration_s:.1f} s ({plain.sample_rate} Hz) to {args.out}"
          + ("" if plain.complete else " (incomplete recording: its sealed part)"))
    return 0


def cmd_recording_delete(config: Config, args: argparse.Namespace) -> int:
    who = check(args, Permission.DELETE_RECORDINGS)

    async def delete(store: Store, vault: RecordingVault) -> int:
        recording = await store.get_recording(args.id)
        removed = await vault.shred([recording.id])
        await store.mark_recording_deleted(recording.id, time.time())
        await store.audit(who, "recordings.delete", f"recording:{recording.id}",
                          f"lead:{recording.lead_id}", time.time())
        return removed

    removed = asyncio.run(_with_vault(config, args, delete))
    print(f"recording {args.id} crypto-shredded" if removed
          else f"recording {args.id}: key destroyed, file already gone; marked deleted")
    return 0


def cmd_prompt_import(config: Config, args: argparse.Namespace) -> int:
    from callengine.recordings import import_prompt

    name = check_name("name", args.name)
    target = import_prompt(Path(args.file), config.prompts.dir, name)
    print(f"prompt written to {target}; use it as sound:{config.prompts.dir_asterisk}/{name}")
    return 0


def cmd_purge(config: Config, args: argparse.Namespace) -> int:
    from rich.progress import Progress as Bar

    from callengine.retention import Purger

    async def purge(store: Store, vault: RecordingVault):
        purger = Purger(store, vault)
        with Bar(transient=True) as bar:
            tasks: dict[str, Any] = {}

            def progress(what: str, done: int, total: int) -> None:
                if what not in tasks:
                    tasks[what] = bar.add_task(f"purging {what}", total=total)
                bar.update(tasks[what], completed=done)

            return await purger.run(time.time(), dry_run=args.dry_run, progress=progress)

    report = asyncio.run(_with_vault(config, args, purge))
    for widget_id, (leads, recordings) in sorted(report.by_widget.items()):
        print(f"  widget {widget_id}: {leads} expired lead(s), {recordings} expired recording(s)")
    print(report.summary())
    return 1 if report.skipped else 0


def cmd_subject_export(config: Config, args: argparse.Namespace) -> int:
    from rich.progress import Progress as Bar

    from callengine.numbers import any_number
    from callengine.subjects import export_subject

    who = check(args, Permission.EXPORT_SUBJECT)
    number = any_number(args.number)
    async def export(store: Store, vault: RecordingVault) -> dict[str, Any]:
        with Bar(transient=True) as bar:
            task = bar.add_task("decrypting recordings", total=None)
            return await export_subject(
                store, number.e164, who, time.time(), vault=vault,
                audio_dir=Path(args.audio) if args.audio else None,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )

    data = asyncio.run(_with_vault(config, args, export))
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if args.out:
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    recordings = sum(len(lead["recordings"]) for lead in data["leads"])
    print(f"exported {len(data['leads'])} lead(s), {recordings} recording(s) for {number}"
          + (f" (audio in {args.audio})" if args.audio else ""), file=sys.stderr)
    return 0


def cmd_subject_erase(config: Config, args: argparse.Namespace) -> int:
    from callengine.numbers import any_number
    from callengine.subjects import erase_subject

    who = check(args, Permission.ERASE_SUBJECT)
    number = any_number(args.number)
    if not args.yes:
        print(f"this erases everything held about {number}; add --yes to do it", file=sys.stderr)
        return 2
    erasure = asyncio.run(_with_vault(config, args, lambda store, vault: erase_subject(
        store, number.e164, who, time.time(), vault=vault)))
    print(f"erased {erasure.leads} lead(s) and crypto-shredded {erasure.recordings} "
          f"recording(s) of {number}")
    return 0


def cmd_report(config: Config, args: argparse.Namespace) -> int:
    from callengine.reports import call_report, parse_day, to_csv

    check(args, Permission.READ_REPORTS)
    try:
        start, end = parse_day(args.start), parse_day(args.end)
    except ValueError as exc:
        raise InvalidInput("period", str(exc)) from None

    async def build(store: Store) -> list[dict[str, Any]]:
        rows = await call_report(store, args.widget, start, end)
        if rows and await _unmask(store, args, f"report:{args.widget}:{args.start}..{args.end}"):
            rows = await call_report(store, args.widget, start, end, unmasked=True)
        return rows

    rows = asyncio.run(_with_store(config, build))
    print(to_csv(rows) if args.format == "csv" else json.dumps(rows, indent=2), end="")
    if args.format == "json":
        print()
    return 0


def cmd_backup(config: Config, args: argparse.Namespace) -> int:
    from rich.progress import Progress as Bar

    from callengine import crypto
    from callengine.services.backup import create_backup

    check(args, Permission.CONFIGURE)
    recipient_file = Path(args.recipient) if args.recipient else config.recording.public_key_file
    if recipient_file is None:
        raise InvalidInput("recipient", "give --recipient FILE.pub (or set "
                                        "recording.public_key_file)")
    recipient = crypto.load_public_key(recipient_file)

    async def contents(store: Store) -> tuple[list[str], int]:
        recordings = [r.id for r in await store.list_recordings()]
        leads = len(await store.list_leads(limit=10**9))
        return recordings, leads

    recording_ids, leads = asyncio.run(_with_store(config, contents))
    with Bar(transient=True) as bar:
        task = bar.add_task("backing up recordings", total=len(recording_ids))
        summary = create_backup(
            Path(args.out), database=config.database, data_key=config.data_key,
            recordings_dir=config.recordings_dir, recording_ids=recording_ids,
            recipient_public_key=recipient, leads=leads,
            progress=lambda done, total: bar.update(task, completed=done),
        )
    print(f"backup {summary.path}: {summary.leads} lead(s), {summary.recordings} recording(s),"
          f" {summary.bytes} bytes, encrypted for key id {crypto.key_id(recipient).hex()};"
          " the recording keystore is not in it (docs/backup.md)")
    return 0


def cmd_restore(config: Config | None, args: argparse.Namespace) -> int:
    from rich.progress import Progress as Bar

    from callengine.services.backup import restore_backup

    keys = load_private_keys([Path(k) for k in args.key])
    into = Path(args.into)
    with Bar(transient=True) as bar:
        task = bar.add_task("restoring recordings", total=None)
        manifest = restore_backup(Path(args.backup), keys, into,
                                  progress=lambda done, total: bar.update(
                                      task, completed=done, total=total))
    print(f"restored {manifest['leads']} lead(s) and {manifest['recordings']} recording(s) "
          f"into {into}; configure:\n"
          f"[store]\ndatabase = \"{into / 'callengine.db'}\"\n"
          f"recordings_dir = \"{into / 'recordings'}\"\n"
          f"data_key_file = \"{into / 'data.key'}\"\n"
          "keystore = \"<the recording keystore, kept apart from backups>\"")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callengine",
        description="Self-hosted, privacy-first call-me-back engine for Asterisk.",
    )
    parser.add_argument("--version", action="version", version=f"callengine {__version__}")
    parser.add_argument(
        "--role", default=os.environ.get("CALLENGINE_ROLE", "admin"),
        choices=[r.value for r in Role],
        help="act in this role (default: $CALLENGINE_ROLE or admin); sensitive acts are audited",
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

    command("run", cmd_run, "run the engine: ARI controller and HTTP API")
    command("check-config", cmd_check_config, "validate the configuration and secrets")
    command("migrate", cmd_db_migrate, "create or upgrade the store's schema")

    agent = commands.add_parser("agent", help="agents (SIP phones)").add_subparsers(
        dest="sub", required=True, metavar="ACTION")
    sub = command("add", cmd_agent_add, "add an agent", agent)
    sub.add_argument("name")
    sub.add_argument("endpoint", help="Asterisk dial string, e.g. PJSIP/agent1")
    command("list", cmd_agent_list, "list agents", agent)

    group = commands.add_parser("group", help="agent groups").add_subparsers(
        dest="sub", required=True, metavar="ACTION")
    sub = command("add", cmd_group_add, "add an agent group", group)
    sub.add_argument("name")
    sub.add_argument("--agents", required=True, help="comma-separated agent names, in order")
    sub.add_argument("--strategy", default="ring-all", help="ring-all or sequential")
    sub.add_argument("--ring-timeout", type=int, default=20, help="seconds an agent rings")
    command("list", cmd_group_list, "list agent groups", group)

    widget = commands.add_parser("widget", help="website widgets").add_subparsers(
        dest="sub", required=True, metavar="ACTION")
    sub = command("add", cmd_widget_add, "add a widget; prints its public key", widget)
    sub.add_argument("id")
    sub.add_argument("--name")
    sub.add_argument("--group", required=True)
    sub.add_argument("--regions", help="countries that may be called, e.g. PL,DE")
    sub.add_argument("--caller-id", dest="caller_id")
    sub.add_argument("--visitor-endpoint", dest="visitor_endpoint",
                     help="dial string with {number}, default PJSIP/{number}@pstn")
    sub.add_argument("--default-region", dest="default_region")
    sub.add_argument("--whisper", help="media played to the agent first, e.g. sound:beep")
    sub.add_argument("--settings", help="further settings as a JSON object (docs/config.md)")
    sub.add_argument("-q", "--quiet", action="store_true", help="print only the public key")
    command("list", cmd_widget_list, "list widgets", widget)

    lead = commands.add_parser("lead", help="callback requests").add_subparsers(
        dest="sub", required=True, metavar="ACTION")
    sub = command("list", cmd_lead_list, "list leads (numbers masked)", lead)
    sub.add_argument("--widget")
    sub.add_argument("--status", choices=["queued", "calling", "done"])
    sub.add_argument("--limit", type=int, default=50)
    sub.add_argument("--unmask", action="store_true", help="show full numbers (audited)")
    sub = command("show", cmd_lead_show, "one lead with its attempts", lead)
    sub.add_argument("id")
    sub.add_argument("--unmask", action="store_true", help="show the full number (audited)")

    token = commands.add_parser("token", help="API tokens with roles").add_subparsers(
        dest="sub", required=True, metavar="ACTION")
    sub = command("create", cmd_token_create, "create a token (printed once)", token)
    sub.add_argument("name")
    sub.add_argument("token_role", metavar="ROLE", choices=[r.value for r in Role])
    sub = command("revoke", cmd_token_revoke, "revoke a token", token)
    sub.add_argument("name")
    command("list", cmd_token_list, "list tokens (never the tokens themselves)", token)

    audit = commands.add_parser("audit", help="the tamper-evident audit log").add_subparsers(
        dest="sub", required=True, metavar="ACTION")
    command("verify", cmd_audit_verify, "check the audit log's hash chain", audit)
    sub = command("list", cmd_audit_list, "the last audit entries", audit)
    sub.add_argument("--last", type=int, default=50)

    keys = commands.add_parser("keys", help="recording keys").add_subparsers(
        dest="sub", required=True, metavar="ACTION")
    sub = command("generate", cmd_keys_generate, "make a recipient key pair (X25519)", keys)
    sub.add_argument("--out", required=True, help="directory for NAME.key and NAME.pub")
    sub.add_argument("--name", default="recording")
    sub.set_defaults(needs_config=False)

    sub = command("data-key", cmd_keys_data_key, "make the store's data key", keys)
    sub.add_argument("--out", required=True, help="file to create (mode 0600)")
    sub.set_defaults(needs_config=False)

    recording = commands.add_parser("recording", help="encrypted call recordings").add_subparsers(
        dest="sub", required=True, metavar="ACTION")
    sub = command("list", cmd_recording_list, "list recordings (numbers masked)", recording)
    sub.add_argument("--lead")
    sub.add_argument("--all", action="store_true", help="include deleted (tombstones)")
    sub = command("verify", cmd_recording_verify,
                  "authenticate recordings (structure only without a private key)", recording)
    sub.add_argument("id", nargs="*")
    sub.add_argument("--key", action="append", help="private key file (repeatable)")
    sub = command("export", cmd_recording_export, "decrypt to WAV, MP3 or OGG", recording)
    sub.add_argument("id")
    sub.add_argument("--out", required=True)
    sub.add_argument("--format", choices=["wav", "mp3", "ogg"])
    sub.add_argument("--key", action="append", help="private key file (repeatable)")
    sub.add_argument("--keystore", help="keystore file (default: the configured one)")
    sub = command("delete", cmd_recording_delete,
                  "crypto-shred a recording (its key, then its file)", recording)
    sub.add_argument("id")

    subject = commands.add_parser("subject", help="data-subject rights").add_subparsers(
        dest="sub", required=True, metavar="ACTION")
    sub = command("export", cmd_subject_export,
                  "everything held about a number, as JSON (audited)", subject)
    sub.add_argument("number")
    sub.add_argument("--out", help="write the JSON here (mode 0600) instead of stdout")
    sub.add_argument("--audio", help="also decrypt the recordings into this directory")
    sub.add_argument("--key", action="append", help="private key file (repeatable)")
    sub = command("erase", cmd_subject_erase,
                  "erase everything held about a number (audited)", subject)
    sub.add_argument("number")
    sub.add_argument("--yes", action="store_true", help="really erase")

    sub = command("report", cmd_report,
                  "calls of a widget in a period: outcomes, durations, consents (masked)")
    sub.add_argument("widget")
    sub.add_argument("--from", dest="start", required=True, help="first day, e.g. 2026-11-01")
    sub.add_argument("--to", dest="end", required=True, help="day after the last, e.g. 2026-12-01")
    sub.add_argument("--format", choices=["csv", "json"], default="csv")
    sub.add_argument("--unmask", action="store_true", help="full numbers (audited)")

    sub = command("backup", cmd_backup,
                  "encrypted online backup of the store and the recordings")
    sub.add_argument("--out", required=True, help="backup file to create")
    sub.add_argument("--recipient", help="public key to encrypt for (default: the recording key)")
    sub = command("restore", cmd_restore, "restore a backup into an empty directory")
    sub.add_argument("backup")
    sub.add_argument("--into", required=True, help="an empty (or new) directory")
    sub.add_argument("--key", action="append", required=True,
                     help="private key file that opens the backup (repeatable)")
    sub.set_defaults(needs_config=False)

    sub = command("purge", cmd_purge,
                  "purge leads and recordings past their widget's retention periods")
    sub.add_argument("--dry-run", action="store_true", help="only say what would go")

    prompt = commands.add_parser("prompt", help="prompts Asterisk plays").add_subparsers(
        dest="sub", required=True, metavar="ACTION")
    sub = command("import", cmd_prompt_import,
                  "convert an audio file (any format ffmpeg reads) into a prompt", prompt)
    sub.add_argument("file")
    sub.add_argument("name")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if not getattr(args, "needs_config", True):
            return args.handler(None, args)
        config = load_config(args.config)
        return args.handler(config, args)
    except ConfigError as exc:
        print(f"callengine: {exc}", file=sys.stderr)
        return 2
    except InvalidInput as exc:
        print(f"callengine: invalid {exc.field}: {exc.message}", file=sys.stderr)
        return 2
    except json.JSONDecodeError as exc:
        print(f"callengine: --settings is not valid JSON: {exc}", file=sys.stderr)
        return 2
    except Forbidden as exc:
        print(f"callengine: not allowed: {exc}", file=sys.stderr)
        return 3
    except BackupError as exc:
        print(f"callengine: {exc}", file=sys.stderr)
        return 1
    except NumberRejected as exc:
        print(f"callengine: {exc}", file=sys.stderr)
        return 2
    except (NotFound, Conflict, RecordingUnavailable, FileExistsError) as exc:
        print(f"callengine: {exc}", file=sys.stderr)
        return 1
    except RecordingError as exc:
        print(f"callengine: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
