"""The ``slurm_rest`` back-end: a site driven through slurmrestd with JWT authentication.

The same behaviour as :mod:`.cli` (read it first), over HTTP:

- every request carries ``X-SLURM-USER-NAME`` and ``X-SLURM-USER-TOKEN`` (both required on
  22.05); jobs run as that user. Tokens come from :mod:`.token`.
- submit: ``POST job/submit`` with the body of :mod:`.rest_api` (the version is a setting);
  Slurm's ``errors`` become SubmissionRejected with Slurm's own words.
- poll and find_by_tag: one ``GET jobs``; a job the controller no longer lists is looked up
  in accounting through the site's ``slurm_conf`` when one is configured (REST v0.0.38 has no
  accounting endpoint without slurmdbd). Hopeless pending jobs are cancelled and FAILED.
- capacity: ``GET nodes`` (``gres``, ``gres_used``, ``state`` and ``state_flags``).
- Errors: no connection or a timeout is SiteUnavailable; so is HTTP 500 when slurmrestd
  cannot reach its controller. 22.05 answers a GET with a token signed with the wrong key
  (or expired) exactly like that, so until slurmctld has accepted our token once, such an
  answer is diagnosed with a DELETE of job 0 (:meth:`.rest_api.RestApi.probe_path`): a
  refused token is a ProtocolError naming the options to check. So is HTTP 401/403 (no
  token, or no user name). ProtocolError, not SiteUnavailable or ConfigurationError: the
  site is not down and retrying will not help, yet the broker must keep running (it handles
  every ExecutorError per site) while an operator fixes the site's settings. After the
  first success a failing GET is an outage (its message still names the token as a
  suspect); a submit or DELETE that slurmctld hung up on (5005) is always a refused token.
"""

from __future__ import annotations

import pwd
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from aifactories.domain.errors import (
    ConfigurationError,
    ProtocolError,
    SiteUnavailable,
    SubmissionRejected,
)
from aifactories.domain.jobs import JobState
from aifactories.domain.sites import Site
from aifactories.executors._output import OutputRefused
from aifactories.executors.base import (
    OutputChunk,
    OutputStream,
    PartitionCapacity,
    SiteJobStatus,
    SubmitRequest,
)
from aifactories.executors.slurm.batch import batch_job
from aifactories.executors.slurm.cli import CommandFailed, SlurmCliExecutor
from aifactories.executors.slurm.jobrecord import (
    HOPELESS_PREFIX,
    gres_gpu_count,
    status_from_record,
    tag_of,
)
from aifactories.executors.slurm.output import path_of, read_local
from aifactories.executors.slurm.rest_api import ALREADY_DONE, INVALID_JOB_ID, rest_api
from aifactories.executors.slurm.sacct import AccountingRecord, read_accounting
from aifactories.executors.slurm.states import is_hopeless_pending, node_takes_work
from aifactories.executors.slurm.token import TokenSource


class SlurmRestExecutor:
    def __init__(
        self,
        site: Site,
        url: str,
        user: str,
        *,
        jwt_key_file: str | None = None,
        token_file: str | None = None,
        api_version: str = "v0.0.38",
        output_dir: str = "/tmp",
        qos: str | None = None,
        timeout_s: float = 15.0,
        slurm_conf: str | None = None,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``transport`` replaces the network (unit tests replay recorded replies)."""
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"site {site.id}: slurm_rest url must be http(s), not {url!r}")
        if not user:
            raise ConfigurationError(f"site {site.id}: slurm_rest needs the Slurm user name")
        self.site_id = site.id
        self.site = site
        self.url = url.rstrip("/")
        self.user = user
        self.api = rest_api(api_version)
        self.output_dir = output_dir
        self.qos = qos
        self._clock = clock
        self._tokens = TokenSource(
            site.id, user, jwt_key_file=jwt_key_file, token_file=token_file, clock=clock
        )
        self._http = httpx.Client(base_url=self.url, timeout=timeout_s, transport=transport)
        # Accounting (sacct) needs the site's configuration: optional for REST sites.
        self._cli = SlurmCliExecutor(site, slurm_conf) if slurm_conf else None
        self._partitions_checked = False
        # Until slurmctld has once accepted our token, "unreachable" may mean "refused"
        # (22.05 answers both alike): a first failure is diagnosed, later ones are outages.
        self._token_proven = False

    # -- HTTP --------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"X-SLURM-USER-NAME": self.user, "X-SLURM-USER-TOKEN": self._tokens.token()}

    def _request(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        try:
            response = self._http.request(method, path, json=body, headers=self._headers())
        except (httpx.TransportError, httpx.TimeoutException) as exc:
            raise SiteUnavailable(f"site {self.site_id}: slurmrestd at {self.url}: {exc}") from exc
        if response.status_code in (401, 403):
            raise ProtocolError(
                f"site {self.site_id}: slurmrestd refused our credentials (HTTP "
                f"{response.status_code}: {response.text.strip()[:200]}); check the site's "
                f"'user' ({self.user}) and 'jwt_key_file'/'token_file' options"
            )
        try:
            payload = response.json() if response.content else {}
        except ValueError as exc:
            raise ProtocolError(
                f"site {self.site_id}: {method} {path} answered HTTP {response.status_code} "
                f"with no JSON: {response.text[:200]!r}"
            ) from exc
        if not isinstance(payload, dict):
            raise ProtocolError(f"site {self.site_id}: {method} {path}: not a JSON object")
        if self.api.unreachable(method, response.status_code, payload):
            if self._token_refused(method, payload):
                raise ProtocolError(
                    f"site {self.site_id}: slurmctld refused our token for user {self.user} "
                    f"(it hung up on {method} {path}); check the site's 'user' and "
                    f"'jwt_key_file'/'token_file' options (a wrong key or an expired token)"
                )
            errors = "; ".join(self.api.errors(payload))
            raise SiteUnavailable(
                f"site {self.site_id}: Slurm controller unreachable through {self.url} "
                f"({errors}); if the site is up, slurmctld refuses our token: check the "
                f"'user' and 'jwt_key_file'/'token_file' options"
            )
        if response.status_code < 300 or self.api.error_numbers(payload):
            self._token_proven = True  # slurmctld answered us (a 404 from slurmrestd does not)
        return response.status_code, payload

    def _token_refused(self, method: str, reply: Mapping[str, Any]) -> bool:
        """Whether slurmctld refused our token rather than being down. Submit and DELETE
        say so; a GET does not, so until the token has worked once, ask with a DELETE that
        changes nothing (once it has, a failing GET is an outage: no extra wait)."""
        if self.api.token_refused(reply) or method != "GET" or self._token_proven:
            return self.api.token_refused(reply)
        try:
            probe = self._http.delete(self.api.probe_path(), headers=self._headers())
            return self.api.token_refused(probe.json())
        except (httpx.HTTPError, ValueError, AttributeError):
            return False  # no clearer answer: the site is unavailable

    def _get_list(self, path: str, read: Callable[[Mapping[str, Any]], Any]) -> Any:
        status, payload = self._request("GET", path)
        errors = "; ".join(self.api.errors(payload))
        try:
            if status >= 400:
                # 22.05 sends an empty list along with the error: it is not the site's answer.
                raise ValueError(errors or "no reason given")
            return read(payload)
        except ValueError as exc:
            raise ProtocolError(
                f"site {self.site_id}: GET {path} answered HTTP {status}: {errors or exc}"
            ) from exc

    # -- the contract --------------------------------------------------------------------------

    def _check_partitions(self) -> None:
        if self._partitions_checked:
            return
        listed = self._get_list(self.api.partitions_path(), self.api.partition_names)
        missing = [p.name for p in self.site.partitions if p.name not in listed]
        if missing:
            raise ConfigurationError(
                f"site {self.site_id}: partition(s) {', '.join(missing)} not found at "
                f"{self.url} (it has: {', '.join(sorted(listed)) or 'none'})"
            )
        self._partitions_checked = True

    def submit(self, request: SubmitRequest) -> str:
        self._check_partitions()
        job = batch_job(request, output_dir=self.output_dir, qos=self.qos)
        cannot = self.api.unsupported(job)
        if cannot is not None:
            raise SubmissionRejected(
                f"site {self.site_id} cannot run job {request.job_id} as asked: {cannot}",
                reason=cannot,
            )
        status, payload = self._request("POST", self.api.submit_path(), self.api.submit_body(job))
        site_job_id = self.api.submitted_id(payload)
        errors = self.api.errors(payload)
        if errors or site_job_id is None:
            reason = "; ".join(errors) or f"HTTP {status} with no job id"
            raise SubmissionRejected(
                f"site {self.site_id} refused job {request.job_id} (account {job.account}, "
                f"partition {job.partition}, {job.nodes} node(s) x {job.gres or 'no GPUs'}): "
                f"{reason}",
                reason=reason,
            )
        return site_job_id

    def cancel(self, site_job_id: str) -> None:
        status, payload = self._request("DELETE", self.api.job_path(site_job_id))
        numbers = self.api.error_numbers(payload)
        if status < 300 and not numbers:
            return
        if numbers & {INVALID_JOB_ID, ALREADY_DONE} or "already" in " ".join(
            self.api.errors(payload)
        ):
            return  # unknown or finished: nothing to stop
        raise ProtocolError(
            f"site {self.site_id}: cancelling {site_job_id} failed: "
            f"{'; '.join(self.api.errors(payload)) or f'HTTP {status}'}"
        )

    def poll(self, site_job_ids: Sequence[str]) -> dict[str, SiteJobStatus]:
        wanted = [str(i) for i in dict.fromkeys(site_job_ids)]
        if not wanted:
            return {}
        now = self._clock()
        records = self._jobs()
        result = {j: self._status(records[j], now) for j in wanted if j in records}
        missing = [j for j in wanted if j not in result]
        for found in self._accounting_records(missing):
            if found.state.final or found.state is JobState.PENDING:
                result[found.site_job_id] = found.to_status()
        return result

    def capacity(self) -> list[PartitionCapacity]:
        self._check_partitions()
        free: dict[str, list[int]] = {}
        for node in self._get_list(self.api.nodes_path(), self.api.node_records):
            flags = node.get("state_flags") or []
            usable = node_takes_work(str(node.get("state") or ""), [str(f) for f in flags])
            total = gres_gpu_count(str(node.get("gres") or ""))
            available = max(0, total - gres_gpu_count(str(node.get("gres_used") or "")))
            for partition in node.get("partitions") or []:
                free.setdefault(str(partition), []).append(available if usable else 0)
        result = []
        for partition in self.site.partitions:
            histogram = [0] * (partition.gpus_per_node + 1)
            for available in free.get(partition.name, []):
                histogram[min(available, partition.gpus_per_node)] += 1
            result.append(PartitionCapacity(partition.name, tuple(histogram)))
        return result

    def find_by_tag(self, tag: str) -> SiteJobStatus | None:
        now = self._clock()
        matches = [r for r in self._jobs().values() if tag_of(r) == tag]
        if matches:
            best = max(
                matches,
                key=lambda r: (not self._status(r, now).state.final, int(r["job_id"])),
            )
            return self._status(best, now)
        found = [r for r in self._accounting_records(None) if r.tag == tag]
        if not found:
            return None
        return max(found, key=lambda r: (not r.state.final, int(r.site_job_id))).to_status()

    def read_output(
        self,
        site_job_id: str,
        stream: OutputStream,
        offset: int,
        limit: int,
        known_path: str | None = None,
    ) -> OutputChunk | None:
        """Read where the site's file system is mounted on this host (see :mod:`.output`);
        a path not there reads as no file yet. Jobs run as ``user``: its uid is the owner
        to check, from the job record while slurmctld has it, else from this host's users."""
        path = known_path
        owner: int | None = None
        if path is None:
            record = self._jobs().get(site_job_id)
            if record is None:
                return None
            path = path_of(record, stream)
            owner = int(record["user_id"]) if isinstance(record.get("user_id"), int) else None
            if path is None:
                return None
        if owner is None:
            try:
                owner = pwd.getpwnam(self.user).pw_uid
            except KeyError:
                raise OutputRefused(
                    f"site {self.site_id}: cannot tell who owns {path!r}: the site's user "
                    f"{self.user} is unknown on this host and Slurm no longer knows job "
                    f"{site_job_id}"
                ) from None
        return read_local(path, owner, offset, limit)

    def close(self) -> None:
        self._http.close()

    # -- helpers -------------------------------------------------------------------------------

    def _jobs(self) -> dict[str, Mapping[str, Any]]:
        records = self._get_list(self.api.jobs_path(), self.api.job_records)
        return {str(r["job_id"]): r for r in records}

    def _status(self, record: Mapping[str, Any], now: float) -> SiteJobStatus:
        status = status_from_record(record, now)
        reason = str(record.get("state_reason") or "")
        if status.state is JobState.SUBMITTED and is_hopeless_pending(reason):
            self.cancel(status.site_job_id)  # waiting would never help (see cli.py)
            return SiteJobStatus(
                site_job_id=status.site_job_id,
                tag=status.tag,
                state=JobState.FAILED,
                ended_at=now,
                reason=f"{HOPELESS_PREFIX}{reason}",
            )
        return status

    def _accounting_records(self, job_ids: list[str] | None) -> list[AccountingRecord]:
        if self._cli is None or (job_ids is not None and not job_ids):
            return []
        mode = self._cli.accounting
        if mode == "none":
            return []
        since = None if job_ids else self._clock() - 30 * 86400
        try:
            return read_accounting(self._cli.run, job_ids, since, mode == "jobcomp")
        except CommandFailed:
            return []  # accounting is only a fallback
