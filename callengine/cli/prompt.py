"""`prompt import`: audio files converted into prompts Asterisk plays."""

from __future__ import annotations

import argparse
from pathlib import Path

from callengine.cli.common import AddCommand, group
from callengine.config import Config
from callengine.model import check_name


def cmd_prompt_import(config: Config, args: argparse.Namespace) -> int:
    from callengine.recordings import import_prompt

    name = check_name("name", args.name)
    target = import_prompt(Path(args.file), config.prompts.dir, name)
    print(f"prompt written to {target}; use it as sound:{config.prompts.dir_asterisk}/{name}")
    return 0


def register(commands: argparse._SubParsersAction, command: AddCommand) -> None:
    prompt = group(commands, "prompt", "prompts Asterisk plays")
    sub = command("import", cmd_prompt_import,
                  "convert an audio file (any format ffmpeg reads) into a prompt", prompt)
    sub.add_argument("file")
    sub.add_argument("name")
