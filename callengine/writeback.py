"""Linux's sync_file_range(2), which Python's os module lacks: the one call that starts
writing a file's dirty pages to the disk without waiting for them or flushing the disk's cache.
Written by hand with ctypes because no maintained library wraps it. Where it is missing (not
Linux, no such libc symbol), `start` does nothing."""

from __future__ import annotations

import ctypes
from collections.abc import Callable

_WRITE = 2  # SYNC_FILE_RANGE_WRITE


def _load() -> Callable[[int, int, int, int], int] | None:
    try:
        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (AttributeError, OSError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    return function


_SYNC_FILE_RANGE = _load()


def start(fd: int) -> None:
    """Start writing the file's dirty pages back, without waiting (best effort)."""
    if _SYNC_FILE_RANGE is not None:
        _SYNC_FILE_RANGE(fd, 0, 0, _WRITE)
