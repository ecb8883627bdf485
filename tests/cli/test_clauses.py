"""`callengine clause add|list|show`: the exact text from a file, its hash, immutability."""

from __future__ import annotations

import hashlib
import json

from callengine import cli
from tests.cli import test_roles
from tests.cli.test_roles import as_user

shop = test_roles.shop  # the fixture

TEXT = "Administrator danych: Sklep. Zgoda jest dobrowolna. \n"


def test_clause_add_list_show(shop, monkeypatch, capsys, tmp_path):
    configure, _, _ = shop
    base = configure()
    as_user(monkeypatch, "bob")
    text = tmp_path / "clause.txt"
    text.write_bytes(TEXT.encode("utf-8"))
    add = [*base, "clause", "add", "shop", "--language", "pl", "--version", "v1",
           "--text", str(text), "--privacy-url", "https://shop.example/privacy"]
    assert cli.main(add) == 0
    digest = hashlib.sha256(TEXT.encode("utf-8")).hexdigest()
    assert digest in capsys.readouterr().out
    assert cli.main(add) != 0  # the version exists: a new text is a new version
    capsys.readouterr()
    assert cli.main([*base, "clause", "show", "shop", "--language", "pl", "--version", "v1"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["text"] == TEXT and shown["sha256"] == digest
    assert cli.main([*base, "clause", "list", "shop"]) == 0
    assert [c["version"] for c in json.loads(capsys.readouterr().out)] == ["v1"]
