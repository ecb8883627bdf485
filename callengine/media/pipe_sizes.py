"""Pipe sizes for the FIFO route, and the kernel's limits on them.

A FIFO's pipe must hold `slack_s` seconds of audio (F_SETPIPE_SZ, at most
/proc/sys/fs/pipe-max-size), and all of one user's pipes share a budget of pages
(pipe-user-pages-soft/-hard) unless the process is exempt: `check-config` reports how many
recordings that budget holds at once.
"""

from __future__ import annotations

import os
from pathlib import Path

from callengine.audio import bytes_per_second

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")  # pipes are sized and charged in pages
DEFAULT_PIPE_MAX_SIZE = 1 << 20  # Linux's default /proc/sys/fs/pipe-max-size


def _proc_int(name: str) -> int | None:
    try:
        return int(Path("/proc/sys/fs", name).read_text())
    except (OSError, ValueError):
        return None


def pipe_max_size() -> int:
    """/proc/sys/fs/pipe-max-size: the largest pipe an unprivileged process may ask for."""
    return _proc_int("pipe-max-size") or DEFAULT_PIPE_MAX_SIZE


def pipe_size_for(slack_s: float, sample_rate: int) -> int:
    """The pipe buffer that holds slack_s seconds of audio at this rate, as the kernel sizes
    pipes (a power of two of pages; 32 s: 512 KiB at 8 kHz, 1 MiB at 16 kHz), capped at
    pipe-max-size."""
    pages = max(1, -(-round(slack_s * bytes_per_second(sample_rate)) // PAGE_SIZE))
    return min(PAGE_SIZE << (pages - 1).bit_length(), pipe_max_size())


def pipe_limit_exempt() -> bool:
    """Does this process ignore pipe-user-pages-soft/-hard (CAP_SYS_RESOURCE or
    CAP_SYS_ADMIN, which root has)?"""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                caps = int(line.split()[1], 16)
                return bool(caps & (1 << 24 | 1 << 21))  # CAP_SYS_RESOURCE, CAP_SYS_ADMIN
    except (OSError, ValueError, IndexError):
        pass
    return os.geteuid() == 0


def concurrent_fifo_capacity(pipe_size: int) -> int | None:
    """How many FIFOs of pipe_size this user's pipe budget holds at once: pipe-user-pages-soft
    (and -hard, if set) / pages per pipe. None: unlimited (the limits are 0, or this process
    is exempt). Other pipes of the same user count against the same budget."""
    if pipe_limit_exempt():
        return None
    limits = [n for n in (_proc_int("pipe-user-pages-soft"), _proc_int("pipe-user-pages-hard"))
              if n]
    if not limits:
        return None
    return min(limits) // max(1, pipe_size // PAGE_SIZE)
