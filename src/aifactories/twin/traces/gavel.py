"""Gavel's measured throughputs and its continuous workload generator.

:func:`load_gavel_throughputs` reads Gavel's ``simulation_throughputs.json`` (shared copy:
``../shared/traces/gavel-throughputs/``, whose README gives source, licence and format; the path
is always the caller's): ``{worker_type: {"('<model>', <scale factor>)": {"null": it/s alone,
"<other job type>": [it/s, it/s] when sharing a GPU}}}``. Only the ``"null"`` entries are kept
(space sharing is not modelled), as ``job type -> scale factor -> {worker type: it/s}``;
worker types keep the file's names (``v100``, ``k80_unconsolidated``, ...). A 0.0 means the
job cannot run there (out of memory).

:func:`generate_gavel_continuous` follows Gavel's simulator (``scheduler.py``'s ``simulate``
with ``utils.generate_job``, stanford-futuredata/gavel), with the same random streams, so a seed
gives the jobs Gavel's own simulator draws for that seed:

- jobs from ``random.Random(seed + 2)``, in Gavel's order per job: a scale-factor draw
  ``u`` (2 GPUs if 0.7 <= u <= 0.8, 4 if <= 0.95, 8 above, else 1: Gavel's Philly mix), drawn
  even when only 1-GPU jobs are made (then ignored, as Gavel does); the duration, 60 x
  10^U(3, 4) s if a uniform draw is >= 0.8, else 60 x 10^U(1.5, 3) s; the job type, uniform over
  Gavel's JobTable (:data:`GAVEL_JOB_TABLE`, 26 models; drawn again until the model has a
  throughput at that scale factor, Gavel's "distributed" test), Python's ``choice`` algorithm
  written out on ``getrandbits`` so it cannot drift;
- arrivals from ``random.Random(seed + 3)``: the first job at 0, then gaps of
  ``-ln(1 - u) x 3600 / jobs_per_hour`` s (``lam`` = 3600 / rate in Gavel's sweeps);
- ``runtime_s`` is the duration, which Gavel turns into ``duration x throughput on v100``
  steps (kept in ``extra`` as ``steps``); ``gpus`` the scale factor; ``workload_class`` the
  model, with `` (scale factor N)`` appended above 1 GPU (Gavel's own string form).

Gavel's continuous-single experiment is ``scale_factor_one_only=True`` (no ``-m``), seeds 0-2,
a 36 V100 + 36 P100 + 36 K80 cluster, rounds of 360 s and jobs 4000-5000 measured.
:func:`gavel_speed_matrix` gives the twin's speed matrix from the same file.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

from aifactories.domain.errors import InvalidInput
from aifactories.twin.traces.model import Trace, TraceJob

GavelThroughputs = Mapping[str, Mapping[int, Mapping[str, float]]]
"""job type (model) -> scale factor -> worker type -> iterations per second, alone."""

GAVEL_JOB_TABLE: tuple[str, ...] = (
    *(f"ResNet-18 (batch size {b})" for b in (16, 32, 64, 128, 256)),
    *(f"ResNet-50 (batch size {b})" for b in (16, 32, 64, 128)),
    *(f"Transformer (batch size {b})" for b in (16, 32, 64, 128, 256)),
    *(f"LM (batch size {b})" for b in (5, 10, 20, 40, 80)),
    *(f"Recommendation (batch size {b})" for b in (512, 1024, 2048, 4096, 8192)),
    "A3C",
    "CycleGAN",
)
"""Gavel's ``job_table.JobTable`` models, in its order (the order its ``rng.choice`` indexes)."""

REFERENCE_WORKER_TYPE = "v100"
SPEED_WORKER_TYPES: tuple[str, ...] = ("v100", "p100", "k80")
_KEY = re.compile(r"^\('(.*)', (\d+)\)$")


class GavelThroughputsError(InvalidInput):
    """The throughputs file is malformed; the message names the file and the JSON path."""

    code = "invalid_trace"

    def __init__(self, file: str | Path, where: str, problem: str) -> None:
        super().__init__("throughputs", problem)
        self.file = str(file)
        self.where = where
        self.problem = problem
        self.message = f"{Path(file).name}: {where}: {problem}"
        self.args = (self.message,)


def load_gavel_throughputs(path: Path | str) -> GavelThroughputs:
    """Read Gavel's throughputs JSON at ``path`` (see the module docstring); read-only result."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise GavelThroughputsError(source, "file", f"cannot read it ({exc.strerror})") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GavelThroughputsError(
            source, f"line {exc.lineno}", f"not valid JSON: {exc.msg}"
        ) from None
    if not isinstance(raw, dict) or not raw:
        raise GavelThroughputsError(
            source, "top level", "expected a non-empty object of worker types"
        )
    table: dict[str, dict[int, dict[str, float]]] = {}
    for worker, jobs in raw.items():
        if not isinstance(jobs, dict):
            raise GavelThroughputsError(source, worker, "expected an object of job types")
        for key, entry in jobs.items():
            match = _KEY.match(key)
            where = f"{worker} -> {key}"
            if match is None:
                raise GavelThroughputsError(
                    source, where, "job type must read \"('<model>', <scale factor>)\""
                )
            if not isinstance(entry, dict) or "null" not in entry:
                raise GavelThroughputsError(
                    source, where, 'expected an object with a "null" (alone) throughput'
                )
            value = entry["null"]
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                raise GavelThroughputsError(
                    source, f"{where} -> null", f"expected a number >= 0, got {value!r}"
                )
            scale = int(match.group(2))
            if scale < 1:
                raise GavelThroughputsError(source, where, "scale factor must be >= 1")
            per_scale = table.setdefault(match.group(1), {}).setdefault(scale, {})
            per_scale[worker] = float(value)
    return MappingProxyType(
        {
            model: MappingProxyType(
                {scale: MappingProxyType(dict(workers)) for scale, workers in scales.items()}
            )
            for model, scales in table.items()
        }
    )


def workload_class(model: str, scale_factor: int) -> str:
    """The twin's workload class of a Gavel job type (Gavel's ``(scale factor N)`` form)."""
    return model if scale_factor == 1 else f"{model} (scale factor {scale_factor})"


def gavel_speed_matrix(
    throughputs: GavelThroughputs,
    scale_factors: Sequence[int] = (1,),
    *,
    worker_types: Sequence[str] = SPEED_WORKER_TYPES,
    reference: str = REFERENCE_WORKER_TYPE,
) -> dict[str, dict[str, float]]:
    """``{workload class: {"V100": 1.0, "P100": p / v, "K80": k / v}}``: each job type's
    throughput relative to the reference worker type, GPU models upper-case as in the
    catalogue. Job types lacking one of the worker types at a scale factor are left out."""
    matrix: dict[str, dict[str, float]] = {}
    for model, scales in throughputs.items():
        for scale in scale_factors:
            workers = scales.get(scale)
            if workers is None or any(w not in workers for w in (*worker_types, reference)):
                continue
            base = workers[reference]
            if base <= 0:
                raise InvalidInput(
                    "throughputs",
                    f"{model} at scale factor {scale} has no throughput on {reference}, "
                    "so its speeds cannot be relative to it",
                )
            matrix[workload_class(model, scale)] = {
                w.upper(): workers[w] / base for w in worker_types
            }
    return matrix


def generate_gavel_continuous(
    jobs: int,
    jobs_per_hour: float,
    seed: int,
    throughputs: GavelThroughputs,
    scale_factor_one_only: bool = True,
) -> Trace:
    """``jobs`` jobs as Gavel's simulator generates them for ``seed`` (see the module)."""
    if jobs < 0:
        raise InvalidInput("jobs", f"must be >= 0, got {jobs}")
    if not (math.isfinite(jobs_per_hour) and jobs_per_hour > 0):
        raise InvalidInput("jobs_per_hour", f"must be > 0, got {jobs_per_hour}")
    models = _job_types(throughputs)
    scales = {scale for per_model in throughputs.values() for scale in per_model}
    job_rng = random.Random(seed + 2)
    arrival_rng = random.Random(seed + 3)
    lam = 3600.0 / jobs_per_hour
    width = max(6, len(str(jobs)))
    arrival = 0.0
    generated: list[TraceJob] = []
    for index in range(jobs):
        scale = _scale_factor(job_rng.random())
        low, high = (3.0, 4.0) if job_rng.random() >= 0.8 else (1.5, 3.0)
        duration = 60.0 * 10.0 ** (low + (high - low) * job_rng.random())
        if scale_factor_one_only:
            scale = 1
        if scale not in scales:
            raise InvalidInput(
                "throughputs", f"no job type has a throughput at scale factor {scale}"
            )
        while True:
            model = models[_below(job_rng, len(models))]
            if scale == 1 or scale in throughputs[model]:
                break
        rate = throughputs[model].get(scale, {}).get(REFERENCE_WORKER_TYPE, 0.0)
        if rate <= 0:
            raise InvalidInput(
                "throughputs",
                f"{model} at scale factor {scale} has no {REFERENCE_WORKER_TYPE} throughput, "
                "which Gavel needs to turn a duration into steps",
            )
        generated.append(
            TraceJob(
                job_id=f"gavel-{index:0{width}d}",
                submit_s=round(arrival, 3),
                runtime_s=round(duration, 3),
                gpus=scale,
                workload_class=workload_class(model, scale),
                extra=(("steps", repr(duration * rate)),),
            )
        )
        arrival += -math.log(1.0 - arrival_rng.random()) * lam
    return Trace(
        name=(
            f"gavel-continuous(n={jobs}, jobs_per_hour={jobs_per_hour:g}, seed={seed}, "
            f"{'1 GPU' if scale_factor_one_only else 'multi-GPU'})"
        ),
        source=None,
        jobs=tuple(generated),
    )


def _job_types(throughputs: GavelThroughputs) -> list[str]:
    """Gavel's JobTable order for the models the file has at 1 GPU, then any others sorted."""
    single = {model for model, scales in throughputs.items() if 1 in scales}
    if not single:
        raise InvalidInput("throughputs", "no job type has a 1-GPU throughput")
    known = [model for model in GAVEL_JOB_TABLE if model in single]
    return known + sorted(single - set(known))


def _scale_factor(u: float) -> int:
    """Gavel's ``_generate_scale_factor`` (its overlapping bounds: the first test wins)."""
    if 0.7 <= u <= 0.8:
        return 2
    if 0.8 <= u <= 0.95:
        return 4
    if u >= 0.95:
        return 8
    return 1


def _below(rng: random.Random, n: int) -> int:
    """CPython's ``Random._randbelow_with_getrandbits``, which ``choice`` uses: written out so
    the draws stay Gavel's whatever a later Python does to ``choice``."""
    bits = n.bit_length()
    value = rng.getrandbits(bits)
    while value >= n:
        value = rng.getrandbits(bits)
    return value
