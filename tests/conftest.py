"""Shared fixtures: the real Asterisk (session) and a clean slate per test.

Tests that need Asterisk either use the `asterisk` fixture or are marked
@pytest.mark.asterisk; both get `clean_asterisk`, which fails a test that
leaves channels or bridges behind. Without the chroot or sipp these tests are
skipped, except in CI (CI=true), where that is a failure. A test that uses
`second_asterisk` (a second Asterisk "node" on 127.0.0.2) counts as one too,
and must leave that node clean as well.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.support.asterisk import (
    LOCK_PATH,
    NODE2_ADDRESS,
    Asterisk,
    missing_prerequisites,
    node2_var_dir,
)
from tests.support.ci import unavailable
from tests.support.logcheck import full_numbers_in


def pytest_collection_modifyitems(config, items):
    # Using the fixture is enough to count as an Asterisk test.
    for item in items:
        names = getattr(item, "fixturenames", ())
        if ("asterisk" in names or "second_asterisk" in names) and item.get_closest_marker("asterisk") is None:
            item.add_marker(pytest.mark.asterisk)


def _lock():
    """Hold /tmp/callengine-asterisk.lock: one test run per machine uses the fixed ports."""
    try:
        fd = os.open(LOCK_PATH, os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError:
        fd = os.open(LOCK_PATH, os.O_RDONLY)  # another user's file: flock works read-only too
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"\nwaiting for {LOCK_PATH}: another test run uses Asterisk", file=sys.__stderr__, flush=True)
        fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


@pytest.fixture(scope="session")
def asterisk():
    """The real Asterisk 22, freshly (re)started with the current configs.

    Attributes: ari_url, ari_ws_url, ari_user, ari_password, ami (host, port,
    username, secret), state_dir/host_path()/recording_dir; methods cli(cmd),
    restart(), start(), stop(), async channels()/bridges()/ari(method, path).
    """
    missing = missing_prerequisites()
    if missing:
        unavailable("the real-Asterisk tests need: " + "; ".join(missing))
    fd = _lock()
    instance = Asterisk()
    try:
        # Stop first: a leftover instance may run with older configs.
        instance.stop()
        instance.start()
        yield instance
    finally:
        try:
            instance.stop()
        finally:
            os.close(fd)


@pytest.fixture(scope="session")
def second_asterisk(asterisk):
    """A second real Asterisk 22 beside `asterisk` (a second "node"), started by the first test
    that asks for it and stopped at the session's end. Same configs and ports, bound to its own
    loopback address (NODE2_ADDRESS, 127.0.0.2) with its own state dir and secrets
    ($CALLENGINE_VAR/node2): ari_url http://127.0.0.2:8088/ari, ari_ws_url, ari_user,
    ari_password, ami (host 127.0.0.2, port 5038), address; the same methods as `asterisk`.
    Its test endpoints reach phones on its own address with the usual ports (agentN:
    127.0.0.2:508N, pstn: 127.0.0.2:5070): `second_asterisk.phone(agent_port(1))` or
    Phone(..., host=second_asterisk.address). Holds `asterisk`'s lock through that fixture."""
    instance = Asterisk(node2_var_dir(asterisk.var_dir), asterisk.chroot, address=NODE2_ADDRESS)
    try:
        instance.stop()  # a leftover from an aborted run may have older configs
        instance.start()
        yield instance
    finally:
        instance.stop()


# ---- the two store backends ---------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL 15 cluster (tests/support/postgres.py) for the whole run."""
    from tests.support import postgres as support

    why = support.available()
    if why is not None:
        unavailable(why)
    var = Path(os.environ.get("CALLENGINE_VAR", Path(__file__).parent.parent / "var"))
    cluster = support.PostgresCluster(var)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


ON_POSTGRESQL = os.environ.get("CALLENGINE_TEST_STORE", "sqlite") == "postgresql"


def pytest_runtest_setup(item):
    if ON_POSTGRESQL and item.get_closest_marker("sqlite_only") is not None:
        pytest.skip("tests the SQLite backend itself (the suite runs on PostgreSQL)")


@pytest.fixture(autouse=True)
def store_backend(request, monkeypatch):
    """With CALLENGINE_TEST_STORE=postgresql, the whole suite's stores are PostgreSQL
    databases: every SQLite path a test names (Store.open in the test's own process,
    make_config and write_config for engines and CLIs) stands for a database of its own
    (tests/support/postgres.py url_for); the keystore stays a file, where the test puts it."""
    if not ON_POSTGRESQL:
        yield "sqlite"
        return
    from callengine.storage import Store
    from callengine.storage.pg.store import PgStore
    from tests.support import postgres as support

    cluster = support.ACTIVE = request.getfixturevalue("postgres")

    @asynccontextmanager
    async def open_postgresql(path, data_key, *, keystore=None, write_lock=None,
                              audit_dir=None):
        path = Path(path)
        async with PgStore.open(support.url_for(path), data_key,
                                keystore=keystore or path.with_name(path.name + "-keys"),
                                write_lock=write_lock,
                                audit_dir=audit_dir or path.parent / "keystore") as store:
            yield store

    monkeypatch.setattr(Store, "open", open_postgresql)
    try:
        yield "postgresql"
    finally:
        support.ACTIVE = None
        for url in support.STAND_INS.values():  # (a run makes ~1,700: ~7 MB each)
            cluster.drop_database(url)
        support.STAND_INS.clear()


@pytest.fixture(params=["sqlite", "postgresql"])
def open_store(request, tmp_path):
    """`open_store()`: the test's store, on each backend in turn (the same store each time it
    is opened again within the test): SQLite in tmp_path, or a database of its own on the
    session's PostgreSQL, with its keystore in tmp_path."""
    from tests.support.engine import DATA_KEY

    if request.param == "sqlite":
        from callengine.storage import Store

        yield lambda **options: Store.open(tmp_path / "ce.db", DATA_KEY, **options)
        return
    from callengine.storage.pg.store import PgStore

    cluster = request.getfixturevalue("postgres")
    url: list[str] = []

    @asynccontextmanager
    async def open_postgresql(**options):
        if not url:
            url.append(await cluster.new_database())
        async with PgStore.open(url[0], DATA_KEY, keystore=tmp_path / "ce.db-keys",
                                audit_dir=tmp_path / "keystore", **options) as store:
            yield store
    yield open_postgresql
    if url:
        cluster.drop_database(url[0])


@pytest.fixture(autouse=True)
def clean_asterisk(request):
    """After an Asterisk test: 0 channels and 0 bridges within 5 s, or the test fails."""
    if request.node.get_closest_marker("asterisk") is None:
        yield None
        return
    instance = request.getfixturevalue("asterisk")
    nodes = [instance]
    if "second_asterisk" in request.fixturenames:
        nodes.append(request.getfixturevalue("second_asterisk"))
    yield instance
    left = []
    for node in nodes:
        channels, bridges = node.wait_idle(5)
        if channels or bridges:
            node.clear()  # so the next test starts clean
            left.append(
                f"{len(channels)} channel(s) {[c.get('name') for c in channels]} and "
                f"{len(bridges)} bridge(s) {[b.get('id') for b in bridges]} on {node.address}"
            )
    if left:
        pytest.fail(f"the test left {'; '.join(left)} after 5 s", pytrace=False)


# ---- no full phone number in any log line -------------------------------------------------------

# Every callengine log record of every test is checked (the engine's own discipline: in-process
# tests run without the redacting filter the entry point installs).


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(f"{record.name}: {record.getMessage()}")
        except Exception:  # a broken record is logging's problem, not this check's
            pass


@pytest.fixture(autouse=True)
def no_phone_numbers_in_logs():
    handler = _Collect()
    engine_logger = logging.getLogger("callengine")
    previous = engine_logger.level
    engine_logger.setLevel(logging.DEBUG)  # every record reaches the root's handlers
    logging.getLogger().addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger().removeHandler(handler)
        engine_logger.setLevel(previous)
    leaks = [line for line in handler.lines if full_numbers_in(line)]
    assert not leaks, f"full phone numbers in log lines: {leaks[:5]}"
