"""Audio checks for tests: which tones a PCM stream holds, and whether any file on disk holds
plaintext audio (the project's promise is that none ever does)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np

from callengine.crypto import MAGIC, header_info, open_recording
from tests.support.phones import AGENT_TONE_HZ, VISITOR_TONE_HZ


def decrypt(path: Path, private: bytes, *, recover: bool = False) -> bytes:
    with open_recording(path, private, recover=recover) as reader:
        return b"".join(reader)


def assert_both_tones(pcm: bytes, rate: int, minimum: float = 0.05) -> dict[int, float]:
    """The mix of a bridged call holds the agent's 440 Hz and the visitor's 1000 Hz (both
    below the 4 kHz Nyquist frequency of 8 kHz audio). `rate`: the recording's."""
    fractions = band_fractions(pcm, rate)
    assert all(share > minimum for share in fractions.values()), fractions
    return fractions


def band_fractions(pcm: bytes, rate: int) -> dict[int, float]:
    """Share of the signal's energy within ±15 Hz of each test tone, for 16-bit LE PCM at
    `rate` Hz (read at the wrong rate, the tones land at the wrong frequencies)."""
    x = np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float64)
    x -= x.mean()
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    total = spectrum.sum()
    return {
        hz: float(spectrum[(freqs > hz - 15) & (freqs < hz + 15)].sum() / total)
        for hz in (AGENT_TONE_HZ, VISITOR_TONE_HZ)
    }


_ULAW = None


def _ulaw_table() -> np.ndarray:
    global _ULAW
    if _ULAW is None:
        u = ~np.arange(256, dtype=np.int32) & 0xFF
        t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
        _ULAW = np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.float64)
    return _ULAW


def tone_audio_in(data: bytes) -> str | None:
    """Does this byte string hold the test tones as audio? Tries int16 LE/BE at both byte
    alignments and u-law, at 8 and 16 kHz; a window counts when over half its energy sits at
    440 and/or 1000 Hz. Returns a description of what was found, or None."""
    window = 4096
    views: list[tuple[str, np.ndarray]] = []
    for offset in (0, 1):
        raw = data[offset:]
        raw = raw[: len(raw) // 2 * 2]
        if raw:
            views.append((f"int16le+{offset}", np.frombuffer(raw, "<i2").astype(np.float64)))
            views.append((f"int16be+{offset}", np.frombuffer(raw, ">i2").astype(np.float64)))
    if data:
        views.append(("ulaw", _ulaw_table()[np.frombuffer(data, np.uint8)]))
    hann = np.hanning(window)
    freqs = np.fft.rfftfreq(window)  # cycles per sample
    # Per assumed sample rate, the bins near either tone (one tone alone, or both mixed).
    bands = [(np.abs(freqs - AGENT_TONE_HZ / rate) < 15 / rate)
             | (np.abs(freqs - VISITOR_TONE_HZ / rate) < 15 / rate) for rate in (8000, 16000)]
    for name, x in views:
        tonal = 0
        n_windows = len(x) // window
        # Up to 64 windows spread over the file.
        for i in np.unique(np.linspace(0, max(n_windows - 1, 0), min(n_windows, 64)).astype(int)):
            w = x[i * window:(i + 1) * window]
            w = w - w.mean()
            if np.sqrt(np.mean(w * w)) < 30:  # silence, zeros: not evidence
                continue
            spectrum = np.abs(np.fft.rfft(w * hann)) ** 2
            total = spectrum.sum()
            if total and max(spectrum[b].sum() for b in bands) / total > 0.5:
                tonal += 1
            if tonal >= 2:
                return f"test tones as {name}"
    return None


def scan_for_plaintext(*dirs: Path) -> list[str]:
    """Every regular file under dirs: either a valid recording (checked header) or not audio.
    Returns the problems found (empty = clean)."""
    problems = []
    for top in dirs:
        for root, _, files in os.walk(top):
            for name in files:
                path = Path(root) / name
                try:
                    st = path.lstat()
                    if not stat.S_ISREG(st.st_mode):
                        continue  # FIFOs, sockets
                    with open(path, "rb") as f:
                        data = f.read(8 << 20)
                except (FileNotFoundError, PermissionError):
                    continue
                if data.startswith(MAGIC):
                    try:
                        header_info(path)
                    except Exception as exc:  # noqa: BLE001
                        problems.append(f"{path}: CEREC magic but bad header: {exc}")
                    continue
                found = tone_audio_in(data)
                if found:
                    problems.append(f"{path}: {found} ({len(data)} bytes)")
    return problems
