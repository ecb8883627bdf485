"""The audio the engine records: PCM sample rates, sample width, bytes per second.

Plain facts shared by the recorder, the media taps and the configuration; no I/O, nothing to
import but the standard library.
"""

from __future__ import annotations

BYTES_PER_SAMPLE = 2  # 16-bit signed little-endian mono PCM per track
# The rates a recording may have: Asterisk's slin (8 kHz) and slin16 (16 kHz). Each recording
# keeps its own (RecordingSink.sample_rate, the store's recordings.sample_rate); the CEREC file
# itself does not say, it only holds bytes.
SAMPLE_RATES = (8000, 16000)
# Telephone audio (G.711, the trunk) is 8 kHz narrowband: recording it at 16 kHz only makes
# Asterisk resample and doubles every byte. 16000 is for wideband codecs (G.722, Opus).
DEFAULT_SAMPLE_RATE = 8000
# How many seconds of audio a FIFO's pipe holds (recording.fifo_slack_s): how long a stalled
# reader may stall before MixMonitor drops audio.
DEFAULT_FIFO_SLACK_S = 32.0


def check_sample_rate(sample_rate: int) -> int:
    if sample_rate not in SAMPLE_RATES:
        raise ValueError(f"sample rate must be one of {', '.join(map(str, SAMPLE_RATES))} Hz, "
                         f"got {sample_rate!r}")
    return sample_rate


def bytes_per_second(sample_rate: int, tracks: int = 1) -> int:
    """Bytes of PCM per second of audio at this rate (16,000 at 8 kHz, 32,000 at 16 kHz)."""
    return sample_rate * BYTES_PER_SAMPLE * tracks
