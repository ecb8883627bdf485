"""Composition root: builds the store, the ARI client (the engine's Telephony port), the engine
and the web app, runs them under one TaskGroup and stops them gracefully (on a signal, or when
the caller says so)."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace

from callengine import agent_phone, queue_callback
from callengine.asterisk.ami import AmiClient
from callengine.asterisk.ari import AriClient
from callengine.config import Config
from callengine.crypto import load_public_key
from callengine.engine import Engine
from callengine.hooks.delivery import DeliveryWorker
from callengine.metrics import Metrics
from callengine.nodes import AsteriskNodes
from callengine.media.fifo import FifoTap
from callengine.media.fifo_watchdog import claim_fifo_dir, fifo_watchdog
from callengine.media.rtp import RtpTap
from callengine.recorder import Tap
from callengine.recordings import RecordingSetup, RecordingVault, load_private_keys
from callengine.retention import PurgeProcess, PurgeTarget, start_schedule
from callengine.storage import KeyStore, Store, open_store
from callengine.services import Services
from callengine.services.base import LoginPolicy
from callengine.web import WebDeps, listening

log = logging.getLogger(__name__)


@dataclass
class Running:
    store: Store
    engine: Engine
    port: int
    metrics: Metrics

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@asynccontextmanager
async def _recording(config: Config, ari: AsteriskNodes, vault: RecordingVault
                     ) -> AsyncIterator[RecordingSetup | None]:
    """The recording route the configuration asks for, with what it needs (AMI for FIFOs)."""
    settings = config.recording
    if settings.public_key_file is None:
        yield None
        return
    public_key = load_public_key(settings.public_key_file)
    config.recordings_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if settings.route == "rtp":
        def new_rtp_tap() -> Tap:
            return RtpTap(ari, settings.rtp_bind, settings.rtp_advertise, settings.rtp_ports)

        yield RecordingSetup("rtp", vault, public_key, new_rtp_tap,
                             sample_rate=settings.sample_rate)
        return
    # Claimed (and emptied of a dead engine's FIFOs) before the engine exists, so before it
    # hangs up that engine's channels.
    with claim_fifo_dir(settings.fifo_dir, settings.fifo_group):
        async with AmiClient(config.ami.host, config.ami.port, config.ami.user,
                             config.ami.secret) as ami:
            def new_fifo_tap() -> Tap:
                return FifoTap(ami, settings.fifo_dir, settings.fifo_dir_asterisk,
                               settings.fifo_group, slack_s=settings.fifo_slack_s)

            yield RecordingSetup(
                "fifo", vault, public_key, new_fifo_tap,
                watchdog=lambda: fifo_watchdog(settings.fifo_dir,
                                               interval=settings.orphan_check_s),
                sample_rate=settings.sample_rate,
                link_up=lambda: ami.connected,
            )


@asynccontextmanager
async def running(config: Config, *, clock: Callable[[], float] = time.time
                  ) -> AsyncIterator[Running]:
    """The whole service, up until the block exits; tests use this directly (with their own
    clock: the engine's, the services', the webhooks' and the retention schedule's time)."""
    # The purge sweeps this directory at every start, recording or not (a missing one read as
    # a failed file removal, logged at ERROR).
    config.recordings_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    async with open_store(config.database, config.data_key, keystore=config.keystore,
                          audit_dir=config.audit_directory, url=config.store_url,
                          password=config.store_password) as store, \
            KeyStore.open(config.keystore) as keystore, _asterisk_nodes(config) as ari:
        vault = RecordingVault(config.recordings_dir, keystore,
                               load_private_keys(config.recording.private_key_files))
        async with _recording(config, ari, vault) as recording:
            async with _serve(config, store, ari, vault, recording, clock) as service:
                yield service


@asynccontextmanager
async def _asterisk_nodes(config: Config) -> AsyncIterator[AsteriskNodes]:
    """One ARI client per Asterisk node ([ari], then [nodes.<name>]), behind one port."""
    async with AsyncExitStack() as clients:
        nodes = {node.name: await clients.enter_async_context(
            AriClient(node.url, node.user, node.password, config.ari.app))
            for node in config.ari_nodes}
        yield AsteriskNodes(nodes, down_after_s=config.ari.down_after_s)


@asynccontextmanager
async def _serve(config: Config, store: Store, ari: AsteriskNodes, vault: RecordingVault,
                 recording: RecordingSetup | None, clock: Callable[[], float]
                 ) -> AsyncIterator[Running]:
    """The engine, the HTTP API and the retention schedule, stopped in reverse order."""
    metrics = Metrics()
    if recording is not None:
        recording = replace(recording, on_finished=metrics.recording_finished)
    engine = Engine(store, ari, config.dialing, recording=recording, clock=clock,
                    on_finished=metrics.attempt_finished,
                    inbound={
                        agent_phone.PURPOSE: agent_phone.pause_handler(
                            lambda endpoint, name: services.config.pause_from_phone(endpoint, name)),
                        queue_callback.PURPOSE: queue_callback.queue_callback_handler(
                            lambda queue: services.leads.widget_for_queue(queue),
                            lambda *a, **k: services.leads.create_from_queue(*a, **k), clock)})
    ami_ready = recording.link_up if recording is not None else None
    metrics.watch(calls=lambda: engine.active_calls, ari=engine.ready.is_set, ami=ami_ready)
    services = Services(store, vault=vault, clock=clock, on_lead=engine.wake, channel="api",
                        challenge_key=config.http.challenge_key.encode() or None,
                        login_policy=LoginPolicy.of(config.panel),
                        agent_activity=engine.agent_activity)
    async with listening(WebDeps(services, config.http.admin_token,
                                 header_timeout_s=config.http.header_timeout_s,
                                 body_timeout_s=config.http.body_timeout_s,
                                 panel_secure_cookies=config.panel.secure_cookies,
                                 metrics=metrics, metrics_token=config.http.metrics_token,
                                 ari_ready=engine.ready.is_set, ami_ready=ami_ready),
                         config.http.host, config.http.port) as port:
        log.info("HTTP API on %s:%d, the panel at /panel/", config.http.host, port)
        # The purge runs in a process of its own (the interpreter lock stays the visitors');
        # its writes take turns with the engine's on the store's write lock.
        purges = start_schedule(
            PurgeProcess(PurgeTarget(config.database, config.keystore, config.recordings_dir,
                                     config.data_key, config.audit_directory,
                                     config.outbox_retention, config.store_url,
                                     config.store_password), store),
            interval_s=config.retention_interval_s, clock=clock, on_run=metrics.purge_run,
            on_pruned=metrics.webhooks_pruned_by_purge)
        try:
            async with asyncio.TaskGroup() as tasks:
                engine_task = tasks.create_task(engine.run(), name="engine")
                # webhooks: a task of its own, never in the engine's way (hooks/delivery.py)
                hooks_task = tasks.create_task(DeliveryWorker(
                    store, clock=clock, on_try=metrics.webhook_delivery).run(), name="webhooks")
                try:
                    yield Running(store, engine, port, metrics)
                finally:
                    engine_task.cancel()
                    hooks_task.cancel()
        finally:
            await purges.stop()  # a running purge cleaned up (child, lease) before the store closes


async def serve(config: Config) -> None:
    """Run until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running(config):
        await stop.wait()
        log.info("stopping: ending calls in progress")


async def check_asterisk(config: Config) -> list[tuple[bool, str]]:
    """`check-config`'s probes: ARI with its credentials; AMI where a secret is configured."""
    from callengine.asterisk.probe import probe_ami, probe_ari

    found = [await probe_ari(node.url, node.user, node.password) for node in config.ari_nodes]
    if config.ami.secret:
        found.append(await probe_ami(config.ami.host, config.ami.port, config.ami.user,
                                     config.ami.secret))
    return found
