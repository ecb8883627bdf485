"""Storage: the only code that runs SQL.

    interface.py     Storage, the Protocol the rest of callengine uses (and what a backend
                     must guarantee); PurgeBatchStorage for the purge's batches
    backends.py      open_store: the SQLite Store, or the PostgreSQL PgStore (store.url)
    store.py         Store, the SQLite backend: open() and the query mixins composed
    pg/              PgStore, the PostgreSQL backend: the same mixins on asyncpg
    base.py          what the mixins share: connection, field cipher, write lock, transaction
    queries/         Store's SQL by area: configuration (agents, groups, widgets), leads
                     (and attempts), recordings, access (tokens, audit), retention (lease,
                     expiry counts, purge), reports, subjects (lookups by number, erasure)
    intake.py        the intake journal beside the database, new leads and their mover
    purge.py         PurgeBatches: the purge's batches on plain sqlite3, on its own thread
    keystore.py      KeyStore: recording and data-subject keys, in a file of their own
    scrub.py         checked checkpoints and the scrub-pending marker (ErasureIncomplete)
    rekey.py         older stores' leads re-encrypted under per-subject keys, at open
    snapshot.py      snapshot(): the database for a backup, journaled leads included
    schema.py        the migrations; transactions.py the one BEGIN/COMMIT/ROLLBACK helper;
                     rows.py rows → records; sql.py small SQL-building helpers

Why mixins: the Store stays one flat object with the methods the Storage Protocol lists (what
a second backend implements, what the callers already call), while its SQL is split by the
area of the schema it touches, one short module each; they share one connection and its
write lock, which composition into separate objects would hand around for nothing.
"""

from callengine.storage.backends import open_store
from callengine.storage.interface import LeadFilter, PurgeBatchStorage, Storage, engine_lease
from callengine.storage.intake import JOURNAL_SUFFIX
from callengine.storage.keystore import KeyStore
from callengine.storage.purge import PurgeBatches
from callengine.storage.store import Store

__all__ = ["JOURNAL_SUFFIX", "KeyStore", "LeadFilter", "PurgeBatchStorage", "PurgeBatches",
           "Storage", "Store", "engine_lease", "open_store"]
