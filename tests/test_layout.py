"""The layout's rules, checked: the import contracts in pyproject.toml (import-linter), that the
contracts name every module they should (so a new module can't slip past one), that no module
outside callengine/asterisk uses aiohttp's client, and that modules stay small."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "callengine"

# Modules allowed past ~500 lines, each with its reason.
LONG_MODULES: dict[str, str] = {
    "callengine/config.py": "every section's keys, defaults and checks in one place, read top "
                            "to bottom as docs/config.md is",
}
MAX_LINES = 520


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]


def _contracts() -> dict[str, dict]:
    return {contract["id"]: contract for contract in _pyproject()["importlinter"]["contracts"]}


def _allowed(contract_id: str) -> set[str]:
    return set(_pyproject()["callengine-layout"]["allowed"][contract_id])


def _top_level_modules() -> set[str]:
    names = set()
    for path in PACKAGE.iterdir():
        if path.name.startswith("_"):
            continue
        if path.suffix == ".py" or (path.is_dir() and (path / "__init__.py").exists()):
            names.add(f"callengine.{path.stem}")
    return names


def test_import_contracts_hold() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command;"
         " sys.exit(lint_imports_command())", "--no-cache"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("contract_id", ["only-asterisk-speaks-ari-ami", "only-storage-runs-sql",
                                         "only-crypto-uses-cryptography",
                                         "only-the-composition-root-knows-asterisk"])
def test_only_contracts_name_every_other_module(contract_id: str) -> None:
    """An 'only X may' contract lists every other top-level module as a source: a module added
    later must be added to it (or to the allowed ones here) deliberately."""
    contract = _contracts()[contract_id]
    allowed = _allowed(contract_id)
    sources = set(contract["source_modules"])
    assert sources | allowed == _top_level_modules(), (
        f"{contract_id}: add the missing modules to source_modules or allowed: "
        f"{sorted(_top_level_modules() - sources - allowed)}")
    assert not sources & allowed


def test_pure_core_contract_forbids_every_other_module() -> None:
    contract = _contracts()["pure-core-does-no-io"]
    core = set(contract["source_modules"])
    forbidden_internal = {m for m in contract["forbidden_modules"] if m.startswith("callengine.")}
    allowed = _allowed("pure-core-does-no-io")
    assert core | forbidden_internal | allowed == _top_level_modules(), (
        sorted(_top_level_modules() - core - forbidden_internal - allowed))


def test_aiohttp_client_only_in_asterisk_and_hooks() -> None:
    """import-linter sees packages, not aiohttp's client inside aiohttp: this sees the names
    (callengine/hooks posts the webhooks)."""
    client_names = {"ClientSession", "ClientResponse", "ClientError", "ClientTimeout",
                    "TCPConnector", "ws_connect", "request"}
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if {"asterisk", "hooks"} & set(path.relative_to(PACKAGE).parts):
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("aiohttp"):
                offenders += [f"{path}: {a.name}" for a in node.names if a.name in client_names]
            if (isinstance(node, ast.Attribute) and node.attr in client_names
                    and isinstance(node.value, ast.Name) and node.value.id == "aiohttp"):
                offenders.append(f"{path}:{node.lineno}: aiohttp.{node.attr}")
    assert not offenders


def test_modules_stay_small() -> None:
    long = {}
    for path in PACKAGE.rglob("*.py"):
        lines = len(path.read_text().splitlines())
        name = str(path.relative_to(REPO))
        if lines > MAX_LINES and name not in LONG_MODULES:
            long[name] = lines
    assert not long, f"split these (or name them in LONG_MODULES, with the reason): {long}"
