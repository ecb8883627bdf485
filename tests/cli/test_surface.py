"""The CLI's surface (commands, their arguments and choices) is pinned here, so a change to it
is a decision, not an accident of moving code."""

from __future__ import annotations

import argparse

import pytest

from callengine.cli import build_parser

ROLES = ["admin", "supervisor", "agent", "viewer"]
WEBHOOK_EVENTS = ["lead.created", "attempt.finished", "call.connected", "lead.done",
                  "recording.ready", "subject.erased", "lead.purged", "*"]

SURFACE = {
    "": ["--version", ("--role", ROLES), "-c/--config"],
    "run": [],
    "check-config": ["--offline"],
    "migrate": [],
    "move-store": ["url"],
    "agent add": ["name", "endpoint"],
    "agent list": [],
    "agent edit": ["name", "--endpoint"],
    "agent disable": ["name"],
    "agent enable": ["name"],
    "agent pause": ["name"],
    "agent resume": ["name"],
    "agent remove": ["name"],
    "group add": ["name", "--agents", "--strategy", "--ring-timeout", "--accept-digit",
                  "--accept-timeout"],
    "group list": [],
    "group edit": ["name", "--agents", "--strategy", "--ring-timeout", "--accept-digit",
                   "--accept-timeout"],
    "group remove": ["name"],
    "widget add": ["id", "--name", "--group", "--regions", "--caller-id", "--visitor-endpoint",
                   "--default-region", "--whisper", "--settings", "-q/--quiet"],
    "widget list": [],
    "widget show": ["id"],
    "widget edit": ["id", "--name", "--group", "--regions", "--caller-id", "--visitor-endpoint",
                    "--default-region", "--whisper", "--settings"],
    "widget disable": ["id"],
    "widget enable": ["id"],
    "widget remove": ["id"],
    "lead list": ["--widget", ("--status", ["queued", "calling", "done"]),
                  ("--outcome", ["connected", "agents-no-answer", "agents-busy", "visitor-busy",
                                 "visitor-no-answer", "visitor-unreachable", "failed",
                                 "erased"]),
                  "--from", "--to", "--limit", "--unmask"],
    "lead show": ["id", "--unmask"],
    "lead add": ["widget", "phone", "--clause", "--name", "--email", "--marketing", "--recording",
                 "--slot", "--at"],
    "clause add": ["widget", "--language", "--version", "--text", "--privacy-url", "--notice",
                   "--notice-version", "--replace"],
    "clause list": ["widget", "--language"],
    "clause show": ["widget", "--language", "--version"],
    "token create": ["name", ("token_role", ROLES)],
    "token revoke": ["name"],
    "token list": [],
    "webhook add": ["url", ("--event", WEBHOOK_EVENTS), "--description", "--full-numbers"],
    "webhook list": [],
    "webhook update": ["id", "--url", ("--event", WEBHOOK_EVENTS), "--full-numbers", "--enabled"],
    "webhook remove": ["id"],
    "webhook rotate": ["id", "--grace"],
    "webhook deliveries": [("--status", ["pending", "delivered", "dead"]), "--endpoint",
                           "--limit"],
    "webhook attempts": ["delivery"],
    "webhook replay": ["--delivery", "--endpoint"],
    "user add": ["name", ("user_role", ROLES), "--password-file", "--password-env", "--totp",
                 "--no-totp"],
    "user list": [],
    "user disable": ["name"],
    "user enable": ["name"],
    "user reset": ["name", "--password-file", "--password-env"],
    "user totp": ["name", "--remove"],
    "audit verify": [],
    "audit list": ["--last"],
    "keys generate": ["--out", "--name"],
    "keys data-key": ["--out"],
    "recording list": ["--lead", "--all"],
    "recording verify": ["id", "--key"],
    "recording export": ["id", "--out", ("--format", ["wav", "mp3", "ogg"]), "--key",
                         "--keystore"],
    "recording delete": ["id"],
    "subject export": ["number", "--out", "--audio", "--key"],
    "subject erase": ["number", "--yes"],
    "report": ["widget", "--from", "--to", ("--format", ["csv", "json"]), "--unmask"],
    "backup": ["--out", "--recipient"],
    "restore": ["backup", "--into", "--key"],
    "purge": ["--dry-run"],
    "prompt import": ["file", "name"],
}


def _surface(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> dict[str, list]:
    found: dict[str, list] = {}
    options: list = []
    groups = False
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            groups = True
            for name, sub in action.choices.items():
                found.update(_surface(sub, (*path, name)))
        elif not isinstance(action, argparse._HelpAction):
            name = "/".join(action.option_strings) or action.dest
            options.append((name, list(action.choices)) if action.choices else name)
    if not groups or not path:  # a group without its actions has no options of its own
        found[" ".join(path)] = options
    return found


def test_commands_and_their_options_are_as_documented():
    assert _surface(build_parser()) == SURFACE


@pytest.mark.parametrize("command", [c for c in SURFACE if c])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*command.split(), "--help"])
    assert exit_.value.code == 0
    assert "usage: callengine" in capsys.readouterr().out
