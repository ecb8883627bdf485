"""`backup`, `restore`: an encrypted online backup of the store and the recordings."""

from __future__ import annotations

import argparse
from pathlib import Path

from callengine.cli.common import AddCommand, principal, resolve_role, run
from callengine.config import Config
from callengine.errors import InvalidInput
from callengine.recordings import load_private_keys


def cmd_backup(config: Config, args: argparse.Namespace) -> int:
    from rich.progress import Progress as Bar

    from callengine import crypto
    from callengine.services.backup import create_backup

    if config.store_url:
        # The backup's store part is a SQLite snapshot; a server's data is the server's own
        # tools' to back up (the keystore stays out of both: docs/backup.md).
        raise InvalidInput("store.url", "a PostgreSQL store is backed up with PostgreSQL's tools"
                           " (pg_dump, pg_basebackup) and the recordings directory with yours;"
                           " `callengine backup` backs up the SQLite store (docs/scale-out.md)")
    recording_ids, leads = run(config, lambda s: s.backup_contents(principal(args)))
    recipient_file = Path(args.recipient) if args.recipient else config.recording.public_key_file
    if recipient_file is None:
        raise InvalidInput("recipient", "give --recipient FILE.pub (or set "
                                        "recording.public_key_file)")
    recipient = crypto.load_public_key(recipient_file)
    with Bar(transient=True) as bar:
        task = bar.add_task("backing up recordings", total=len(recording_ids))
        summary = create_backup(
            Path(args.out), database=config.database, data_key=config.data_key,
            recordings_dir=config.recordings_dir, recording_ids=recording_ids,
            recipient_public_key=recipient, leads=leads,
            progress=lambda done, total: bar.update(task, completed=done),
        )
    run(config, lambda s: s.audit.record(
        principal(args), "backup.create", f"backup:{summary.path.name}",
        f"leads:{summary.leads} recordings:{summary.recordings} bytes:{summary.bytes}"
        f" key:{crypto.key_id(recipient).hex()}"))
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
    _audit_restore(args, Path(args.backup), into, manifest)
    print(f"restored {manifest['leads']} lead(s) and {manifest['recordings']} recording(s) "
          f"into {into}; configure:\n"
          f"[store]\ndatabase = \"{into / 'callengine.db'}\"\n"
          f"recordings_dir = \"{into / 'recordings'}\"\n"
          f"data_key_file = \"{into / 'data.key'}\"\n"
          "keystore = \"<the recording keystore, kept apart from backups>\"")
    return 0


def _audit_restore(args: argparse.Namespace, backup: Path, into: Path, manifest: dict) -> None:
    """With the live configuration (--config): a `backup.restore` entry in the live store, and
    the restored store made a chain of its own (a new identity, anchored in the same audit
    directory, its first entry saying what it was restored from); docs/audit.md."""
    import base64
    import dataclasses

    from callengine.config import ConfigError, load_config

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"note: no configuration ({exc.problems[0]}): the restore is not audited, and the"
              " restored store's audit chain is not re-anchored; `audit verify` on it will say"
              " so (docs/audit.md)")
        return
    resolve_role(config, args)  # restore needs no configuration, so main() did not resolve it
    what = f"backup:{backup.name}"
    detail = (f"into:{into} leads:{manifest.get('leads')} recordings:"
              f"{manifest.get('recordings')} made:{manifest.get('created_at')}")
    run(config, lambda s: s.audit.record(principal(args), "backup.restore", what, detail))
    restored = dataclasses.replace(
        config, database=into / "callengine.db",
        data_key=base64.b64decode((into / "data.key").read_text().strip()))
    run(restored, lambda s: s.audit.adopt_restored(principal(args), f"{what} {detail}"))


def register(commands: argparse._SubParsersAction, command: AddCommand) -> None:
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
