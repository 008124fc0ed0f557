"""The programme worker: a thread beside the broker (in ``aif up``) that delivers the
notification outbox every ``notify_interval_s`` and runs the programme's other periodic jobs
(an allocation sweep, ...), given as callables of the service context.

Like the broker and the site sync, it must outlive a bad pass: every failure is logged and
the next pass tries again. Several workers (processes) may run at once: delivery claims each
notification with a conditional update (services/notifications/notify_delivery.py); the extra
jobs must be safe to run concurrently themselves.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from aifactories.services.core.context import ServiceContext
from aifactories.services.notifications.notify_delivery import DeliveryReport, deliver_pending

log = logging.getLogger(__name__)

PeriodicJob = Callable[[ServiceContext], object]
# a pass keeps delivering while batches come back full, up to this many batches
MAX_BATCHES_PER_PASS = 20
BATCH = 100


class ProgrammeWorker:
    def __init__(
        self,
        ctx: ServiceContext,
        *,
        extra: Sequence[PeriodicJob] = (),
        interval_s: float | None = None,
    ) -> None:
        self._ctx = ctx
        self._extra = tuple(extra)
        self._interval_s = interval_s if interval_s is not None else ctx.settings.notify_interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.passes = 0
        self.last_report: DeliveryReport | None = None

    def run_once(self) -> None:
        """One pass: deliver what is due (while batches come back full), then each extra job."""
        for _ in range(MAX_BATCHES_PER_PASS):
            try:
                report = deliver_pending(self._ctx, limit=BATCH)
            except Exception:
                log.exception("notification delivery failed; retrying at the next pass")
                break
            self.last_report = report
            if report.sent or report.failed or report.retrying:
                log.info(
                    "notifications: %d sent, %d to retry, %d failed",
                    report.sent,
                    report.retrying,
                    report.failed,
                )
            if report.claimed < BATCH or self._stop.is_set():
                break
        for job in self._extra:
            if self._stop.is_set():
                break
            try:
                job(self._ctx)
            except Exception:
                log.exception(
                    "periodic job %s failed; retrying at the next pass",
                    getattr(job, "__name__", repr(job)),
                )
        self.passes += 1

    def run_forever(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.run_once()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.run_forever, name="aifactories-programme", daemon=True
        )
        self._thread.start()
        log.info("programme worker started: every %.1f s", self._interval_s)

    def stop(self, timeout: float = 60.0) -> None:
        """Stop after the current pass and wait for it (a send times out within seconds)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=timeout)
            if thread.is_alive():
                log.warning("programme worker still busy after %.0f s; left behind", timeout)
