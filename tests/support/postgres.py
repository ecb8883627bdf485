"""A throwaway PostgreSQL 15 cluster for the tests: initdb'd under var/ (or a temporary
directory when the server's user can't reach var/, e.g. a clone under /root), on a free port
of 127.0.0.1 and a socket directory of its own, trust authentication for local connections
only. PostgreSQL refuses to run as root: as root, the cluster runs as the `postgres` user the
Debian package creates. Stopped (and removed) at the end of the session.

Each test gets a database of its own (`PostgresCluster.new_database`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

BIN = Path("/usr/lib/postgresql/15/bin")
USER = "callengine"  # the cluster's superuser (initdb -U)


def available() -> str | None:
    """Why there can be no cluster here, or None."""
    if not (BIN / "initdb").exists():
        return "PostgreSQL 15 is not installed (apt-get install postgresql-15)"
    return None


class PostgresCluster:
    def __init__(self, var: Path, *, durable: bool = False):
        """durable: fsync on, as a server's (the benchmark); the tests' cluster skips it."""
        self._as_other = os.geteuid() == 0
        self._durable = durable
        self.base = self._home(var)
        self.data = self.base / "data"
        self.sockets = self.base / "sockets"
        self.port = _free_port()
        self.log = self.base / "server.log"

    def _home(self, var: Path) -> Path:
        var.mkdir(parents=True, exist_ok=True)
        candidate = Path(tempfile.mkdtemp(prefix="postgres-", dir=var))
        if self._as_other:
            shutil.chown(candidate, "postgres", "postgres")
            if self._run(["test", "-w", str(candidate)], check=False).returncode != 0:
                candidate.rmdir()  # postgres can't reach it (a parent is root's only)
                candidate = Path(tempfile.mkdtemp(prefix="callengine-postgres-"))
                shutil.chown(candidate, "postgres", "postgres")
        return candidate

    def _run(self, command: list[str], check: bool = True) -> subprocess.CompletedProcess:
        if self._as_other:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        self._run(["mkdir", "-p", str(self.sockets)])
        self._run([str(BIN / "initdb"), "-D", str(self.data), "-U", USER, "--auth=trust",
                   "--no-sync", "-E", "UTF8", "--locale=C"])
        options = (f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1"
                   f" -c fsync={'on' if self._durable else 'off'} -c max_connections=300")
        self._run([str(BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options,
                   "-w", "-t", "60", "start"])

    def stop(self) -> None:
        self._run([str(BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                  check=False)
        shutil.rmtree(self.base, ignore_errors=True)

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    async def new_database(self) -> str:
        """An empty database of its own; its DSN."""
        import asyncpg

        name = "t_" + uuid.uuid4().hex[:16]
        conn = await asyncpg.connect(self.dsn())
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.dsn(name)

    def new_database_now(self) -> str:
        """new_database from synchronous code (psql): the DSN of an empty database."""
        name = "t_" + uuid.uuid4().hex[:16]
        subprocess.run([str(BIN / "psql"), "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U",
                        USER, "-d", "postgres", "-c", f'CREATE DATABASE "{name}"'],
                       check=True, capture_output=True, timeout=60)
        return self.dsn(name)

    def drop_database(self, url: str) -> None:
        """Drop a test's database (its connections ended first: WITH (FORCE))."""
        name = url.rsplit("/", 1)[1]
        subprocess.run([str(BIN / "psql"), "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U",
                        USER, "-d", "postgres", "-c", f'DROP DATABASE IF EXISTS "{name}"'
                        " WITH (FORCE)"], check=True, capture_output=True, timeout=60)

    def files(self) -> list[Path]:
        """Every file of the server's data directory (root reads them all)."""
        return [path for path in self.data.rglob("*") if path.is_file()]


# ---- the whole suite on PostgreSQL (CALLENGINE_TEST_STORE=postgresql) ------------------------

# While a test runs with the switch on: the session's cluster, and each SQLite path the test
# names (Store.open, make_config, write_config) → the database standing in for it.
ACTIVE: PostgresCluster | None = None
STAND_INS: dict[Path, str] = {}


def url_for(database: Path) -> str | None:
    """The PostgreSQL database standing in for this SQLite path in the running test (made at
    its first mention), or None when the suite runs on SQLite."""
    if ACTIVE is None:
        return None
    key = Path(database).resolve()
    if key not in STAND_INS:
        STAND_INS[key] = ACTIVE.new_database_now()
    return STAND_INS[key]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def url_line(database: Path) -> str:
    """`url = "…"` for a configuration's [store] section (a line and its newline) when the
    suite runs on PostgreSQL, else ""."""
    url = url_for(database)
    return f'url = "{url}"\n' if url else ""
