"""The one entry to the use cases: `Services`, built from a store (and optionally the recording
vault), a clock and the engine's wake-up; and `open_services`, which opens what a command-line
run needs from the configuration, so no edge opens the store itself."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from callengine.access import Permission, Principal, require
from callengine.config import Config
from callengine.recordings import RecordingVault, load_private_keys
from callengine.services.audit import AuditLog
from callengine.services.base import Context, LoginPolicy
from callengine.services.board import Board
from callengine.services.challenges import ChallengeBook
from callengine.services.clauses import Clauses
from callengine.services.configuration import Configuration
from callengine.services.hours import Hours
from callengine.services.leads import Leads
from callengine.services.progress import Progress
from callengine.services.recordings import Recordings
from callengine.services.reports import Reports
from callengine.services.subjects import Subjects
from callengine.services.tokens import Tokens
from callengine.services.users import Users
from callengine.services.webhooks import Webhooks
from callengine.storage import KeyStore, Store, open_store


class Services:
    """Every use case, once; the HTTP API, the CLI and the panel call these. Each checks the
    acting principal's permission itself and writes the audit entry its act needs."""

    def __init__(self, store: Store, *, vault: RecordingVault | None = None,
                 clock: Callable[[], float] = time.time,
                 on_lead: Callable[[], None] = lambda: None, channel: str = "api",
                 challenge_key: bytes | None = None, login_policy: LoginPolicy | None = None,
                 agent_activity: Callable[[], Mapping[str, str]] | None = None):
        # The widgets' challenges: the configured key, else one derived from the data key.
        book = ChallengeBook(challenge_key or store.challenge_key())
        self._build(Context(store, vault, clock, on_lead, channel, book,
                            login_policy or LoginPolicy(), agent_activity))

    def _build(self, context: Context) -> None:
        self.context = context
        self.leads = Leads(context)
        self.progress = Progress(context)
        self.hours = Hours(context)
        self.recordings = Recordings(context)
        self.config = Configuration(context)
        self.tokens = Tokens(context)
        self.audit = AuditLog(context)
        self.subjects = Subjects(context)
        self.reports = Reports(context)
        self.clauses = Clauses(context)
        self.users = Users(context)
        self.board = Board(context)
        self.webhooks = Webhooks(context)

    def on_channel(self, channel: str) -> Services:
        """The same use cases over the same store, acting for another edge (the panel: its
        unmasks say "panel", and its reads are not token uses)."""
        other = object.__new__(Services)
        other._build(replace(self.context, channel=channel))
        return other

    async def schema_version(self) -> int:
        return await self.context.store.schema_version()

    async def store_answers(self) -> None:
        """A query of the store (readiness: /readyz; the schema version: no table scanned);
        raises what the store raises."""
        await self.context.store.schema_version()

    async def lead_counts(self) -> dict[tuple[str, str], int]:
        """Leads by status and outcome (the metrics, read at each scrape)."""
        return await self.context.store.lead_counts()

    async def backup_contents(self, who: Principal) -> tuple[list[str], int]:
        """The live recordings' ids and the number of leads, for a backup's manifest."""
        require(who, Permission.CONFIGURE)
        recordings = await self.recordings.live_ids()
        leads = await self.context.store.count_leads()
        return recordings, leads

    async def purge(self, now: float, *, dry_run: bool, progress: Any = None,
                    outbox: Any = None) -> Any:
        """Retention: leads and recordings past their widget's periods, and the webhooks'
        settled deliveries past `outbox`'s ages (config.OutboxRetention; callengine.retention)."""
        from callengine.config import OutboxRetention
        from callengine.retention import Purger

        assert self.context.vault is not None, "open the services with the vault to purge"
        return await Purger(self.context.store, self.context.vault,
                            outbox=outbox or OutboxRetention()).run(
            now, dry_run=dry_run, progress=progress)


@asynccontextmanager
async def open_services(config: Config, *, vault: bool = False,
                        key_files: list[Path] | None = None, keystore: Path | None = None,
                        channel: str = "cli") -> AsyncIterator[Services]:
    """The store, and with `vault` the recordings too: files, the keystore (`keystore` or the
    configured one) and the private keys in `key_files` (or the configured ones); without any
    key, recordings can be listed, verified for structure and shredded, not opened."""
    async with AsyncExitStack() as stack:
        store = await stack.enter_async_context(open_store(
            config.database, config.data_key, keystore=keystore or config.keystore,
            audit_dir=config.audit_directory, url=config.store_url,
            password=config.store_password))
        recordings = None
        if vault:
            keys = await stack.enter_async_context(KeyStore.open(keystore or config.keystore))
            paths = key_files if key_files else list(config.recording.private_key_files)
            recordings = RecordingVault(config.recordings_dir, keys, load_private_keys(paths))
        yield Services(store, vault=recordings, channel=channel,
                       login_policy=LoginPolicy.of(config.panel))
