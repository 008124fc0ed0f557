"""Where a sweep's runs execute: in this process, on the local cores, on an existing Dask
cluster, or as Slurm jobs (Dask's SLURMCluster from dask-jobqueue).

Every engine takes a pure, picklable task and its items and yields ``(index, result)`` as
results come back, in whatever order they finish; the sweep puts them back in its own order,
so the engine never changes what a sweep returns. Dask and dask-jobqueue are the optional
``cluster`` extra (``pip install 'aifactories[cluster]'``), imported only when asked for.

``--cluster`` takes ``local`` (the default: one process per core), ``serial``, the address
of a running Dask scheduler (``tcp://HOST:PORT``), ``slurm`` (SLURMCluster with the defaults
of :class:`SlurmOptions`), or a YAML file ``{slurm: {partition: gpu, jobs: 8, ...}}``.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Protocol, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aifactories.domain.errors import ConfigurationError, InvalidInput

if TYPE_CHECKING:
    from dask_jobqueue.slurm import SLURMCluster
    from distributed import Client

T = TypeVar("T")
R = TypeVar("R")

_SLURM_KEYS = "memory like 4GB, walltime like 01:00:00 (docs/twin.md)"
_FORMS = "local, serial, tcp://HOST:PORT (a Dask scheduler), slurm, or a YAML file {slurm: {...}}"
# How long to keep trying a scheduler's address: long enough for one just started.
CONNECT_TIMEOUT_S = 15.0
_INSTALL = "pip install 'aifactories[cluster]' (Dask distributed and dask-jobqueue)"


class Engine(Protocol):
    """Runs ``task`` on each item; yields ``(index of the item, result)`` as each finishes."""

    @property
    def name(self) -> str: ...

    def run(self, task: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]: ...


class Serial:
    """One run after another in this process: the reference every other engine must match."""

    name = "serial"

    def run(self, task: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]:
        for index, item in enumerate(items):
            yield index, task(item)


@dataclass(frozen=True)
class Processes:
    """One process per worker on this machine (the runs are pure Python: threads would share
    one core through the GIL)."""

    workers: int

    @property
    def name(self) -> str:
        return f"{self.workers} local processes"

    def run(self, task: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]:
        # forkserver, not fork: the CLI's progress bars run a thread, and a fork taken while
        # it holds a lock would deadlock the child. The server imports the sweep once and
        # forks each worker from there, so a worker starts in milliseconds.
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["aifactories.services.twin.sweep"])
        pool = ProcessPoolExecutor(
            max_workers=max(1, min(self.workers, len(items))), mp_context=context
        )
        try:
            futures: dict[Future[R], int] = {
                pool.submit(task, item): i for i, item in enumerate(items)
            }
            for future in as_completed(futures):
                yield futures[future], future.result()
        finally:  # an error, or the caller stopped early: nothing left runs on
            pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class Dask:
    """The workers of a Dask cluster (one the user runs, or the Slurm one below)."""

    client: Client
    name: str

    def run(self, task: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]:
        from distributed import as_completed as finished

        prefix = f"aif-sweep-{uuid.uuid4().hex[:8]}"
        # A run is pure, so a run lost with its worker (a Slurm job ending) is simply run again.
        futures = self.client.map(
            task, items, key=[f"{prefix}-{i}" for i in range(len(items))], pure=False, retries=2
        )
        index = {future.key: i for i, future in enumerate(futures)}
        try:
            for future in finished(futures):
                yield index[future.key], future.result()
        finally:
            self.client.cancel(futures)


class SlurmOptions(BaseModel):
    """The Slurm worker jobs of a sweep: ``jobs`` jobs of ``cores`` Dask worker processes
    each, one thread per process (a run is pure Python: threads would share one core)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    jobs: Annotated[int, Field(ge=1, le=10_000)] = 2
    partition: str | None = None  # sbatch -p; None: the cluster's default partition
    account: str | None = None  # sbatch -A
    cores: Annotated[int, Field(ge=1, le=1024)] = 1  # per job: one worker process each
    memory: str = "2GB"  # per job (sbatch --mem)
    walltime: str = "01:00:00"  # per job (sbatch -t)
    interface: str | None = None  # the network the workers reach the scheduler on (ib0, lo)
    python: str | None = None  # the workers' Python; None: this one (a shared file system)
    job_extra: list[str] = []  # more sbatch options, e.g. ["--qos=normal"]
    log_directory: str | None = None  # the worker jobs' stdout and stderr
    start_timeout_s: Annotated[float, Field(gt=0)] = 600.0  # for the first worker to join


@dataclass(frozen=True)
class EngineChoice:
    """What ``--cluster`` and ``--workers`` asked for (parsed, not yet started)."""

    kind: str  # serial, local, dask or slurm
    workers: int = 1
    address: str | None = None
    slurm: SlurmOptions | None = None

    def describe(self) -> str:
        if self.kind == "local":
            return f"{self.workers} local processes"
        if self.kind == "dask":
            return f"the Dask cluster at {self.address}"
        if self.kind == "slurm":
            assert self.slurm is not None
            return f"{self.slurm.jobs} Slurm worker jobs"
        return "serial, in this process"


def choose_engine(cluster: str | None, workers: int | None) -> EngineChoice:
    """Parse ``--cluster`` and ``--workers`` (workers: local processes or Slurm jobs)."""
    if workers is not None and workers < 1:
        raise InvalidInput("--workers", f"{workers} workers", limit="at least 1")
    text = (cluster or "local").strip()
    if text == "local":
        count = workers if workers is not None else (os.cpu_count() or 1)
        return EngineChoice("serial") if count == 1 else EngineChoice("local", workers=count)
    if text == "serial":
        return EngineChoice("serial")
    if text.startswith(("tcp://", "tls://", "inproc://")):
        if workers is not None:
            raise InvalidInput(
                "--workers",
                "a Dask scheduler's workers are its own",
                limit="leave --workers out with --cluster tcp://...; start more dask workers",
            )
        return EngineChoice("dask", address=text)
    if text == "slurm":
        return EngineChoice("slurm", slurm=SlurmOptions(jobs=workers or SlurmOptions().jobs))
    if text.endswith((".yaml", ".yml")):
        options = _slurm_file(Path(text))
        if workers is not None:
            options = options.model_copy(update={"jobs": workers})
        return EngineChoice("slurm", slurm=options)
    raise InvalidInput("--cluster", f"{text!r} is not an engine", limit=_FORMS)


def _slurm_file(path: Path) -> SlurmOptions:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput("--cluster", f"cannot read {path} ({exc.strerror})", _FORMS) from None
    except yaml.YAMLError as exc:
        raise InvalidInput(str(path), f"not valid YAML: {exc}") from None
    if not isinstance(data, dict) or set(data) != {"slurm"}:
        raise InvalidInput(
            str(path),
            "a cluster file has one key, slurm",
            limit="slurm: {partition, account, jobs, cores, memory, walltime, ...}",
        )
    try:
        return SlurmOptions.model_validate(data["slurm"] or {})
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(k) for k in error["loc"])
        expected = "one of " + ", ".join(SlurmOptions.model_fields)
        raise InvalidInput(f"{path}: slurm.{where}", error["msg"].lower(), expected) from None


@contextmanager
def open_engine(choice: EngineChoice, logs: Path | None = None) -> Iterator[Engine]:
    """Start the engine (connect to Dask, submit the Slurm worker jobs); stop what was
    started on the way out (the Slurm jobs are cancelled, a user's own cluster is left).
    ``logs``: where Slurm worker jobs write, unless the cluster file says (by default
    sbatch would litter the working folder with slurm-<id>.out files)."""
    if choice.kind == "serial":
        yield Serial()
    elif choice.kind == "local":
        yield Processes(choice.workers)
    elif choice.kind == "dask":
        assert choice.address is not None
        with _client(choice.address) as client:
            yield Dask(client, choice.describe())
    else:
        assert choice.slurm is not None
        options = choice.slurm
        if options.log_directory is None and logs is not None:
            logs.mkdir(parents=True, exist_ok=True)
            options = options.model_copy(update={"log_directory": str(logs)})
        with _slurm_client(options) as client:
            yield Dask(client, choice.describe())


@contextmanager
def _client(address: str) -> Iterator[Client]:
    try:
        from distributed import Client
    except ImportError:
        raise ConfigurationError(f"--cluster {address} needs Dask: {_INSTALL}") from None
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        raise InvalidInput(
            "--cluster",
            f"no Dask scheduler answers at {address} ({exc})",
            limit="the address 'dask scheduler' prints, e.g. tcp://127.0.0.1:8786",
        ) from None
    try:
        yield client
    finally:
        client.close()


@contextmanager
def _slurm_client(options: SlurmOptions) -> Iterator[Client]:
    try:
        from dask_jobqueue.slurm import SLURMCluster
        from distributed import Client
    except ImportError:
        raise ConfigurationError(f"--cluster slurm needs dask-jobqueue: {_INSTALL}") from None
    if shutil.which("sbatch") is None:
        raise ConfigurationError(
            "--cluster slurm submits the workers with sbatch, which is not on PATH: run the "
            "sweep on a login node of the Slurm cluster"
        )
    try:
        cluster = _slurm_cluster(SLURMCluster, options)
    except ValueError as exc:  # dask-jobqueue's word on a memory or walltime it cannot read
        raise InvalidInput("--cluster", f"the Slurm options: {exc}", limit=_SLURM_KEYS) from None
    try:
        _check_job(cluster.job_script())
        cluster.scale(jobs=options.jobs)
        client = Client(cluster)
        try:
            try:
                client.wait_for_workers(1, timeout=options.start_timeout_s)
            except TimeoutError:
                raise ConfigurationError(
                    f"no Slurm worker job joined within {options.start_timeout_s:g} s: see "
                    "squeue (still pending?), the partition and account, and the jobs' logs "
                    f"({options.log_directory or 'log_directory: in the cluster file'})"
                ) from None
            yield client
        finally:
            client.close()
    finally:
        cluster.close()  # cancels the worker jobs


def _check_job(script: str) -> None:
    """Ask Slurm whether it would take the worker job (sbatch --test-only submits nothing):
    a wrong partition or account fails here with Slurm's own words, not after a timeout."""
    with tempfile.NamedTemporaryFile("w", suffix=".sh", prefix="aif-sweep-") as handle:
        handle.write(script)
        handle.flush()
        done = subprocess.run(
            ["sbatch", "--test-only", handle.name], capture_output=True, text=True, timeout=60
        )
    if done.returncode != 0:
        said = " ".join(done.stderr.split()) or f"exit code {done.returncode}"
        raise InvalidInput(
            "--cluster",
            f"Slurm refuses the sweep's worker job: {said}",
            limit="a partition and account of yours (sinfo, sacctmgr show assoc user=$USER)",
        )


def _slurm_cluster(cls: type[SLURMCluster], options: SlurmOptions) -> SLURMCluster:
    return cls(
        queue=options.partition,
        account=options.account,
        cores=options.cores,
        processes=options.cores,
        memory=options.memory,
        walltime=options.walltime,
        interface=options.interface,
        python=options.python,
        job_extra_directives=list(options.job_extra),
        log_directory=options.log_directory,
        job_name="aif-sweep",
        # Loopback, any free port: the dashboard is for whoever sits at this machine.
        scheduler_options={"dashboard_address": "127.0.0.1:0"},
    )
