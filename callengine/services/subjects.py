"""Data-subject rights: everything held about a phone number, exported or erased.

Export gathers each lead (with its consents, the exact information-clause and recording-notice
texts the visitor saw and their evidence), its attempts
and its recordings' metadata; with a private key and a directory it also decrypts the
recordings to WAV files there (the subject asked for them). Erasure crypto-shreds the
recordings, then deletes the leads with everything hanging off them, leaving tombstones with no
personal data, then deletes the subject's key and number hash from the keystore (which makes
their fields unreadable in every backup too), and scrubs the store's and the journal's logs.
Each step either is done or raises ErasureIncomplete (and what is left is retried): never a
success with the data still in a file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from callengine.access import Permission, Principal, require
from callengine.errors import ErasureIncomplete, InvalidInput
from callengine.numbers import VisitorNumber, any_number
from callengine.recordings import RecordingVault
from callengine.services import views
from callengine.services.base import Service
from callengine.services.clauses import shown_to
from callengine.storage import Store

Progress = Callable[[int, int], None]  # (done, total)


@dataclass(frozen=True)
class Erasure:
    leads: int
    recordings: int


async def export_subject(
    store: Store, e164: str, principal: Principal, now: float, *,
    vault: RecordingVault | None, audio_dir: Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    leads = await store.leads_for_number(e164)
    exported: list[dict[str, Any]] = []
    recordings_total = 0
    by_phone = await store.queue_callbacks([lead.id for lead in leads])
    for lead in leads:
        recordings = await store.list_recordings(lead_id=lead.id)
        recordings_total += len(recordings)
        clause, notice = await shown_to(store, lead)
        exported.append(views.subject_lead_view(lead, await store.attempts_for(lead.id),
                                                recordings, clause, notice,
                                                by_phone.get(lead.id)))
    await store.audit(principal, "subjects.export",
                      "leads:" + ",".join(lead.id for lead in leads) if leads else "leads:none",
                      "with audio" if audio_dir else "metadata", now)
    if audio_dir is not None and vault is not None:
        audio_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        done = 0
        for lead_view in exported:
            for recording_view in lead_view["recordings"]:
                recording = await store.get_recording(recording_view["id"])
                plain = await vault.open(recording)
                target = audio_dir / f"{recording.id}.wav"
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(plain.wav_header())
                    for chunk in plain.chunks:
                        f.write(chunk)
                recording_view["file"] = target.name
                done += 1
                if progress:
                    progress(done, recordings_total)
    return {"subject": e164, "exported_at": now, "leads": exported}


async def erase_subject(
    store: Store, e164: str, principal: Principal, now: float, *,
    vault: RecordingVault | None,
) -> Erasure:
    try:  # what an earlier erasure could not finish goes first
        await store.scrub_pending()
    except ErasureIncomplete:
        pass  # still not possible: this erasure's own scrub says so below
    leads = await store.leads_for_number(e164)
    lead_ids = [lead.id for lead in leads]
    recording_ids = await store.live_recording_ids(lead_ids)
    if vault is not None:  # keys out of the keystore first: that is the shred (or it raises)
        await vault.shred(recording_ids)
    erased = await store.purge_leads(lead_ids, now, reason="erasure") if lead_ids else 0
    incomplete: ErasureIncomplete | None = None
    for step in (lambda: store.forget_number(e164), store.forget_deleted_pages):
        try:
            await step()
        except ErasureIncomplete as exc:
            incomplete = incomplete or exc
    await store.audit(principal, "subjects.erase",
                      "leads:" + ",".join(lead_ids) if lead_ids else "leads:none",
                      f"{len(recording_ids)} recording(s) crypto-shredded"
                      + ("; scrub pending (retried)" if incomplete else ""), now)
    if incomplete is not None:
        raise incomplete
    return Erasure(erased, len(recording_ids))


def _subject_number(raw: Any) -> VisitorNumber:
    if not isinstance(raw, str):
        raise InvalidInput("phone", "required: the data subject's number")
    return any_number(raw)


class Subjects(Service):
    """The use cases, for a number as the subject (or the operator) wrote it."""

    async def export(self, who: Principal, raw_number: Any, *, audio_dir: Path | None = None,
                     progress: Progress | None = None) -> dict[str, Any]:
        require(who, Permission.EXPORT_SUBJECT)
        number = _subject_number(raw_number)
        return await export_subject(self.store, number.e164, who, self.ctx.clock(),
                                    vault=self.ctx.vault, audio_dir=audio_dir,
                                    progress=progress)

    async def preview(self, who: Principal, raw_number: Any) -> dict[str, Any]:
        """What an erasure of this number would remove (for its confirmation): the number
        masked, each lead's id, widget, date and status, and its live recordings' count.
        Reads no personal field beyond that, so it is not audited; the erasure is."""
        require(who, Permission.ERASE_SUBJECT)
        number = _subject_number(raw_number)
        leads = await self.store.leads_for_number(number.e164)
        recordings = await self.store.live_recording_ids([lead.id for lead in leads])
        return {"masked": number.masked(), "recordings": len(recordings),
                "leads": [{"id": lead.id, "widget": lead.widget_id,
                           "created_at": lead.created_at, "status": lead.status}
                          for lead in leads]}

    async def erase(self, who: Principal, raw_number: Any, *,
                    confirm: Callable[[VisitorNumber], bool] = lambda number: True
                    ) -> Erasure | None:
        """Erase, once `confirm` (shown the masked number) agrees; None when it does not."""
        require(who, Permission.ERASE_SUBJECT)
        number = _subject_number(raw_number)
        if not confirm(number):
            return None
        return await erase_subject(self.store, number.e164, who, self.ctx.clock(),
                                   vault=self.ctx.vault)
