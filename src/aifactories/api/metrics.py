"""GET /metrics: Prometheus's text format, from the request histogram, the broker's counters
and gauges read from the database at scrape time.

The gauges (jobs waiting and running, free GPUs, ledger totals) come from a custom collector
that reads the shared database when Prometheus asks, rather than from a write per event: every
instance then reports the same federation, and the hot paths write nothing extra. The broker
keeps plain counters (``broker/stats.py``) that the collector turns into metric families, so
that the broker does not depend on a metrics library. Labels stay bounded: sites, partitions,
states and route templates, never a job, project or user.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from aifactories.api.observability import request_histogram
from aifactories.broker.stats import CYCLE_BUCKETS_S, STATS, BrokerStats
from aifactories.domain.errors import AuthenticationRequired
from aifactories.services.platform import Platform
from aifactories.services.platform_status import read_gauges

log = logging.getLogger(__name__)
router = APIRouter()


@dataclass(frozen=True)
class ApiMetrics:
    """One registry per application (not the process-wide default registry): tests build
    many applications in one process, and each must count only its own requests."""

    registry: CollectorRegistry
    requests: Histogram


def make_metrics(platform: Callable[[], Platform | None], stats: BrokerStats = STATS) -> ApiMetrics:
    registry = CollectorRegistry(auto_describe=False)
    requests = request_histogram(registry)
    registry.register(PlatformCollector(platform, stats))
    return ApiMetrics(registry=registry, requests=requests)


class PlatformCollector(Collector):
    def __init__(self, platform: Callable[[], Platform | None], stats: BrokerStats) -> None:
        self._platform = platform
        self._stats = stats

    def collect(self) -> Iterable[Metric]:
        yield from self._broker()
        plat = self._platform()
        if plat is None:  # the application is not started yet
            return
        yield from self._federation(plat)

    def _broker(self) -> Iterable[Metric]:
        """The counters of the broker running in this process (none if it runs elsewhere)."""
        view = self._stats.view()
        placements = CounterMetricFamily(
            "aif_broker_placements",
            "Jobs the broker placed (budget reserved, sent to the site's scheduler next).",
            labels=["site", "partition"],
        )
        for (site, partition), n in sorted(view.placements.items()):
            placements.add_metric([site, partition], n)
        yield placements
        for name, doc, counts in (
            ("aif_broker_submissions", "Jobs a site's scheduler accepted.", view.submissions),
            (
                "aif_broker_submit_errors",
                "Submissions a site did not answer (the job waits for reconcile).",
                view.submit_errors,
            ),
            (
                "aif_broker_failures",
                "Jobs that ended failed at a site (rejected, failed or lost by the site).",
                view.failures,
            ),
            (
                "aif_broker_site_outages",
                "Times a site became unreachable to the broker.",
                view.outages,
            ),
            (
                "aif_broker_moved_jobs",
                "Queued jobs moved away from a site while it was unreachable.",
                view.moved,
            ),
        ):
            family = CounterMetricFamily(name, doc, labels=["site"])
            for site, n in sorted(counts.items()):
                family.add_metric([site], n)
            yield family
        finished = CounterMetricFamily(
            "aif_broker_jobs_finished",
            "Jobs that reached a final state, by site and state.",
            labels=["site", "state"],
        )
        for (site, state), n in sorted(view.finished.items()):
            finished.add_metric([site, state], n)
        yield finished
        cumulative, running = [], 0
        for bound, n in zip(
            (*CYCLE_BUCKETS_S, float("inf")), view.cycle_bucket_counts, strict=True
        ):
            running += n
            cumulative.append((_bound(bound), running))
        cycles = HistogramMetricFamily(
            "aif_broker_cycle_duration_seconds",
            "Duration of the broker's completed cycles (reconcile, place, apply).",
        )
        cycles.add_metric([], cumulative, sum_value=view.cycle_sum_s)
        yield cycles
        yield CounterMetricFamily(
            "aif_broker_cycles_failed",
            "Broker cycles that failed with an error.",
            view.cycles_failed,
        )

    def _federation(self, plat: Platform) -> Iterable[Metric]:
        up = GaugeMetricFamily("aif_database_up", "Whether the scrape could read the database.")
        try:
            gauges = read_gauges(plat.ctx)
        except SQLAlchemyError as exc:
            log.warning("metrics: the database could not be read: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily(
            "aif_jobs_pending", "Jobs waiting for the broker to place them.", gauges.pending
        )
        labels = ["site", "partition"]
        families = {
            "queued": GaugeMetricFamily(
                "aif_jobs_queued", "Jobs placed at a partition, not started yet.", labels=labels
            ),
            "running": GaugeMetricFamily(
                "aif_jobs_running", "Jobs running at a partition.", labels=labels
            ),
            "free_gpus": GaugeMetricFamily(
                "aif_partition_free_gpus",
                "Free GPUs at a partition, as the broker last saw them.",
                labels=labels,
            ),
            "gpus": GaugeMetricFamily(
                "aif_partition_gpus", "GPUs of a partition in the catalogue.", labels=labels
            ),
            "available": GaugeMetricFamily(
                "aif_partition_available",
                "1 if the broker can place jobs at the partition (its site answers).",
                labels=labels,
            ),
        }
        for p in gauges.partitions:
            key = [p.site, p.partition]
            families["queued"].add_metric(key, p.queued)
            families["running"].add_metric(key, p.running)
            families["free_gpus"].add_metric(key, p.free_gpus)
            families["gpus"].add_metric(key, p.gpus)
            families["available"].add_metric(key, 1 if p.available else 0)
        yield from families.values()
        ledger = GaugeMetricFamily(
            "aif_ledger_gpu_hours",
            "The books in GPU-hours (billing-weighted): granted, reserved by placed jobs and "
            "charged, by the allocations' site ('pool': any site) and status.",
            labels=["kind", "site", "status"],
        )
        for total in gauges.ledger:
            for kind, seconds in (
                ("granted", total.granted_gpu_seconds),
                ("reserved", total.reserved_gpu_seconds),
                ("charged", total.charged_gpu_seconds),
            ):
                ledger.add_metric([kind, total.site, total.status], seconds / 3600)
        yield ledger
        report = plat.broker.last_report if plat.broker_running else None
        if report is not None:
            yield GaugeMetricFamily(
                "aif_broker_last_cycle_timestamp_seconds",
                "When this instance's broker last completed a cycle (Unix time).",
                report.at,
            )


def _bound(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus's text format. Open unless ``metrics_token`` is set (docs/observability.md)."""
    plat: Platform | None = getattr(request.app.state, "platform", None)
    wanted = plat.settings.metrics_token if plat is not None else None
    if wanted:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {wanted}".encode()):
            raise AuthenticationRequired(
                "/metrics needs the metrics token: 'Authorization: Bearer <metrics_token>' "
                "(in Prometheus: the scrape job's 'authorization' credentials)"
            )
    api_metrics: ApiMetrics = request.app.state.metrics
    return Response(generate_latest(api_metrics.registry), media_type=CONTENT_TYPE_LATEST)
