"""Pollux (OSDI'21) workloads: ``workload-N.csv`` with ``name,time,application,num_replicas,
batch_size``.

Each of the 8 workloads holds 160 jobs sampled from an 8-hour window of Philly (duration >= 60 s,
GPU time < 1000 GPU-h); the application (cifar10, ncf, deepspeech2, bert, yolov3, imagenet) was
chosen from the job's GPU-time bucket, and ``num_replicas``/``batch_size`` from the configurations
Pollux's profiles rate as efficient. The rows carry **no runtime**, and none can be joined back:
only the time of day of the sampled Philly row survives (``time``), and many Philly jobs share it.

Runtime, therefore: in Pollux's simulator a job ends when it has trained its application's fixed
number of epochs, so its duration follows from the measured profiles. This reader gives each job
its *rigid* runtime, the time to train those epochs with the requested GPUs and batch size on
the profiled GPU, computed as Pollux prices a configuration (see :mod:`._profiles`). Every job is
counted in ``Trace.notes`` as ``runtime from the <GPU> profile``. A configuration the profile
cannot price is skipped (``configuration outside the profile``, ``batch size outside the
profile``, ``no profile for the application``); the shipped workloads have none.

The profiles are the ``profiles/`` folder of the Sia artifact (``../sia-hetero/profiles`` beside
this repository); its unsuffixed files are the original Pollux ones (4x T4 nodes). Pass it as
``profiles``; if omitted, a ``profiles`` folder in the workload's folder or in one of its two
parents is used (which finds it for the Sia workloads, not for the Pollux copies).

============  ================  ============================================================
column        TraceJob field    mapping
============  ================  ============================================================
name          job_id            as written (``cifar10-0``)
time          submit_s          seconds from the workload start
application   workload_class    as written
num_replicas  gpus              GPUs requested (rigid)
batch_size    extra             global batch size
(profile)     runtime_s         rigid runtime (above)
(profile)     nodes             None: the twin packs the gang on the cluster's nodes
(profile)     gpu_model         the profiled GPU (``T4`` for the Pollux profile)
============  ================  ============================================================

``user``, ``group``, ``time_limit_s`` and ``recorded_wait_s`` are None.
"""

from __future__ import annotations

import functools
from pathlib import Path

from aifactories.domain.errors import InvalidInput
from aifactories.twin.traces._common import Collector, csv_rows, extras, open_text
from aifactories.twin.traces._profiles import Profiles
from aifactories.twin.traces.model import Trace, TraceJob

COLUMNS = ("name", "time", "application", "num_replicas", "batch_size")


@functools.lru_cache(maxsize=4)
def _profiles(root: Path, gpu_profile: str) -> Profiles:
    # Benchmarks read the 28 workloads of one artifact in a row: parse its profiles once.
    return Profiles(root, gpu_profile)


def find_profiles(workload: Path) -> Path | None:
    """A ``profiles`` folder in the workload's folder or in one of its two parents."""
    for folder in list(workload.resolve().parents)[:3]:
        if (folder / "profiles").is_dir():
            return folder / "profiles"
    return None


def read_pollux(
    path: Path | str,
    *,
    profiles: Path | str | None = None,
    gpu_profile: str = "",
    limit: int | None = None,
) -> Trace:
    """Read a Pollux workload CSV into a :class:`Trace` (see the module docstring)."""
    return read_workload(path, profiles=profiles, gpu_profile=gpu_profile, limit=limit)


def read_workload(
    path: Path | str,
    *,
    profiles: Path | str | None,
    gpu_profile: str,
    limit: int | None,
) -> Trace:
    """The shared reader of Pollux and Sia workloads (same columns, same runtime model)."""
    path = Path(path)
    root = Path(profiles) if profiles is not None else find_profiles(path)
    if root is None:
        raise InvalidInput(
            "profiles",
            f"{path.name} has no runtimes; they come from the application profiles: pass "
            "profiles= (e.g. the sia-hetero/profiles folder of the shared traces)",
        )
    priced = _profiles(root.resolve(), gpu_profile)
    jobs = Collector(limit)
    with open_text(path) as stream:
        for row in csv_rows(path, stream, COLUMNS):
            if jobs.full:
                break
            application = row.text("application")
            if not application:
                raise row.error("application", "is empty")
            gpus = row.integer("num_replicas", minimum=1)
            batch_size = row.integer("batch_size", minimum=1)
            submit = row.number("time")
            run = priced.rigid_run(application, gpus, batch_size)
            if isinstance(run, str):
                jobs.skip(run)
                continue
            jobs.note(f"runtime from the {priced.gpu_model} profile")
            jobs.add(
                row,
                TraceJob(
                    job_id=row.text("name"),
                    submit_s=submit,
                    runtime_s=run.runtime_s,
                    gpus=gpus,
                    # The profile's packing (4 GPUs a node for Pollux's T4) is no request:
                    # on other nodes it may not divide (10 GPUs on 3 nodes), so the twin
                    # packs the gang on the nodes it runs on; the runtime keeps the profile's.
                    nodes=None,
                    gpu_model=priced.gpu_model,
                    workload_class=application,
                    extra=extras(
                        batch_size=batch_size,
                        accumulation_steps=run.accumulation_steps,
                        profile_nodes=run.nodes,
                        profile=gpu_profile or "pollux",
                    ),
                ),
            )
    return jobs.trace(path.name, path)
