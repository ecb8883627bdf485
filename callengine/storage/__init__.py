"""Storage: the only code that runs SQL. `Store` (leads, calls, configuration, audit), the intake
journal beside it, the purge's batches and the recording keystore."""

from callengine.storage.store import (
    JOURNAL_SUFFIX,
    MIGRATIONS,
    KeyStore,
    PurgeBatches,
    Store,
    _statements,
)

__all__ = ["JOURNAL_SUFFIX", "MIGRATIONS", "KeyStore", "PurgeBatches", "Store", "_statements"]
