"""Store's recording rows: metadata only (the audio is ciphertext in the recordings directory,
its key in the KeyStore)."""

from __future__ import annotations

from callengine.errors import NotFound
from callengine.model import Attempt, Recording
from callengine.hooks.events import RECORDING_READY
from callengine.storage import outbox
from callengine.storage.base import StoreBase
from callengine.storage.sql import chunks, marks
from callengine.storage.rows import to_recording


class RecordingQueries(StoreBase):
    async def add_recording(
        self, recording_id: str, attempt: Attempt, route: str, key_id: str, now: float, *,
        sample_rate: int,
    ) -> None:
        """Registered before the tap starts: a crash mid-call leaves a row to mark incomplete."""
        async with self._transaction() as db:
            await db.execute(
                "INSERT INTO recordings (id, lead_id, attempt_id, route, key_id, status,"
                " started_at, sample_rate) VALUES (?, ?, ?, ?, ?, 'recording', ?, ?)",
                (recording_id, attempt.lead_id, attempt.id, route, key_id, now, sample_rate),
            )

    async def finish_recording(
        self, recording_id: str, *, status: str, now: float, duration_s: float, bytes_in: int,
        segments: int, sha256: str | None, problem: str | None,
    ) -> None:
        """The sample rate stays what add_recording set: a recording's rate never changes."""
        async with self._transaction() as db:
            rows = await db.execute_fetchall(
                "UPDATE recordings SET status = ?, ended_at = ?, duration_s = ?, bytes = ?,"
                " segments = ?, sha256 = ?, problem = ? WHERE id = ? RETURNING lead_id,"
                " attempt_id",
                (status, now, duration_s, bytes_in, segments, sha256, problem, recording_id),
            )
            if rows and bytes_in > 0:  # webhooks: a recording with audio to fetch
                lead_id, attempt_id = rows[0]
                await outbox.emit(db, RECORDING_READY, f"{RECORDING_READY}:{recording_id}",
                                  lead_id, {"recording_id": recording_id, "lead_id": lead_id,
                                            "attempt_id": attempt_id, "status": status,
                                            "duration_s": duration_s, "bytes": bytes_in,
                                            "segments": segments, "sha256": sha256}, now)

    async def recordings_in_progress(self, attempt_ids: list[str] | None = None
                                     ) -> list[Recording]:
        if attempt_ids is None:
            return await self._recordings_where("r.status = 'recording'", ())
        found: list[Recording] = []
        for chunk in chunks(attempt_ids):
            found += await self._recordings_where(
                f"r.status = 'recording' AND r.attempt_id IN ({marks(len(chunk))})", tuple(chunk))
        return found

    async def get_recording(self, recording_id: str) -> Recording:
        found = await self._recordings_where("r.id = ?", (recording_id,))
        if not found:
            raise NotFound("recording", recording_id)
        return found[0]

    async def list_recordings(self, *, lead_id: str | None = None,
                              include_deleted: bool = False) -> list[Recording]:
        clauses, params = [], []
        if lead_id is not None:
            clauses.append("r.lead_id = ?")
            params.append(lead_id)
        if not include_deleted:
            clauses.append("r.status != 'deleted'")
        return await self._recordings_where(" AND ".join(clauses) or "1 = 1", tuple(params))

    async def mark_recording_deleted(self, recording_id: str, now: float) -> None:
        """The row stays as a tombstone (it holds no personal data): reports stay right."""
        async with self._transaction() as db:
            await db.execute(
                "UPDATE recordings SET status = 'deleted', deleted_at = ? WHERE id = ?",
                (now, recording_id),
            )

    async def _recordings_where(self, where: str, params: tuple) -> list[Recording]:
        rows = await self._fetch(
            "SELECT r.*, l.phone_enc, l.subject_id, l.widget_id FROM recordings r"
            f" JOIN leads l ON l.id = r.lead_id WHERE {where} ORDER BY r.started_at",
            params,
        )
        ciphers = await self._rows_ciphers(rows)
        return [to_recording(row, ciphers) for row in rows]
