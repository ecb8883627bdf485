"""Prometheus metrics (prometheus-client), one registry per app (never the global default: the
tests build several engines in one process).

Names follow Asterisk's own res_prometheus (`asterisk_calls_count`, `asterisk_channels_state`,
`asterisk_channels_duration_seconds`, `asterisk_pjsip_outbound_registration_status`): the
`callengine_` namespace, then the subsystem (calls, leads, attempts, recordings, purge,
webhooks, ari, ami), then what is measured; a current number is `_count` (a gauge, as
asterisk_calls_count), a state `_state`, a duration `_seconds`. Counters end in `_total`, where
res_prometheus says `_sum` (asterisk_calls_sum): prometheus-client appends `_total` to every
counter, and `_sum` is a histogram's own suffix in OpenMetrics.

Two kinds of source (docs/metrics.md):
- counts the store keeps (leads by status and outcome) are read at scrape time, by one
  GROUP BY over the leads (the /metrics handler hands them to `set_lead_counts` before
  `render`): they survive restarts and agree with the panel's numbers;
- events this process sees (attempts finished, ring and talk times, recordings, purge runs,
  webhook deliveries) are counters and histograms that start at 0 with the process, which is
  what Prometheus' rate() and increase() expect.
No label holds a number, a name, an address or any other personal datum.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from callengine.flow import Result

# Seconds: an agent group rings 10–30 s by default, a visitor's phone up to ~60 s.
RING_BUCKETS = (1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0)
TALK_BUCKETS = (10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)
WEBHOOK_OUTCOMES = ("delivered", "failed", "dead")
PURGE_OUTCOMES = ("ok", "failed", "skipped")

LeadCounts = Mapping[tuple[str, str], int]  # (status, outcome or "") → leads


class _StoreCounts(Collector):
    """callengine_leads_count as the scrape read it (`Metrics.set_lead_counts`)."""

    def __init__(self) -> None:
        self.counts: LeadCounts = {}

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("callengine_leads_count", _LEADS_HELP, labels=("status", "outcome"))

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("callengine_leads_count", _LEADS_HELP,
                                   labels=("status", "outcome"))
        for (status, outcome), count in sorted(self.counts.items()):
            family.add_metric((status, outcome), count)
        yield family


_LEADS_HELP = ("Leads in the store by status (queued, calling, done) and outcome (empty until"
               " the lead is done); read from the store at each scrape")


class Metrics:
    """The engine's metrics. The composition root wires the gauges read at scrape time
    (`watch`); the engine, the recorder, the purge schedule and the webhook
    outbox call the `*_finished`/`*_run`/`webhook_delivery` methods as things happen."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.attempts = Counter(
            "callengine_attempts", "Call attempts finished by this process, by outcome",
            ["outcome"], registry=r)
        self.calls = Gauge("callengine_calls_count", "Calls in progress", registry=r)
        self.agent_ring = Histogram(
            "callengine_calls_agent_ring_seconds",
            "From an attempt's start until an agent answered", buckets=RING_BUCKETS, registry=r)
        self.visitor_ring = Histogram(
            "callengine_calls_visitor_ring_seconds",
            "From dialling the visitor until they answered", buckets=RING_BUCKETS, registry=r)
        self.talk = Histogram(
            "callengine_calls_talk_seconds", "From bridging agent and visitor until the first"
            " hangup", buckets=TALK_BUCKETS, registry=r)
        self.recordings = Counter(
            "callengine_recordings", "Recordings finished by this process, by status"
            " (complete, incomplete, failed)", ["status"], registry=r)
        self.recording_bytes = Counter(
            "callengine_recordings_bytes", "Audio bytes (PCM, before encryption) recorded by"
            " this process", registry=r)
        self.purge_runs = Counter(
            "callengine_purge_runs", "Retention purge runs, by outcome (ok, failed, skipped:"
            " another purge held the lease)", ["outcome"], registry=r)
        self.webhook_deliveries = Counter(
            "callengine_webhooks_deliveries", "Webhook delivery tries, by event type and"
            " outcome (delivered: a 2xx answer; failed: to be tried again; dead: given up)",
            ["event", "outcome"], registry=r)
        self.webhooks_pruned = Counter(
            "callengine_webhooks_pruned", "Settled webhook deliveries (delivered, dead) the"
            " retention runs pruned from the outbox", registry=r)
        self.ari_state = Gauge(
            "callengine_ari_connection_state", "1 while the ARI events websocket is connected"
            " and reconciled (the engine may dial), else 0", registry=r)
        self.ami_state = Gauge(
            "callengine_ami_connection_state", "1 while logged in to AMI, else 0 (only where"
            " AMI is configured: the FIFO recording route)", registry=r)
        self._lead_counts = _StoreCounts()
        r.register(self._lead_counts)

    # ---- wiring (composition root) --------------------------------------------------------

    def watch(self, *, calls: Callable[[], int], ari: Callable[[], bool],
              ami: Callable[[], bool] | None = None) -> None:
        """Gauges read when scraped: calls in progress, ARI and AMI state."""
        self.calls.set_function(lambda: float(calls()))
        self.ari_state.set_function(lambda: 1.0 if ari() else 0.0)
        if ami is not None:
            self.ami_state.set_function(lambda: 1.0 if ami() else 0.0)

    # ---- events ---------------------------------------------------------------------------

    def attempt_finished(self, result: Result) -> None:
        """An attempt ended (the engine's _finish): its outcome, ring and talk times."""
        self.attempts.labels(result.outcome.value).inc()
        for histogram, seconds in ((self.agent_ring, result.agent_ring_s),
                                   (self.visitor_ring, result.visitor_ring_s),
                                   (self.talk, result.talk_s)):
            if seconds is not None:
                histogram.observe(max(0.0, seconds))

    def recording_finished(self, status: str, audio_bytes: int) -> None:
        self.recordings.labels(status).inc()
        self.recording_bytes.inc(max(0, audio_bytes))

    def purge_run(self, outcome: str) -> None:
        if outcome not in PURGE_OUTCOMES:
            raise ValueError(f"purge outcome {outcome!r}: one of {PURGE_OUTCOMES}")
        self.purge_runs.labels(outcome).inc()

    def webhooks_pruned_by_purge(self, count: int) -> None:
        self.webhooks_pruned.inc(count)

    def webhook_delivery(self, event: str, outcome: str) -> None:
        """One delivery try of a webhook of type `event` (e.g. "lead.created"): "delivered"
        (2xx), "failed" (will be tried again) or "dead" (dead-lettered: no more tries)."""
        if outcome not in WEBHOOK_OUTCOMES:
            raise ValueError(f"webhook outcome {outcome!r}: one of {WEBHOOK_OUTCOMES}")
        self.webhook_deliveries.labels(event, outcome).inc()

    # ---- scraping -------------------------------------------------------------------------

    def set_lead_counts(self, counts: LeadCounts) -> None:
        """What the store counts, read for this scrape (before `render`)."""
        self._lead_counts.counts = dict(counts)

    def render(self) -> tuple[bytes, str]:
        """The text exposition format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


__all__ = ["Metrics", "LeadCounts", "WEBHOOK_OUTCOMES", "PURGE_OUTCOMES"]
