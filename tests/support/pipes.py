"""A stand-in for the kernel refusing to enlarge a pipe (no root games needed)."""

from __future__ import annotations

import errno

from callengine.media import fifo


class RefusingFcntl:
    """fcntl as the kernel answers an unprivileged user over fs.pipe-user-pages-soft:
    F_SETPIPE_SZ fails with EPERM (or, with `grant`, pretends it granted less); F_GETPIPE_SZ
    reports the pipe's own small size. Install with
    monkeypatch.setattr(callengine.media.fifo, "fcntl", RefusingFcntl())."""

    def __init__(self, grant: int | None = None):
        self.grant = grant
        self.set_calls: list[int] = []

    def fcntl(self, fd: int, cmd: int, arg: int = 0) -> int:
        if cmd == fifo.F_SETPIPE_SZ:
            self.set_calls.append(arg)
            if self.grant is None:
                raise PermissionError(errno.EPERM, "Operation not permitted")
            return self.grant
        if cmd == fifo.F_GETPIPE_SZ:
            return 8192
        raise AssertionError(f"unexpected fcntl {cmd}")
