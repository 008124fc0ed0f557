"""Rigid runtimes for Pollux and Sia workload jobs, from the applications' measured profiles.

A Pollux/Sia workload row names an application and a configuration (GPUs, global batch size) but
no duration: in those simulators a job runs until it has trained a fixed number of epochs, at a
speed that depends on where it runs. For a rigid scheduler (the job keeps the configuration its
user asked for) that gives one runtime, computed the way Pollux's ``applications.py`` prices a
configuration (``get_configurations``; petuum/adaptdl, osdi21-artifact, ``simulator/``)::

    runtime = iterations(batch_size, last epoch) x step_time(placement, atomic batch size)

- iterations: column ``iteration`` of ``validation-<batch>.csv`` at epoch ``MAX_EPOCHS - 1``
  (Pollux's per-application epoch counts), linear between profiled batch sizes;
- placement: the GPUs packed onto nodes of the profile's size (4 for the Pollux T4 testbed);
- local batch = ceil(batch / GPUs); above the largest profiled local batch, gradient
  accumulation: steps = ceil(local / max_local) - 1, atomic batch = ceil(local / (steps + 1)),
  and each step costs ``step_time + steps x (step_time - sync_time)``;
- step_time, sync_time: ``placements*.csv`` rows of that exact placement, linear in the local
  batch. Placements not measured there (more nodes) use the rows with the same node and GPU
  counts in ``scalability*.csv``. Pollux interpolates in 3-D there (scipy's
  LinearNDInterpolator); this module interpolates along the local batch on the same grid line,
  which gives the same step times for the shipped workloads' configurations (imagenet on 24, 32
  and 48 GPUs, checked against scipy) and needs no dependency.

A configuration the profile does not cover (batch outside the profiled range, placement with no
measured rows, unknown application) gets no runtime: the reader skips it and counts why.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from aifactories.domain.errors import InvalidInput
from aifactories.twin.traces._common import csv_rows, open_text
from aifactories.twin.traces.errors import TraceError

MAX_EPOCHS: Mapping[str, int] = {
    "bert": 2,
    "cifar10": 100,
    "deepspeech2": 80,
    "imagenet": 90,
    "ncf": 10,
    "yolov3": 50,
}
"""Epochs to completion per application, as in Pollux's and Sia's ``APPLICATIONS`` tables.
(Sia's ``gpt_pmp`` is a pipeline-parallel model priced differently; it is not supported.)"""

GPU_PROFILES: Mapping[str, tuple[str, int]] = {
    "": ("T4", 4),
    "aws": ("T4", 4),
    "azure": ("V100", 8),
    "dgx": ("A100-40GB", 8),
    "dgx-ext": ("A100-40GB", 8),
    "quad": ("RTX6000", 4),
    "rtx": ("RTX2080Ti", 8),
}
"""Profile file suffix -> (GPU model, GPUs per node), from Sia's ``simulator_config.py`` as
summarised in sia-hetero/README.md. ``""`` is the original Pollux profile (AWS, 4x T4 nodes)."""

_MAX_LOCAL_BATCH = {("", "yolov3"): 8, ("rtx", "deepspeech2"): 57}
"""Overrides of the largest local batch that Pollux (yolov3) and Sia (deepspeech2 on rtx) set."""

_Point = tuple[float, float, float]  # local batch, step time, sync time


@dataclass(frozen=True, slots=True)
class RigidRun:
    runtime_s: float
    nodes: int
    accumulation_steps: int


@dataclass(frozen=True, slots=True)
class _Measured:
    iterations: dict[int, float]
    placements: dict[str, list[_Point]]
    grid: dict[tuple[int, int], list[_Point]]
    max_local: float


class Profiles:
    """The profiles under ``root`` (``root/<application>/...``) for one GPU profile suffix."""

    def __init__(self, root: Path, gpu_profile: str = "") -> None:
        if gpu_profile not in GPU_PROFILES:
            known = ", ".join(repr(k) for k in GPU_PROFILES)
            raise InvalidInput("gpu_profile", f"unknown {gpu_profile!r}; known: {known}")
        if not root.is_dir():
            raise InvalidInput("profiles", f"{root} is not a directory of application profiles")
        self.root = root
        self.suffix = gpu_profile
        self.gpu_model, self.gpus_per_node = GPU_PROFILES[gpu_profile]
        self._cache: dict[str, _Measured | str] = {}

    def rigid_run(self, application: str, gpus: int, batch_size: int) -> RigidRun | str:
        """The run of this configuration, or why the profile cannot price it."""
        measured = self._measured(application)
        if isinstance(measured, str):
            return measured
        iterations = _between(measured.iterations, batch_size)
        if iterations is None:
            return "batch size outside the profile"
        full, rest = divmod(gpus, self.gpus_per_node)
        placement = (self.gpus_per_node,) * full + ((rest,) if rest else ())
        local = math.ceil(batch_size / gpus - 1e-8)
        steps = math.ceil(local / measured.max_local - 1e-8) - 1
        atomic = math.ceil(local / (steps + 1) - 1e-8)
        points = measured.placements.get(_placement_id(placement))
        if points is None:
            points = measured.grid.get((len(placement), gpus))
        timing = None if points is None else _interpolate(points, atomic)
        if timing is None:
            return "configuration outside the profile"
        step_time, sync_time = timing
        step_time += steps * (step_time - sync_time)
        runtime_s = iterations * step_time
        if not (math.isfinite(runtime_s) and runtime_s > 0):
            return "configuration outside the profile"
        return RigidRun(runtime_s, len(placement), steps)

    def peak_throughput(self, application: str) -> float | None:
        """Samples per second of one GPU at its best measured local batch (None: no rows)."""
        measured = self._measured(application)
        points = None if isinstance(measured, str) else measured.placements.get("1")
        return max(batch / step for batch, step, _ in points) if points else None

    def _measured(self, application: str) -> _Measured | str:
        if application not in self._cache:
            self._cache[application] = self._load(application)
        return self._cache[application]

    def _load(self, application: str) -> _Measured | str:
        folder = self.root / application
        dash = f"-{self.suffix}" if self.suffix else ""
        placements_csv = folder / f"placements{dash}.csv"
        if application not in MAX_EPOCHS or not placements_csv.is_file():
            return "no profile for the application"
        epoch = MAX_EPOCHS[application] - 1
        iterations: dict[int, float] = {}
        for path in sorted(folder.glob("validation-*.csv")):
            batch = path.stem.removeprefix("validation-")
            if not batch.isdigit():
                continue
            with open_text(path) as stream:
                rows = list(csv_rows(path, stream, ("iteration",)))
            if len(rows) <= epoch:
                problem = f"{len(rows)} epochs, but {application} trains {epoch + 1}"
                raise TraceError(path, len(rows) + 1, "iteration", problem)
            iterations[int(batch)] = rows[epoch].number("iteration")
        measured = _read_points(placements_csv, ("placement",))
        if not measured or not iterations:
            return "no profile for the application"
        placements = _group(measured, _placement_key)
        scalability = _read_points(folder / f"scalability{dash}.csv", ("num_nodes", "num_replicas"))
        grid = _group(scalability, _pair)
        # Pollux interpolates over measured placements and scalability rows together.
        for key, points in _group(measured, _nodes_and_gpus).items():
            grid.setdefault(key, points)
        return _Measured(
            iterations=iterations,
            placements=placements,
            grid=grid,
            max_local=_MAX_LOCAL_BATCH.get(
                (self.suffix, application), max(local for _, local, _, _ in measured)
            ),
        )


_Row = tuple[tuple[int, ...], float, float, float]  # key, local batch, step time, sync time
_K = TypeVar("_K")


def _read_points(path: Path, keys: tuple[str, ...]) -> list[_Row]:
    if not path.is_file():
        return []
    with open_text(path) as stream:
        return [
            (
                tuple(row.integer(k, minimum=1) for k in keys),
                row.number("local_bsz"),
                row.number("step_time"),
                row.number("sync_time"),
            )
            for row in csv_rows(path, stream, (*keys, "local_bsz", "step_time", "sync_time"))
        ]


def _placement_key(key: tuple[int, ...]) -> str:
    return str(key[0])


def _nodes_and_gpus(key: tuple[int, ...]) -> tuple[int, int]:
    digits = [int(d) for d in str(key[0])]
    return len(digits), sum(digits)


def _pair(key: tuple[int, ...]) -> tuple[int, int]:
    return key[0], key[1]


def _group(rows: list[_Row], key_of: Callable[[tuple[int, ...]], _K]) -> dict[_K, list[_Point]]:
    """Points by key, sorted by local batch; a batch measured more than once is averaged."""
    sums: dict[_K, dict[float, list[float]]] = defaultdict(dict)
    for key, local, step, sync in rows:
        acc = sums[key_of(key)].setdefault(local, [0.0, 0.0, 0.0])
        acc[0] += step
        acc[1] += sync
        acc[2] += 1
    return {
        key: [(b, s / n, y / n) for b, (s, y, n) in sorted(by_batch.items())]
        for key, by_batch in sums.items()
    }


def _placement_id(placement: tuple[int, ...]) -> str:
    """Pollux's key: the lexicographically smallest rotation, as digits (``(4, 2)`` -> ``24``)."""
    rotation = min(placement[i:] + placement[:i] for i in range(len(placement)))
    return "".join(str(gpus) for gpus in rotation)


def _between(values: Mapping[int, float], x: int) -> float | None:
    points = sorted(values.items())
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x0 <= x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return points[0][1] if len(points) == 1 and points[0][0] == x else None


def _interpolate(points: list[_Point], x: float) -> tuple[float, float] | None:
    if len(points) == 1:
        return (points[0][1], points[0][2]) if points[0][0] == x else None
    for (x0, s0, y0), (x1, s1, y1) in itertools.pairwise(points):
        if x0 <= x <= x1:
            f = (x - x0) / (x1 - x0)
            return s0 + (s1 - s0) * f, y0 + (y1 - y0) * f
    return None


SPEED_PROFILES = ("aws", "azure", "dgx-ext", "quad", "rtx")
"""One profile per GPU model for the speed matrix (``dgx-ext`` for the A100: the Sia cluster's)."""


def class_speeds(root: Path, reference: str = "") -> dict[str, dict[str, float]]:
    """The speed matrix of the applications (workload classes): each GPU model's peak
    one-GPU throughput over the ``reference`` profile's, whose runtimes the reader gives
    (its own model is 1.0 exactly). One GPU's ratio stands for every configuration of the
    class: multi-GPU scaling differs by model (the profiles' sync times), which this leaves
    out. Applications or models without one-GPU rows get no entry (the default row holds)."""
    base = Profiles(root, reference)
    matrix: dict[str, dict[str, float]] = {}
    for application in MAX_EPOCHS:
        own = base.peak_throughput(application)
        if own is None:
            continue
        row = {base.gpu_model: 1.0}
        for suffix in SPEED_PROFILES:
            model = GPU_PROFILES[suffix][0]
            other = Profiles(root, suffix).peak_throughput(application)
            if other is not None and model not in row:
                row[model] = other / own
        matrix[application] = row
    return matrix
