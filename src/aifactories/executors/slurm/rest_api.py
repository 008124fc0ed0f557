"""slurmrestd's OpenAPI, one entry per supported version: paths, the submit body, replies.

Slurm changes its REST schema with every release (v0.0.38 for 22.05, v0.0.39 for 23.02,
v0.0.40 for 23.11, ...). Everything version-specific lives here, so supporting a new one is
one more :class:`RestApi` in :data:`VERSIONS`; the executor only speaks to this interface.
In v0.0.38 the job records of ``/jobs`` and ``/job/{id}`` have the same fields as
``squeue --json`` (the same serializer), so :mod:`.jobrecord` reads both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aifactories.domain.errors import ConfigurationError
from aifactories.executors.slurm.batch import BatchJob


@dataclass(frozen=True)
class RestApi:
    version: str

    @property
    def prefix(self) -> str:
        return f"/slurm/{self.version}"

    def submit_path(self) -> str:
        return f"{self.prefix}/job/submit"

    def job_path(self, site_job_id: str) -> str:
        return f"{self.prefix}/job/{site_job_id}"

    def jobs_path(self) -> str:
        return f"{self.prefix}/jobs"

    def nodes_path(self) -> str:
        return f"{self.prefix}/nodes"

    def partitions_path(self) -> str:
        return f"{self.prefix}/partitions"

    def ping_path(self) -> str:
        return f"{self.prefix}/ping"

    def probe_path(self) -> str:
        """A request that reaches slurmctld and changes nothing: DELETE of job 0, which no
        job ever has. Its error number tells a refused token from a dead controller (GETs
        answer both the same way)."""
        return self.job_path("0")

    def submit_body(self, job: BatchJob) -> dict[str, Any]:
        """The submit request. GPUs go in ``gres`` per node (v0.0.38 rejects
        ``tres_per_node``); ``environment`` is an object and must hold PATH. slurmrestd reads
        no ``#SBATCH`` line and, unlike sbatch, puts none of the options in the job's
        environment: the variables sbatch would set are set here."""
        environment = dict(job.environment)
        properties: dict[str, Any] = {
            "name": job.name,
            "comment": job.comment,
            "account": job.account,
            "partition": job.partition,
            # "min-max" as sbatch takes it: 22.05 takes the spec's [min, max] array but then
            # runs the job on one node.
            "nodes": f"{job.nodes}-{job.nodes}",
            "time_limit": job.time_limit_min,
            "current_working_directory": job.workdir,
            "standard_output": job.output,
            "standard_error": job.error or job.output,
            "environment": environment,
        }
        if job.gres:
            properties["gres"] = job.gres
        if job.exclusive:
            # 22.05 parses this like sbatch's --exclusive: the spec's "true" is refused.
            properties["exclusive"] = "exclusive"
        if job.ntasks is not None:
            properties["tasks"] = job.ntasks
        if job.ntasks_per_node is not None:
            properties["tasks_per_node"] = job.ntasks_per_node
            environment["SLURM_NTASKS_PER_NODE"] = str(job.ntasks_per_node)
        if job.cpus_per_task != 1:
            properties["cpus_per_task"] = job.cpus_per_task
            environment["SLURM_CPUS_PER_TASK"] = str(job.cpus_per_task)
        if job.mem_per_node_mb is not None:
            properties["memory_per_node"] = job.mem_per_node_mb
            environment["SLURM_MEM_PER_NODE"] = str(job.mem_per_node_mb)
        if job.mem_per_gpu_mb is not None:
            properties["memory_per_gpu"] = job.mem_per_gpu_mb
            environment["SLURM_MEM_PER_GPU"] = str(job.mem_per_gpu_mb)
        if job.signal is not None:
            properties["signal"] = f"{job.signal.name}@{job.signal.seconds_before}"
        if job.requeue is not None:
            # 22.05 takes "requeue": false as --requeue: the opposite is its own key.
            properties["requeue" if job.requeue else "no_requeue"] = True
        if job.qos:
            properties["qos"] = job.qos
        return {"script": job.script, "job": properties}

    def unsupported(self, job: BatchJob) -> str | None:
        """Why this API cannot send ``job`` as asked, or None."""
        if job.signal is not None and job.signal.batch_only:
            # 22.05's parser refuses the "B:" prefix ("Invalid SIGNAL specification"), and
            # without it the signal reaches the job's steps, not its batch shell.
            return (
                f"--signal={job.signal.as_option()}: slurmrestd {self.version} cannot signal "
                "the batch shell alone (B:); without B: the signal goes to the job's steps"
            )
        return None

    def submitted_id(self, reply: Mapping[str, Any]) -> str | None:
        value = reply.get("job_id")
        return str(value) if isinstance(value, int) else None

    def errors(self, reply: Mapping[str, Any]) -> list[str]:
        """The error texts of a reply (``errors``: [{error, description, error_number}])."""
        out = []
        for entry in reply.get("errors") or []:
            if isinstance(entry, Mapping):
                parts = [str(entry.get(k)) for k in ("error", "description") if entry.get(k)]
                out.append(": ".join(dict.fromkeys(parts)) or str(dict(entry)))
            else:
                out.append(str(entry))
        return out

    def error_numbers(self, reply: Mapping[str, Any]) -> set[int]:
        # The same number goes by three names: error_number (job, jobs), error_code (submit)
        # and errno (nodes, partitions).
        numbers = set()
        for entry in reply.get("errors") or []:
            if isinstance(entry, Mapping):
                for key in ("error_number", "error_code", "errno"):
                    if isinstance(entry.get(key), int):
                        numbers.add(int(entry[key]))
        return numbers

    def unreachable(self, method: str, http_status: int, reply: Mapping[str, Any]) -> bool:
        """slurmrestd is up but its call to slurmctld failed: the controller is down (after
        a few seconds of retries) or hung up at once on a token it could not verify. GETs
        say "Unspecified error" (-1) for both; submit and DELETE say which (1800, 5005).
        A -1 on submit is taken for a refusal, as Slurm's other refusals are."""
        if http_status < 500:
            return False
        numbers = self.error_numbers(reply)
        if numbers & {CONNECT_FAILURE, ZERO_BYTES} or (method == "GET" and UNSPECIFIED in numbers):
            return True
        return bool(_UNREACHABLE.search(" ".join(self.errors(reply))))

    def token_refused(self, reply: Mapping[str, Any]) -> bool:
        """slurmctld closed the connection without a word, as it does when it cannot verify
        the token (seen on submit and DELETE; GETs only say "Unspecified error")."""
        return ZERO_BYTES in self.error_numbers(reply)

    def job_records(self, reply: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        jobs = reply.get("jobs")
        if not isinstance(jobs, list):
            raise ValueError("no 'jobs' list")
        return [j for j in jobs if isinstance(j, Mapping) and "job_id" in j]

    def node_records(self, reply: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        nodes = reply.get("nodes")
        if not isinstance(nodes, list):
            raise ValueError("no 'nodes' list")
        return [n for n in nodes if isinstance(n, Mapping)]

    def partition_names(self, reply: Mapping[str, Any]) -> set[str]:
        parts = reply.get("partitions")
        if not isinstance(parts, list):
            raise ValueError("no 'partitions' list")
        return {str(p.get("name")) for p in parts if isinstance(p, Mapping)}


# Slurm's error numbers: ESLURM_INVALID_JOB_ID, ESLURM_ALREADY_DONE; and what 22.05 reported
# for a dead controller (1800 with "Unable to contact slurm controller", or -1 on GET) and for
# a token slurmctld refused (5005, "Zero Bytes were transmitted or received").
INVALID_JOB_ID = 2017
ALREADY_DONE = 2021
UNSPECIFIED = -1
CONNECT_FAILURE = 1800
ZERO_BYTES = 5005
_UNREACHABLE = re.compile(
    r"Unable to contact slurm controller|connect failure|Failed while looking for|"
    r"Communication connection failure|Socket timed out|Zero Bytes were transmitted",
    re.IGNORECASE,
)

VERSIONS: dict[str, RestApi] = {"v0.0.38": RestApi("v0.0.38")}


def rest_api(version: str) -> RestApi:
    api = VERSIONS.get(version)
    if api is None:
        raise ConfigurationError(
            f"slurmrestd API {version!r} is not supported; known: {', '.join(sorted(VERSIONS))}"
        )
    return api
