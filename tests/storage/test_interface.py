"""The SQLite Store implements the Storage Protocol, and PurgeBatches PurgeBatchStorage: every
method the Protocol lists exists with the same parameters, types and return type, and is async
where the Protocol's is; and the rest of callengine uses no Store method the Protocol lacks."""

from __future__ import annotations

import ast
import collections.abc
import contextlib
import inspect
import typing
from pathlib import Path

import pytest

from callengine.storage import PurgeBatches, PurgeBatchStorage, Storage, Store
from callengine.storage.pg.store import PgPurgeBatches, PgStore
from tests.support.engine import DATA_KEY, REPO

# What a protocol's method may return, and what the implementation then returns: a
# Protocol's context manager is, in the SQLite code, an @asynccontextmanager generator.
_CONTEXT_MANAGERS = {contextlib.AbstractAsyncContextManager: collections.abc.AsyncIterator}
IMPLEMENTATIONS = {PurgeBatchStorage: PurgeBatches, Storage: Store}
PG_IMPLEMENTATIONS = {PurgeBatchStorage: PgPurgeBatches, Storage: PgStore}


def _methods(protocol: type) -> list[str]:
    return sorted(name for name, value in vars(protocol).items()
                  if callable(value) and not name.startswith("_"))


def _same_type(wanted, found) -> bool:
    if wanted == found:
        return True
    origin, args = typing.get_origin(wanted), typing.get_args(wanted)
    if typing.get_origin(found) != _CONTEXT_MANAGERS.get(origin, origin):
        return False
    found_args = typing.get_args(found)
    return len(args) == len(found_args) and all(
        IMPLEMENTATIONS.get(a) is f or _same_type(a, f) for a, f in zip(args, found_args))


def _check(protocol: type, implementation: type) -> None:
    for name in _methods(protocol):
        wanted_fn = getattr(protocol, name)
        found_fn = getattr(implementation, name, None)
        assert found_fn is not None, f"{implementation.__name__} lacks {name}"
        wanted, found = inspect.signature(wanted_fn), inspect.signature(found_fn)
        assert list(wanted.parameters) == list(found.parameters), name
        for parameter in wanted.parameters.values():
            other = found.parameters[parameter.name]
            assert (parameter.kind, parameter.default) == (other.kind, other.default), \
                f"{name}({parameter.name})"
        wanted_hints = typing.get_type_hints(wanted_fn)
        found_hints = typing.get_type_hints(found_fn)
        for key, hint in wanted_hints.items():
            assert _same_type(hint, found_hints.get(key)), f"{name}: {key}"
        assert inspect.iscoroutinefunction(wanted_fn) == inspect.iscoroutinefunction(found_fn), \
            f"{name}: async in one, not in the other"


@pytest.mark.parametrize("protocol", list(IMPLEMENTATIONS), ids=lambda p: p.__name__)
def test_the_sqlite_classes_implement_the_protocols(protocol):
    _check(protocol, IMPLEMENTATIONS[protocol])


@pytest.mark.parametrize("protocol", list(PG_IMPLEMENTATIONS), ids=lambda p: p.__name__)
def test_the_postgresql_classes_implement_the_protocols(protocol, monkeypatch):
    # (a context manager's value is the backend's own class)
    monkeypatch.setitem(IMPLEMENTATIONS, PurgeBatchStorage, PgPurgeBatches)
    _check(protocol, PG_IMPLEMENTATIONS[protocol])


def test_the_check_sees_a_difference():
    class Wrong:
        async def get_lead(self, lead: str) -> object: ...

    class Lacking:
        pass

    class Protocol(typing.Protocol):
        async def get_lead(self, lead_id: str) -> int: ...

    for implementation in (Wrong, Lacking):
        with pytest.raises(AssertionError):
            _check(Protocol, implementation)


async def test_an_open_store_is_a_storage(tmp_path):
    async with Store.open(tmp_path / "ce.db", DATA_KEY) as store:
        assert isinstance(store, Storage)
        async with store.purge_batches() as batches:
            assert isinstance(batches, PurgeBatchStorage)


def _store_attributes(source: str) -> set[str]:
    """x of every `store.x`, `self._store.x`, `deps.store.x` (not `config.store.x`)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Attribute):
            continue
        owner = node.value
        if isinstance(owner, ast.Name) and owner.id in ("store", "_store"):
            found.add(node.attr)
        elif (isinstance(owner, ast.Attribute) and owner.attr in ("store", "_store")
              and not (isinstance(owner.value, ast.Name) and owner.value.id == "config")):
            found.add(node.attr)
    return found


def test_callers_use_only_what_the_protocol_lists():
    """Every Store attribute the rest of callengine uses is a Storage member, so a second
    backend that implements the Protocol serves them all."""
    members = set(_methods(Storage)) | set(typing.get_type_hints(Storage))
    sqlite_only = {"open"}  # the composition root's: backend-specific by nature
    used: set[str] = set()
    for path in (Path(REPO) / "callengine").rglob("*.py"):
        if "storage" not in path.relative_to(REPO).parts:
            used |= _store_attributes(path.read_text())
    assert len(used) > 30  # the check sees the callers
    assert used - members - sqlite_only == set()


def test_the_protocol_promises_erasure_that_is_true_or_loud():
    """A second backend must offer the erasure steps (and say in their docs what they keep)."""
    for name in ("forget_number", "forget_unused_subjects", "forget_deleted_pages",
                 "scrub_pending", "leads_for_number"):
        assert name in _methods(Storage), name
    assert "subjects_of" in _methods(PurgeBatchStorage)
    assert "ErasureIncomplete" in (Storage.forget_deleted_pages.__doc__ or "")
