"""The ``slurm_cli`` back-end: a site driven through its own commands (sbatch, squeue, scancel,
sinfo, scontrol, sacct), each run with ``SLURM_CONF`` set to the site's file.

- submit: ``sbatch --parsable`` with the script on standard input (see :mod:`.batch`).
- poll: one ``squeue --json -t all`` (22.05 ignores ``-j`` with ``--json`` and lists every
  job; newer versions honour it and fail with "Invalid job id" if one is gone, so then all
  jobs are listed); a job squeue no longer knows is looked up in accounting (``sacct`` with
  slurmdbd, ``sacct -c`` with jobcomp/filetxt) before it is reported absent. A queued job
  whose pending reason never clears (:func:`.states.is_hopeless_pending`) is cancelled and
  reported FAILED with Slurm's reason, so the broker releases its reservation.
- capacity: ``sinfo -N`` with Gres and GresUsed; nodes that take no work have 0 free GPUs.
- With ``ssh_host`` every command runs on that host through ``ssh`` (configured, not tested).

The child environment is minimal on purpose: sbatch exports it to the job, so the broker's
own variables (and any SLURM_* of a surrounding job) must not leak into it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aifactories.domain.errors import (
    ConfigurationError,
    InvalidInput,
    ProtocolError,
    SiteUnavailable,
    SubmissionRejected,
)
from aifactories.domain.jobs import JobState
from aifactories.domain.sites import Site
from aifactories.executors.base import (
    OutputChunk,
    OutputStream,
    PartitionCapacity,
    SiteJobStatus,
    SubmitRequest,
)
from aifactories.executors.slurm.batch import batch_job, sbatch_args
from aifactories.executors.slurm.jobrecord import (
    HOPELESS_PREFIX,
    gres_gpu_count,
    status_from_record,
    tag_of,
)
from aifactories.executors.slurm.output import path_of, read_local, read_over_ssh
from aifactories.executors.slurm.sacct import AccountingRecord, read_accounting
from aifactories.executors.slurm.states import is_hopeless_pending, node_takes_work

ACCOUNTING_MODES = ("auto", "slurmdbd", "jobcomp", "none")
# What Slurm's clients print when the controller (or the ssh hop) cannot be reached.
_UNREACHABLE = re.compile(
    r"Unable to contact slurm controller|connect failure|Connection refused|"
    r"Socket timed out|Zero Bytes were transmitted|Communication connection failure|"
    r"Unable to establish connection|Could not resolve hostname|No route to host|"
    r"Connection timed out|ssh: connect to host",
    re.IGNORECASE,
)
_REJECTED = re.compile(r"Batch job submission failed:\s*(.+)")
_INVALID_JOB = re.compile(r"Invalid job id", re.IGNORECASE)
_SINFO_FIELDS = ("NodeList", "Partition", "Gres", "GresUsed", "StateLong")


def _id_key(site_job_id: str) -> tuple[int, str]:
    digits = re.match(r"\d+", site_job_id)
    return (int(digits.group()) if digits else -1, site_job_id)


class CommandFailed(Exception):
    """A site command exited non-zero for a reason other than an unreachable site."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str, stdout: str = "") -> None:
        # sacctmgr explains its refusals on standard output: keep both.
        said = stderr.strip() or stdout.strip()
        super().__init__(f"{' '.join(argv[:2])} exited {returncode}: {said}")
        self.stderr = stderr
        self.stdout = stdout


class SlurmCliExecutor:
    """One Slurm site through its command-line tools. See the module docstring.

    ``accounting``: ``slurmdbd`` (``sacct``), ``jobcomp`` (``sacct -c``), ``none``, or
    ``auto`` (read ``AccountingStorageType``/``JobCompType`` from ``scontrol show config``).
    """

    def __init__(
        self,
        site: Site,
        slurm_conf: str,
        *,
        output_dir: str = "/tmp",
        qos: str | None = None,
        command_timeout_s: float = 30.0,
        ssh_host: str | None = None,
        accounting: str = "auto",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not slurm_conf:
            raise ConfigurationError(f"site {site.id}: slurm_cli needs slurm_conf")
        if accounting not in ACCOUNTING_MODES:
            raise InvalidInput(
                "accounting", f"must be one of {', '.join(ACCOUNTING_MODES)}, not {accounting!r}"
            )
        if not command_timeout_s > 0:
            raise InvalidInput("command_timeout_s", f"must be positive, not {command_timeout_s}")
        if ssh_host is None and not os.path.isfile(slurm_conf):
            raise ConfigurationError(f"site {site.id}: no Slurm configuration at {slurm_conf}")
        self.site_id = site.id
        self.site = site
        self.slurm_conf = slurm_conf
        self.output_dir = output_dir
        self.qos = qos
        self.command_timeout_s = command_timeout_s
        self.ssh_host = ssh_host
        self._accounting = None if accounting == "auto" else accounting
        self._clock = clock
        self._partitions_checked = False

    # -- running commands --------------------------------------------------------------------

    def _site_vars(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        """What every command gets at the site: its configuration, epoch times, and the
        job's own variables (a PATH among them is left to the site's login environment)."""
        site = {k: v for k, v in (extra or {}).items() if k != "PATH"}
        site["SLURM_CONF"] = self.slurm_conf
        site["SLURM_TIME_FORMAT"] = "%s"  # epoch seconds from sacct/squeue, whatever the TZ
        return site

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> str:
        """Run one Slurm command at the site; return its standard output.

        Raises SiteUnavailable when the site cannot be reached or the command times out,
        CommandFailed (if ``check``) when it exits non-zero for another reason."""
        site_vars = self._site_vars(env)
        if self.ssh_host is not None:
            remote = shlex.join(["env", *(f"{k}={v}" for k, v in site_vars.items()), *argv])
            command = ["ssh", "-o", "BatchMode=yes", self.ssh_host, remote]
            child_env = dict(os.environ)  # ssh itself needs HOME, SSH_AUTH_SOCK, ...
        else:
            command = list(argv)
            keep = ("PATH", "HOME", "LANG", "TZ", "USER", "LOGNAME")
            child_env = {k: os.environ[k] for k in keep if k in os.environ}
            child_env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
            child_env.update(site_vars)
        try:
            done = subprocess.run(
                command,
                input=stdin,
                env=child_env,
                capture_output=True,
                text=True,
                timeout=self.command_timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise SiteUnavailable(
                f"site {self.site_id}: {argv[0]} did not answer within {self.command_timeout_s:g} s"
            ) from exc
        except FileNotFoundError as exc:
            raise ConfigurationError(
                f"site {self.site_id}: {command[0]} is not installed on this host"
            ) from exc
        if done.returncode != 0:
            if _UNREACHABLE.search(done.stderr) or (self.ssh_host and done.returncode == 255):
                raise SiteUnavailable(
                    f"site {self.site_id}: Slurm controller unreachable: {done.stderr.strip()}"
                )
            if check:
                raise CommandFailed(argv, done.returncode, done.stderr, done.stdout)
        return done.stdout

    def _run_ok(self, argv: list[str]) -> str:
        try:
            return self.run(argv)
        except CommandFailed as exc:
            raise ProtocolError(f"site {self.site_id}: {exc}") from exc

    # -- configuration -------------------------------------------------------------------------

    @property
    def accounting(self) -> str:
        """How finished jobs are read: ``slurmdbd``, ``jobcomp`` or ``none``."""
        if self._accounting is None:
            config = self._run_ok(["scontrol", "show", "config"])
            values = dict(
                (k.strip(), v.strip())
                for k, _, v in (line.partition("=") for line in config.splitlines())
            )
            if "slurmdbd" in values.get("AccountingStorageType", ""):
                self._accounting = "slurmdbd"
            elif "filetxt" in values.get("JobCompType", ""):
                self._accounting = "jobcomp"
            else:
                self._accounting = "none"
        return self._accounting

    def _check_partitions(self) -> None:
        """The catalogue's partitions must exist at the site: checked once, on first contact."""
        if self._partitions_checked:
            return
        listed = {
            name.strip().rstrip("*")
            for name in self._run_ok(["sinfo", "-h", "-a", "-o", "%R"]).split()
        }
        missing = [p.name for p in self.site.partitions if p.name not in listed]
        if missing:
            raise ConfigurationError(
                f"site {self.site_id}: partition(s) {', '.join(missing)} not found in "
                f"{self.slurm_conf} (it has: {', '.join(sorted(listed)) or 'none'})"
            )
        self._partitions_checked = True

    # -- the contract --------------------------------------------------------------------------

    def submit(self, request: SubmitRequest) -> str:
        self._check_partitions()
        job = batch_job(request, output_dir=self.output_dir, qos=self.qos)
        try:
            out = self.run(["sbatch", *sbatch_args(job)], stdin=job.script, env=job.environment)
        except CommandFailed as exc:
            # sbatch exits non-zero only when it made no job (an unreachable controller, where
            # the job may exist, was told apart in run()): whatever it said, the job is refused.
            # Taken as "unknown" instead, the job would be requeued and refused every cycle.
            found = _REJECTED.search(exc.stderr)
            said = [line.strip() for line in exc.stderr.splitlines() if line.strip()]
            reason = found.group(1).strip() if found else (said[-1] if said else str(exc))
            raise SubmissionRejected(
                f"site {self.site_id} refused job {request.job_id} (account {job.account}, "
                f"partition {job.partition}, {job.nodes} node(s) x {job.gres or 'no GPUs'}):"
                f" {reason}",
                reason=reason,
            ) from exc
        # --parsable prints 'ID' or 'ID;CLUSTER'
        first = out.strip().splitlines()[-1] if out.strip() else ""
        site_job_id = first.split(";", 1)[0].strip()
        if not re.fullmatch(r"\d+", site_job_id):
            raise ProtocolError(f"site {self.site_id}: sbatch printed {out!r}, not a job id")
        return site_job_id

    def cancel(self, site_job_id: str) -> None:
        try:
            self.run(["scancel", site_job_id])
        except CommandFailed as exc:
            if _INVALID_JOB.search(exc.stderr) or "already complet" in exc.stderr:
                return  # unknown or finished: nothing to stop
            raise ProtocolError(f"site {self.site_id}: {exc}") from exc

    def poll(self, site_job_ids: Sequence[str]) -> dict[str, SiteJobStatus]:
        wanted = [str(i) for i in dict.fromkeys(site_job_ids)]
        if not wanted:
            return {}
        now = self._clock()
        records = self._squeue(wanted)
        result: dict[str, SiteJobStatus] = {}
        for job_id in wanted:
            record = records.get(job_id)
            if record is not None:
                result[job_id] = self._status(record, now)
        missing = [j for j in wanted if j not in result]
        for found in self._accounting_records(missing):
            if found.state.final or found.state is JobState.PENDING:
                result[found.site_job_id] = found.to_status()
        return result

    def capacity(self) -> list[PartitionCapacity]:
        self._check_partitions()
        fields = ",".join(f"{name}:0|" for name in _SINFO_FIELDS)
        out = self._run_ok(["sinfo", "-N", "-h", "-a", "-O", fields])
        free: dict[str, list[int]] = {}
        for line in out.splitlines():
            cells = line.split("|")
            if len(cells) < len(_SINFO_FIELDS):
                continue
            _node, name, gres, used, state = (c.strip() for c in cells[:5])
            total = gres_gpu_count(gres)
            available = max(0, total - gres_gpu_count(used)) if node_takes_work(state) else 0
            free.setdefault(name.rstrip("*"), []).append(available)
        result = []
        for partition in self.site.partitions:
            per_node = partition.gpus_per_node
            histogram = [0] * (per_node + 1)
            for available in free.get(partition.name, []):
                histogram[min(available, per_node)] += 1
            result.append(PartitionCapacity(partition.name, tuple(histogram)))
        return result

    def find_by_tag(self, tag: str) -> SiteJobStatus | None:
        now = self._clock()
        matches = [r for r in self._squeue(None).values() if tag_of(r) == tag]
        if matches:
            # A job requeued by hand may carry the tag twice: the live one, else the latest.
            def rank(record: Mapping[str, Any]) -> tuple[bool, int]:
                status = self._status(record, now)
                return (not status.state.final, _id_key(str(record["job_id"]))[0])

            return self._status(max(matches, key=rank), now)
        found = [r for r in self._accounting_records(None) if r.tag == tag]
        if not found:
            return None
        return max(found, key=lambda r: (not r.state.final, _id_key(r.site_job_id))).to_status()

    def read_output(
        self,
        site_job_id: str,
        stream: OutputStream,
        offset: int,
        limit: int,
        known_path: str | None = None,
    ) -> OutputChunk | None:
        """Read on this host, or on ``ssh_host``, where the commands run (see :mod:`.output`).
        Every job this back-end submits runs as the user who ran sbatch: the owner to check
        when the controller, which says the job's UserId, has already forgotten the job."""
        owner: int | None = None
        path = known_path
        if path is None:
            record = self._squeue([site_job_id]).get(site_job_id)
            if record is None:
                return None
            path = path_of(record, stream)
            owner = int(record["user_id"]) if isinstance(record.get("user_id"), int) else None
            if path is None:
                return None
        if self.ssh_host is not None:
            return read_over_ssh(self.ssh_host, path, owner, offset, limit, self.command_timeout_s)
        return read_local(path, os.geteuid() if owner is None else owner, offset, limit)

    def close(self) -> None:
        """Nothing to release: every call is its own process."""

    # -- helpers -------------------------------------------------------------------------------

    def _squeue(self, job_ids: list[str] | None) -> dict[str, Mapping[str, Any]]:
        argv = ["squeue", "--json", "-t", "all"]
        try:
            out = self.run([*argv, "-j", ",".join(job_ids)] if job_ids else argv)
        except CommandFailed as exc:
            if not (job_ids and _INVALID_JOB.search(exc.stderr)):
                raise ProtocolError(f"site {self.site_id}: {exc}") from exc
            out = self._run_ok(argv)  # some ids are gone: list every job instead
        try:
            payload = json.loads(out)
            jobs = payload["jobs"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ProtocolError(
                f"site {self.site_id}: squeue --json printed {out[:200]!r}"
            ) from exc
        errors = " ".join(
            str(e.get("error", e)) if isinstance(e, dict) else str(e)
            for e in payload.get("errors") or []
        )
        if _UNREACHABLE.search(errors):
            raise SiteUnavailable(f"site {self.site_id}: Slurm controller unreachable: {errors}")
        records: dict[str, Mapping[str, Any]] = {
            str(r["job_id"]): r for r in jobs if isinstance(r, dict) and "job_id" in r
        }
        if job_ids is not None:
            records = {k: v for k, v in records.items() if k in set(job_ids)}
        return records

    def _status(self, record: Mapping[str, Any], now: float) -> SiteJobStatus:
        status = status_from_record(record, now)
        reason = str(record.get("state_reason") or "")
        if status.state is JobState.SUBMITTED and is_hopeless_pending(reason):
            # Waiting would never help: free the site's queue and let the broker release the
            # job's reservation. The cancelled job keeps its reason, so later polls agree.
            self.cancel(status.site_job_id)
            return SiteJobStatus(
                site_job_id=status.site_job_id,
                tag=status.tag,
                state=JobState.FAILED,
                ended_at=now,
                reason=f"{HOPELESS_PREFIX}{reason}",
            )
        return status

    def _accounting_records(self, job_ids: list[str] | None) -> list[AccountingRecord]:
        if job_ids is not None and not job_ids:
            return []
        mode = self.accounting
        if mode == "none":
            return []
        # Without ids, look back 30 days: enough for a restarted broker to adopt its jobs.
        since = None if job_ids else self._clock() - 30 * 86400
        try:
            return read_accounting(self.run, job_ids, since, mode == "jobcomp")
        except CommandFailed:
            # Accounting is only a fallback: a database that is down means "not found".
            return []
