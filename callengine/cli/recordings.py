"""`recording list|verify|export|delete`: the encrypted call recordings."""

from __future__ import annotations

import argparse
from pathlib import Path

from callengine.cli.common import AddCommand, emit, group, principal, run
from callengine.config import Config
from callengine.recordings import EXPORT_FORMATS


def cmd_recording_list(config: Config, args: argparse.Namespace) -> int:
    emit(run(config, lambda s: s.recordings.list(
        principal(args), lead_id=args.lead, include_deleted=args.all)))
    return 0


def cmd_recording_verify(config: Config, args: argparse.Namespace) -> int:
    async def verify(services):
        return await services.recordings.verify(args.id), services.recordings.can_open

    results, keyed = run(config, verify, args=args, vault=True)
    for result in results:
        if result.error is not None:
            print(f"{result.recording_id}: FAILED: {type(result.error).__name__}: {result.error}")
        else:
            print(f"{result.recording_id}: {result.report}"
                  + ("; SHA-256 DIFFERS FROM THE STORE" if result.sha256_differs else ""))
    failures = sum(not r.ok for r in results)
    total = len(results)
    print(f"{total - failures} of {total} recordings verified"
          + ("" if keyed else " (structure only: no private key)"))
    return 1 if failures else 0


def cmd_recording_export(config: Config, args: argparse.Namespace) -> int:
    fmt = args.format or Path(args.out).suffix.lstrip(".").lower() or "wav"
    plain = run(config, lambda s: s.recordings.export(principal(args), args.id, Path(args.out),
                                                      fmt), args=args, vault=True)
    print(f"exported {plain.duration_s:.1f} s ({plain.sample_rate} Hz) to {args.out}"
          + ("" if plain.complete else " (incomplete recording: its sealed part)"))
    return 0


def cmd_recording_delete(config: Config, args: argparse.Namespace) -> int:
    removed = run(config, lambda s: s.recordings.delete(principal(args), args.id),
                  args=args, vault=True)
    print(f"recording {args.id} crypto-shredded" if removed
          else f"recording {args.id}: key destroyed, file already gone; marked deleted")
    return 0


def register(commands: argparse._SubParsersAction, command: AddCommand) -> None:
    recording = group(commands, "recording", "encrypted call recordings")
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
    sub.add_argument("--format", choices=list(EXPORT_FORMATS))
    sub.add_argument("--key", action="append", help="private key file (repeatable)")
    sub.add_argument("--keystore", help="keystore file (default: the configured one)")
    sub = command("delete", cmd_recording_delete,
                  "crypto-shred a recording (its key, then its file)", recording)
    sub.add_argument("id")
