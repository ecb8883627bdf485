"""Recordings as users handle them: list, play back, export, verify, delete (crypto-shred).
Playback, export and deletion are audited; plaintext only ever goes where it was asked to."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from callengine import crypto
from callengine.access import Permission, Principal, require
from callengine.errors import NotFound
from callengine.model import RECORDING_DELETED, Recording
from callengine.recordings import Plaintext, RecordingUnavailable, RecordingVault
from callengine.services import views
from callengine.services.base import Service

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verified:
    """One recording's check: its report, or why it failed."""

    recording_id: str
    report: crypto.VerifyReport | None = None
    sha256_differs: bool = False  # the file authenticates, but not as the store recorded it
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.sha256_differs


class Recordings(Service):
    async def list(self, who: Principal, *, lead_id: str | None = None,
                   include_deleted: bool = False) -> list[dict[str, Any]]:
        require(who, Permission.READ_LEADS)
        recordings = await self.store.list_recordings(lead_id=lead_id,
                                                      include_deleted=include_deleted)
        return [views.recording_view(r) for r in recordings]

    async def get(self, who: Principal, recording_id: str) -> dict[str, Any]:
        """One recording's metadata (any status; the number masked)."""
        require(who, Permission.READ_LEADS)
        return views.recording_view(await self.store.get_recording(recording_id))

    async def _live(self, recording_id: str) -> Recording:
        recording = await self.store.get_recording(recording_id)
        if recording.status == RECORDING_DELETED:
            raise NotFound("recording", recording_id)
        return recording

    def _vault(self) -> RecordingVault:
        if self.ctx.vault is None:
            raise RecordingUnavailable("no recordings are configured here")
        return self.ctx.vault

    async def play(self, who: Principal, recording_id: str) -> Plaintext:
        """Decrypted as a stream of chunks (nothing written anywhere); audited once it opens."""
        require(who, Permission.PLAY_RECORDINGS)
        recording = await self._live(recording_id)
        if self.ctx.vault is None:
            raise NotFound("recording", recording.id)
        plain = await self.ctx.vault.open(recording)
        await self.ctx.audit(who, "recordings.play", f"recording:{recording.id}",
                             f"lead:{recording.lead_id}")
        log.info("[lead %s] recording %s played back", recording.lead_id, recording.id)
        return plain

    async def export(self, who: Principal, recording_id: str, out: Path, fmt: str
                     ) -> Plaintext:
        """Decrypt into a file the operator named (WAV, MP3 or OGG); audited."""
        require(who, Permission.PLAY_RECORDINGS)
        recording = await self._live(recording_id)
        await self.ctx.audit(who, "recordings.export", f"recording:{recording.id}",
                             f"lead:{recording.lead_id}")
        return await self._vault().export(recording, out, fmt)

    async def delete(self, who: Principal, recording_id: str) -> int:
        """Crypto-shred: the key goes (then the file), the row stays as a tombstone; audited.
        Returns the files removed (0 when the file was already gone or no vault is here)."""
        require(who, Permission.DELETE_RECORDINGS)
        recording = await self.store.get_recording(recording_id)
        removed = 0
        if self.ctx.vault is not None:
            removed = await self.ctx.vault.shred([recording.id])
        await self.store.mark_recording_deleted(recording.id, self.ctx.clock())
        await self.ctx.audit(who, "recordings.delete", f"recording:{recording.id}",
                             f"lead:{recording.lead_id}")
        log.info("[lead %s] recording %s crypto-shredded", recording.lead_id, recording.id)
        return removed

    async def verify(self, ids: list[str] | None = None) -> list[Verified]:
        """Authenticate recordings (all, or those named): with a private key the audio too,
        without one the file's structure. Reveals nothing, so it needs no permission."""
        vault = self._vault()
        recordings = await self.store.list_recordings()
        if ids:
            recordings = [r for r in recordings if r.id in ids]
            missing = set(ids) - {r.id for r in recordings}
            if missing:
                raise NotFound("recording", sorted(missing)[0])
        results = []
        for recording in recordings:
            try:
                report = await vault.verify(recording)
            except (OSError, crypto.RecordingError, RecordingUnavailable) as exc:
                results.append(Verified(recording.id, error=exc))
                continue
            differs = recording.sha256 is not None and recording.sha256 != report.sha256
            results.append(Verified(recording.id, report, differs))
        return results

    @property
    def can_open(self) -> bool:
        """Whether this host holds a private key (else only structure is verified)."""
        return bool(self.ctx.vault is not None and self.ctx.vault.private_keys)

    async def live_ids(self) -> list[str]:
        return [r.id for r in await self.store.list_recordings()]
