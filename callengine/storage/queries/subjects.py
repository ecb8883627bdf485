"""Store's data subjects: the leads of one number, and erasure that is true or fails loudly.

A number leads to its subject through the keystore (the keyed hash → subject id index lives
there, not in the store); a lead row holds only the random subject id. Erasing a subject
deletes its key and hash from the keystore (every copy of its fields, backups included, is
then unreadable), and the scrub folds and truncates the store's and the intake journal's
logs, checked: what can't be finished is recorded in the scrub-pending marker (scrub.py),
raised as ErasureIncomplete, and retried by `scrub_pending`.
"""

from __future__ import annotations

import logging
import time

from callengine.errors import ErasureIncomplete
from callengine.model import Lead
from callengine.storage import scrub
from callengine.storage.base import StoreBase
from callengine.storage.schema import LEAD_DAY
from callengine.storage.sql import chunks, marks

log = logging.getLogger(__name__)


class SubjectQueries(StoreBase):
    async def _subject_of(self, e164: str) -> str | None:
        number_hash = self._cipher.number_hash(e164)
        if number_hash in self._new_subjects:
            return self._new_subjects[number_hash][0]
        assert self._keys is not None
        found = await self._keys.subject_by_hash(number_hash)
        return None if found is None else found[0]

    async def leads_for_number(self, e164: str) -> list[Lead]:
        await self._settled()
        subject_id = await self._subject_of(e164)
        if subject_id is None:
            return []
        return await self._leads(
            # Every day of leads_day_subject: the index alone says which rows are the subject's.
            f"SELECT * FROM leads WHERE {LEAD_DAY} >= ? AND subject_id = ? ORDER BY created_at",
            (-(2**31 - 1), subject_id))

    async def forget_number(self, e164: str) -> None:
        """After its leads are purged: the number's subject key and keyed hash deleted from the
        keystore, zeroed there (ErasureIncomplete otherwise, and the next scrub retries)."""
        await self._settled()
        subject_id = await self._subject_of(e164)
        if subject_id is not None:
            await self._forget_subjects([subject_id])
            # Leads of the subject that reached the store during the erasure (another
            # process's intake, its mover's commit after our read): erased too. None can come
            # after this: a mover checks its batch's subjects after its commit (intake.py).
            late = [row[0] for row in await self._fetch(
                    f"SELECT id FROM leads WHERE {LEAD_DAY} >= ? AND subject_id = ?",
                    (-(2**31 - 1), subject_id))]
            if late:
                await self.purge_leads(late, time.time(), "erasure")
                log.info("erasure: %d lead(s) that came in during it erased too: %s",
                         len(late), ", ".join(late))

    async def forget_unused_subjects(self, subject_ids: set[str] | list[str]) -> int:
        """Of these subjects (a purge's), forget those no lead names any more, in the store or
        the journal; returns how many."""
        unused = set(subject_ids)
        assert self._journal is not None
        for chunk in chunks(sorted(unused)):
            for db in (self._db, self._journal):
                table = "leads" if db is self._db else "new_leads"
                unused -= {row[0] for row in await db.execute_fetchall(
                    f"SELECT DISTINCT subject_id FROM {table}"
                    f" WHERE subject_id IN ({marks(len(chunk))})", chunk)}
        await self._forget_subjects(sorted(unused))
        return len(unused)

    async def _forget_subjects(self, subject_ids: list[str]) -> None:
        if not subject_ids:
            return
        assert self._keys is not None and self._path is not None
        self._forget_cached(subject_ids)
        try:
            await self._keys.delete_subjects(subject_ids)
        except ErasureIncomplete:
            scrub.write_marker(self._path, subject_ids)
            raise

    async def forget_deleted_pages(self) -> None:
        """After an erasure or a purge: the store's and the journal's logs folded into their
        files (where secure_delete zeroed the deleted rows) and truncated, checked; on failure
        the scrub-pending marker is left for the next try, and ErasureIncomplete raised."""
        await self._settled()
        assert self._journal is not None and self._path is not None
        assert self._keys is not None
        try:
            await scrub.checkpoint_truncate(self._db, "the store")
            async with self._journal_lock:
                await scrub.checkpoint_truncate(self._journal, "the intake journal")
            # The keystore's log too: whichever connection deleted keys (a purge shreds
            # recordings' keys through the vault's), any connection can fold and truncate it.
            await self._keys.truncate_log()
        except ErasureIncomplete:
            scrub.write_marker(self._path)
            raise

    async def _retry_scrub(self) -> None:
        """At open: finish an erasure an earlier run could not (it said so, loudly)."""
        try:
            await self.scrub_pending()
        except ErasureIncomplete as exc:
            log.error("erasure still incomplete, retried at the next erasure or purge: %s", exc)

    async def scrub_pending(self) -> bool:
        """Finish what an earlier erasure or purge could not (the marker): its subject keys
        deleted, the logs truncated. True if there was something and it is done now; raises
        ErasureIncomplete while it still can't be."""
        assert self._keys is not None and self._path is not None
        marker = scrub.read_marker(self._path)
        if marker is None:
            return False
        await self._keys.delete_subjects(marker.get("subjects", []))
        await self.forget_deleted_pages()  # the store's, the journal's and the keystore's logs
        scrub.clear_marker(self._path)
        log.info("erasure: the scrub pending since %.0f is done now", marker.get("since", 0))
        return True
