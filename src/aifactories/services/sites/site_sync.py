"""Site sync: the accounts reconcile agent and the usage import, on a timer beside the broker.

Accounts are synced once before the broker places anything (a site enforcing associations
refuses jobs of accounts it does not know yet), then every ``site_sync_interval_s``, after
the usage import. A failing pass is logged and retried next time: like the broker, the
sync must outlive a bad site.
"""

from __future__ import annotations

import logging
import threading

from aifactories.services.core.context import ServiceContext
from aifactories.services.sites.site_accounts import reconcile_site_accounts
from aifactories.services.sites.usage_import import import_usage

log = logging.getLogger(__name__)


class SiteSync:
    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self.passes = 0

    def sync_accounts(self) -> None:
        try:
            report = reconcile_site_accounts(self._ctx)
        except Exception:
            log.exception("accounts sync failed; retrying at the next pass")
            return
        for site in report.sites:
            if site.error:
                log.warning("accounts at %s not synced: %s", site.site_id, site.error)
            elif site.actions:
                log.info("accounts at %s: %d changes", site.site_id, len(site.actions))

    def run_once(self) -> None:
        # Usage first: a member's own jobs must come off the remainder before the limits are
        # rewritten from it, or they are briefly allowed again.
        try:
            for report in import_usage(self._ctx):
                if report.error:
                    log.warning("usage at %s not imported: %s", report.site_id, report.error)
                elif report.charged_jobs:
                    log.info(
                        "usage at %s: %d direct jobs charged", report.site_id, report.charged_jobs
                    )
        except Exception:
            log.exception("usage import failed; retrying at the next pass")
        self.sync_accounts()
        self.passes += 1

    def run_forever(self, stop: threading.Event, interval_s: float) -> None:
        while not stop.wait(interval_s):
            self.run_once()
