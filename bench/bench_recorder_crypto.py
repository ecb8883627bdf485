"""How many concurrent encrypted recordings can one core sustain?

    .venv/bin/python bench/bench_recorder_crypto.py [--streams 2000] [--seconds 10]

N RecordingWriters are fed 640-byte frames (20 ms of 16 kHz sln16) in
round-robin for S simulated seconds, on one pinned core, timed with
time.process_time() (user + system CPU, so the os.write()s count). Files go
to a tmpfs (/dev/shm) when there is one, so the figure is CPU, not disk.
Prints figures only; no assertions except that bytes lost is reported.
"""

from __future__ import annotations

import os
import resource
import shutil
import sys
import tempfile
import time

from common import parser, raise_fd_limit

from callengine import crypto  # noqa: E402
from callengine.crypto.stream import _HAS_ENCRYPT_INTO  # noqa: E402

FRAME = 640  # 20 ms of 16 kHz, 16-bit mono
FRAMES_PER_SECOND = 50
POOL = 97  # distinct frames; prime so stream/tick combinations don't line up


def pin_one_core() -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}"


def expected_stream(pool: list[bytes], s: int, ticks: int) -> bytes:
    return b"".join(pool[(s + t) % POOL] for t in range(ticks))


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--streams", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=10.0, help="simulated seconds of audio per stream")
    ap.add_argument("--segment-size", type=int, default=crypto.DEFAULT_SEGMENT_SIZE)
    ap.add_argument("--fsync-every", type=int, default=0)
    ap.add_argument("--sample", type=int, default=25, help="streams fully decrypted and compared")
    ap.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    args = ap.parse_args()

    n = args.streams
    ticks = int(args.seconds * FRAMES_PER_SECOND)
    stream_seconds = n * ticks / FRAMES_PER_SECOND
    pinned = pin_one_core()
    raise_fd_limit(n + 64)
    priv, pub = crypto.generate_recipient_keypair()
    pool = [os.urandom(FRAME) for _ in range(POOL)]
    workdir = tempfile.mkdtemp(prefix="bench-cerec-", dir=args.dir)
    try:
        # Open: one X25519 key agreement + 2 HKDF + header write per recording.
        c0 = time.process_time()
        writers = [
            crypto.RecordingWriter(
                os.path.join(workdir, f"{s}.cerec"), pub,
                segment_size=args.segment_size, fsync_every=args.fsync_every,
            )
            for s in range(n)
        ]
        cpu_open = time.process_time() - c0

        # Steady state: round-robin, one frame per stream per 20 ms tick.
        writes = [w.write for w in writers]
        w0, c0 = time.perf_counter(), time.process_time()
        for t in range(ticks):
            for s, write in enumerate(writes):
                write(pool[(s + t) % POOL])
        cpu_write = time.process_time() - c0
        wall_write = time.perf_counter() - w0

        # Same driver loop with a no-op sink: what the harness itself costs.
        def sink(frame):
            pass

        sinks = [sink] * n
        base_ticks = max(1, ticks // 10)
        c0 = time.process_time()
        for t in range(base_ticks):
            for s, write in enumerate(sinks):
                write(pool[(s + t) % POOL])
        cpu_loop = (time.process_time() - c0) * ticks / base_ticks

        c0 = time.process_time()
        for w in writers:
            w.close()
        cpu_close = time.process_time() - c0

        plaintext = n * ticks * FRAME
        on_disk = sum(w.bytes_written for w in writers)
        segments = sum(w.segments_written for w in writers)

        # Bytes lost. All streams: what the file sizes imply (no keys).
        # Sample: decrypt with the private key and compare byte for byte.
        implied = sum(crypto.header_info(w.path).plaintext_size for w in writers)
        sample = sorted({(i * n) // args.sample for i in range(min(args.sample, n))})
        lost_sample = mismatched = 0
        for s in sample:
            expected = expected_stream(pool, s, ticks)
            got = crypto.open_recording(writers[s].path, priv).read_all()
            lost_sample += len(expected) - len(got)
            mismatched += got != expected
        peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    net = max(cpu_write - cpu_loop, 1e-9)
    print("callengine recorder crypto benchmark (CEREC v1: Tink AES-256-GCM-HKDF streaming + X25519 wrap)")
    print(f"  python {sys.version.split()[0]}, cryptography {__import__('cryptography').__version__}, "
          f"encrypt_into={'yes' if _HAS_ENCRYPT_INTO else 'no'}, {pinned}")
    print(f"  {n} streams x {ticks} frames of {FRAME} B ({args.seconds:g} s simulated), "
          f"segment {args.segment_size} B, fsync_every={args.fsync_every}, "
          f"files in {args.dir or 'default tempdir'}")
    print()
    print(f"  plaintext written          {plaintext / 1e6:10.1f} MB  "
          f"({n * ticks:,} write() calls, {segments:,} segments)")
    print(f"  on disk (ciphertext)       {on_disk / 1e6:10.1f} MB  "
          f"(overhead {100 * (on_disk / plaintext - 1):.3f} %)")
    print(f"  CPU, write phase           {cpu_write:10.3f} s   (wall {wall_write:.3f} s)")
    print(f"    of which driver loop     {cpu_loop:10.3f} s   (same loop, no-op sink; estimate)")
    print(f"  throughput                 {plaintext / cpu_write / 1e6:10.1f} MB/s per core "
          f"({plaintext / net / 1e6:.1f} MB/s excluding driver loop)")
    print(f"  CPU per stream             {cpu_write / stream_seconds * 1e6:10.1f} us per stream-second "
          f"({net / stream_seconds * 1e6:.1f} excluding driver loop)")
    print(f"  streams sustainable/core   {stream_seconds / cpu_write:10.0f}      "
          f"({stream_seconds / net:.0f} excluding driver loop; target >= 2000)")
    print(f"  open (keygen+wrap+header)  {cpu_open / n * 1e6:10.1f} us per recording")
    print(f"  close (final seg + fsync)  {cpu_close / n * 1e6:10.1f} us per recording")
    print(f"  peak RSS                   {peak_rss_mib:10.1f} MiB")
    print()
    print(f"  bytes lost, all {n} streams (from file sizes):   {n * ticks * FRAME - implied}")
    print(f"  bytes lost, {len(sample)} streams decrypted and compared: {lost_sample}"
          f" (content mismatches: {mismatched})")


if __name__ == "__main__":
    main()
