"""`keys generate|data-key`: the recording recipient's key pair and the store's data key.
Neither needs a configuration."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from callengine.cli.common import AddCommand, group
from callengine.config import Config


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


def register(commands: argparse._SubParsersAction, command: AddCommand) -> None:
    keys = group(commands, "keys", "recording keys")
    sub = command("generate", cmd_keys_generate, "make a recipient key pair (X25519)", keys)
    sub.add_argument("--out", required=True, help="directory for NAME.key and NAME.pub")
    sub.add_argument("--name", default="recording")
    sub.set_defaults(needs_config=False)

    sub = command("data-key", cmd_keys_data_key, "make the store's data key", keys)
    sub.add_argument("--out", required=True, help="file to create (mode 0600)")
    sub.set_defaults(needs_config=False)
