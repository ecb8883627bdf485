"""What the benches share: the repository on sys.path (importing this puts it there), the
benches' store key and admin token, the command line (the script's docstring as its help), the
real app served on loopback, the client subprocess pinned to a CPU of its own, percentiles and
the open-files limit."""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DATA_KEY = bytes(range(32))  # as tests/support/engine.py
ADMIN_TOKEN = "bench-admin-token-0123456789"
SERVER_CPU, CLIENT_CPU = 0, 1  # the server in the bench's process, its client in a subprocess


def parser(doc: str | None, *, client: bool = False) -> argparse.ArgumentParser:
    """The bench's arguments, its docstring as the help; with `client`, the hidden --client
    that makes the script the client subprocess (run_client)."""
    ap = argparse.ArgumentParser(description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    if client:
        ap.add_argument("--client", help=argparse.SUPPRESS)
    return ap


def run_client(script: str, *args: str, **options: Any) -> str:
    """`script --client ARGS…` in a subprocess pinned to CLIENT_CPU (taskset), run from the
    repository; its standard output (a failure raises CalledProcessError). Blocking: call it
    in a thread. options: subprocess.run's (input=…, stderr=…)."""
    return subprocess.run(["taskset", "-c", str(CLIENT_CPU), sys.executable, script,
                           "--client", *args], cwd=REPO, check=True, stdout=subprocess.PIPE,
                          text=True, **options).stdout


async def serve(app: Any) -> tuple[Any, str]:
    """The app served on 127.0.0.1 at a free port, without an access log: its runner (the
    caller's to clean up) and its origin, http://127.0.0.1:PORT."""
    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


def pct(values: list[float], q: float) -> float:
    """The q-th percentile of values, the nearest rank rounded."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def raise_fd_limit(needed: int, *, required: bool = True) -> None:
    """The soft limit on open files raised to `needed` (at most the hard limit); `required`:
    exit when that is still too few."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if required and resource.getrlimit(resource.RLIMIT_NOFILE)[0] < needed:
        sys.exit(f"need {needed} open files; raise `ulimit -n`")
