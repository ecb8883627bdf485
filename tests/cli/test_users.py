"""`callengine user …`: the first admin and recovery, passwords never from argv."""

from __future__ import annotations

import asyncio
import json
import logging

import pyotp
import pytest

from callengine import cli
from callengine.services import Services
from callengine.services.users import LoginFailed, TotpRequired
from callengine.storage import Store
from tests.support.engine import DATA_KEY, DATA_KEY_B64
from tests.support.shop import ADMIN

PASSWORD = "first admin password"


@pytest.fixture
def base(tmp_path, monkeypatch):
    monkeypatch.setenv("CALLENGINE_ARI_PASSWORD", "x")
    monkeypatch.setenv("CALLENGINE_ADMIN_TOKEN", ADMIN)
    monkeypatch.setenv("CALLENGINE_DATA_KEY", DATA_KEY_B64)
    monkeypatch.setenv("CE_PASSWORD", PASSWORD)
    config = tmp_path / "c.toml"
    config.write_text('[store]\ndatabase = "ce.db"\nkeystore = "ks.db"\n')
    return ["--config", str(config)]


def login(tmp_path, name: str, password: str, code: str | None = None):
    async def go():
        async with Store.open(tmp_path / "ce.db", DATA_KEY, keystore=tmp_path / "ks.db") as s:
            return await Services(s).users.login(name, password, code, None)

    return asyncio.run(go())


def audit(tmp_path) -> list[tuple[str, str, str]]:
    async def go():
        async with Store.open(tmp_path / "ce.db", DATA_KEY, keystore=tmp_path / "ks.db") as s:
            return [(e.action, e.target, e.detail) for e in await s.audit_entries()]

    return asyncio.run(go())


def test_user_add_list_disable_reset_totp(base, tmp_path, capsys, caplog):
    caplog.set_level(logging.INFO)
    assert cli.main([*base, "user", "add", "root", "admin", "--password-env", "CE_PASSWORD"]) == 0
    out, err = capsys.readouterr()
    uri = out.strip()
    assert uri.startswith("otpauth://totp/callengine:root?secret=") and "shown only now" in err
    totp = pyotp.TOTP(pyotp.parse_uri(uri).secret)
    with pytest.raises(TotpRequired):
        login(tmp_path, "root", PASSWORD)
    assert login(tmp_path, "root", PASSWORD, totp.now()).principal.actor == "user:root"

    password_file = tmp_path / "pw"
    password_file.write_text("agent's long password\n")
    assert cli.main([*base, "user", "add", "anna", "agent", "--password-file",
                     str(password_file)]) == 0
    assert capsys.readouterr().out == ""  # no TOTP for an agent unless asked
    assert cli.main([*base, "user", "add", "anna", "agent", "--password-env", "CE_PASSWORD"]) == 1
    assert "exists already" in capsys.readouterr().err
    assert cli.main([*base, "user", "add", "bob", "viewer", "--password-env", "NOPE"]) == 2
    assert "$NOPE is not set" in capsys.readouterr().err
    monkey_short = tmp_path / "short"
    monkey_short.write_text("short\n")
    assert cli.main([*base, "user", "add", "bob", "viewer", "--password-file",
                     str(monkey_short)]) == 2
    assert "at least 12" in capsys.readouterr().err

    assert cli.main([*base, "user", "list"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(u["username"], u["role"], u["totp"]) for u in listed] == [
        ("anna", "agent", False), ("root", "admin", True)]
    assert listed[1]["last_login_at"] is not None
    assert cli.main([*base, "--role", "supervisor", "user", "list"]) == 3

    assert login(tmp_path, "anna", "agent's long password").principal.role.value == "agent"
    assert cli.main([*base, "user", "disable", "anna"]) == 0
    with pytest.raises(LoginFailed):
        login(tmp_path, "anna", "agent's long password")
    assert cli.main([*base, "user", "enable", "anna"]) == 0
    assert cli.main([*base, "user", "reset", "anna", "--password-env", "CE_PASSWORD"]) == 0
    with pytest.raises(LoginFailed):
        login(tmp_path, "anna", "agent's long password")
    assert login(tmp_path, "anna", PASSWORD).principal.actor == "user:anna"
    capsys.readouterr()
    assert cli.main([*base, "user", "totp", "root", "--remove"]) == 2
    assert cli.main([*base, "user", "totp", "anna"]) == 0
    assert capsys.readouterr().out.startswith("otpauth://totp/callengine:anna?")
    assert cli.main([*base, "user", "reset", "ghost", "--password-env", "CE_PASSWORD"]) == 1

    entries = audit(tmp_path)
    assert [a for a, _, _ in entries if a.startswith("users.")] == [
        "users.add", "users.add", "users.disable", "users.enable", "users.reset", "users.totp"]
    everything = caplog.text + capsys.readouterr().out + repr(entries)
    assert PASSWORD not in everything and "agent's long password" not in everything


def test_password_from_a_prompt_twice(base, tmp_path, monkeypatch, capsys):
    answers = iter([PASSWORD, PASSWORD, PASSWORD, "something else"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert cli.main([*base, "user", "add", "anna", "viewer"]) == 0
    assert cli.main([*base, "user", "add", "bob", "viewer"]) == 2
    assert "differ" in capsys.readouterr().err
    assert login(tmp_path, "anna", PASSWORD).principal.role.value == "viewer"
