"""The CLI's roles (finding 10): a session's role is capped by what the configuration grants
the OS user who runs it; the audit log names that user."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest

from callengine import cli
from callengine.cli import common
from callengine.storage import Store
from tests.support import postgres
from tests.support.engine import DATA_KEY, DATA_KEY_B64, REPO
from tests.support.shop import ADMIN, shop_with_lead

ROLES_TABLE = '[cli]\nroles = { alice = "supervisor", carl = "agent" }\n'


@pytest.fixture
def shop(tmp_path, monkeypatch):
    """A configuration (the [cli] part is the test's) and a store with one lead."""
    env = {"CALLENGINE_ARI_PASSWORD": "x", "CALLENGINE_ADMIN_TOKEN": ADMIN,
           "CALLENGINE_DATA_KEY": DATA_KEY_B64}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("CALLENGINE_ACTOR", "CALLENGINE_ROLE"):
        monkeypatch.delenv(name, raising=False)

    async def seed() -> str:
        async with Store.open(tmp_path / "ce.db", DATA_KEY, keystore=tmp_path / "ks.db") as store:
            return (await shop_with_lead(store)).id

    lead_id = asyncio.run(seed())
    config = tmp_path / "c.toml"

    def configure(cli_part: str = "") -> list[str]:
        config.write_text('[store]\n' + postgres.url_line(tmp_path / "ce.db")
                          + 'database = "ce.db"\nkeystore = "ks.db"\n' + cli_part)
        return ["--config", str(config)]

    return configure, lead_id, env


def as_user(monkeypatch, name: str) -> None:
    monkeypatch.setattr(common, "os_user", lambda: name)


def test_without_a_roles_table_anyone_may_act_as_admin(shop, monkeypatch, capsys):
    configure, lead_id, _ = shop
    base = configure()
    as_user(monkeypatch, "bob")
    assert cli.main([*base, "agent", "add", "zed", "PJSIP/zed"]) == 0
    assert cli.main([*base, "--role", "viewer", "lead", "show", lead_id, "--unmask"]) == 3


def test_a_mapped_user_acts_at_most_in_their_role(shop, monkeypatch, capsys):
    configure, lead_id, _ = shop
    base = configure(ROLES_TABLE)
    as_user(monkeypatch, "alice")
    # default: the most alice may, supervisor (unmask yes, configure no)
    assert cli.main([*base, "lead", "show", lead_id, "--unmask"]) == 0
    assert "+48601234567" in capsys.readouterr().out
    assert cli.main([*base, "agent", "add", "zed", "PJSIP/zed"]) == 3
    assert "may not" in capsys.readouterr().err
    assert cli.main([*base, "--role", "admin", "agent", "list"]) == 3
    assert "OS user alice may act at most as supervisor, not admin" in capsys.readouterr().err
    monkeypatch.setenv("CALLENGINE_ROLE", "admin")
    assert cli.main([*base, "agent", "list"]) == 3  # the environment is no way round it
    monkeypatch.delenv("CALLENGINE_ROLE")
    # less is allowed (least privilege for a session): agent and viewer are within supervisor
    assert cli.main([*base, "--role", "viewer", "lead", "show", lead_id, "--unmask"]) == 3
    assert cli.main([*base, "--role", "agent", "lead", "list"]) == 0
    capsys.readouterr()
    # carl is an agent: viewer may read reports, which agent may not, so viewer is not "less"
    as_user(monkeypatch, "carl")
    assert cli.main([*base, "--role", "viewer", "lead", "list"]) == 3
    assert "at most as agent, not viewer" in capsys.readouterr().err


def test_an_unmapped_user_is_refused_unless_a_default_role_is_set(shop, monkeypatch, capsys):
    configure, lead_id, _ = shop
    as_user(monkeypatch, "mallory")
    base = configure(ROLES_TABLE)
    assert cli.main([*base, "lead", "list"]) == 3
    assert "OS user mallory has no CLI role" in capsys.readouterr().err
    base = configure(ROLES_TABLE + 'default_role = "viewer"\n')
    assert cli.main([*base, "lead", "show", lead_id]) == 0
    assert "+48 *** *** 567" in capsys.readouterr().out
    assert cli.main([*base, "lead", "show", lead_id, "--unmask"]) == 3


def test_the_audit_log_names_the_os_user_with_a_roles_table(shop, monkeypatch, capsys):
    configure, lead_id, _ = shop
    base = configure(ROLES_TABLE + 'default_role = "viewer"\n')
    as_user(monkeypatch, "alice")
    monkeypatch.setenv("CALLENGINE_ACTOR", "ops-anna")  # a label, not an identity
    assert cli.main([*base, "lead", "show", lead_id, "--unmask"]) == 0
    capsys.readouterr()
    as_user(monkeypatch, "root")
    base = configure('[cli]\nroles = { alice = "supervisor", root = "admin" }\n')
    assert cli.main([*base, "audit", "list"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["actor"] for e in entries if e["action"] == "numbers.unmask"] == [
        "cli:alice (ops-anna)"]


@pytest.mark.parametrize("cli_part, problem", [
    ('[cli]\nroles = { alice = "root" }\n', "cli.roles must map OS user names to roles"),
    ('[cli]\nroles = { alice = "viewer" }\ndefault_role = "boss"\n', "cli.default_role must be"),
    ('[cli]\ndefault_role = "viewer"\n', "cli.default_role needs a cli.roles table"),
    ('[cli]\nrole = "viewer"\n', "unknown key cli.role"),
])
def test_a_bad_cli_table_is_a_configuration_error(shop, cli_part, problem, capsys):
    configure, _, _ = shop
    assert cli.main([*configure(cli_part), "lead", "list"]) == 2
    assert problem in capsys.readouterr().err


def test_the_real_command_caps_the_real_os_user(shop, tmp_path):
    """As an outsider: the installed command, run by this machine's user, mapped to viewer."""
    import pwd

    configure, lead_id, env = shop
    me = pwd.getpwuid(os.geteuid()).pw_name
    base = configure(f'[cli]\nroles = {{ "{me}" = "viewer" }}\n')

    def callengine(*words: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "callengine", *base, *words], capture_output=True, text=True,
            env={**os.environ, **env, "USER": "alice", "LOGNAME": "alice"}, cwd=REPO, timeout=60)

    refused = callengine("--role", "admin", "lead", "show", lead_id, "--unmask")
    assert refused.returncode == 3
    assert f"OS user {me} may act at most as viewer, not admin" in refused.stderr
    shown = callengine("lead", "show", lead_id)
    assert shown.returncode == 0 and "+48 *** *** 567" in shown.stdout
    assert callengine("lead", "show", lead_id, "--unmask").returncode == 3


def test_lead_add_queues_a_callback_as_a_crm_would(shop, monkeypatch, capsys):
    import json

    configure, _, _ = shop
    base = configure(ROLES_TABLE)
    as_user(monkeypatch, "carl")  # an agent may not create leads
    assert cli.main([*base, "lead", "add", "shop", "+48 601 234 568", "--clause", "v1"]) == 3
    as_user(monkeypatch, "alice")
    capsys.readouterr()
    assert cli.main([*base, "lead", "add", "shop", "+48 601 234 568", "--clause", "v1",
                     "--marketing"]) == 0
    added = json.loads(capsys.readouterr().out)
    assert added["status"] == "queued" and added["scheduled_for"] is None
