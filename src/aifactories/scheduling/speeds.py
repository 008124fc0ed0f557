"""How fast each GPU model runs a job, relative to a reference GPU: the speed table a policy
reads from the :class:`~aifactories.scheduling.snapshot.Snapshot`.

A row per workload class (a job's ``JobSpec.workload_class``: a model, a trace's job type)
and a default row for every job without a class, or with a class the table does not know;
a GPU model missing from a class's row falls back to the default row, and one missing from
both runs at 1.0 (the reference). The twin fills it from its setup (``TwinSetup.speed`` and
``speed_by_class``, the same rule as ``twin.setup.speed_of``); the broker from the catalogue
(:func:`speeds_from_billing_weights`). An empty table makes every GPU equal.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from aifactories.domain.errors import InvalidInput
from aifactories.domain.sites import Partition

_NO_ROW: Mapping[str, float] = MappingProxyType({})
_NO_ROWS: Mapping[str, Mapping[str, float]] = MappingProxyType({})


def _row(speeds: Mapping[str, float]) -> Mapping[str, float]:
    # GPU models are matched without regard to case, as JobSpec.wants_model does.
    return MappingProxyType({model.upper(): float(speed) for model, speed in speeds.items()})


@dataclass(frozen=True, slots=True)
class SpeedTable:
    """``default``: GPU model -> speed; ``by_class``: workload class -> GPU model -> speed."""

    default: Mapping[str, float] = field(default_factory=lambda: _NO_ROW)
    by_class: Mapping[str, Mapping[str, float]] = field(default_factory=lambda: _NO_ROWS)
    # GPU model -> the median over the classes of a class's speed there / its best speed.
    median_relative: Mapping[str, float] = field(default_factory=lambda: _NO_ROW)

    @classmethod
    def of(
        cls,
        default: Mapping[str, float],
        by_class: Mapping[str, Mapping[str, float]] | None = None,
    ) -> SpeedTable:
        """A read-only table from plain mappings; a speed of 0 or less is refused (a GPU a
        job cannot run on is a hardware constraint, ``JobSpec.gpu_model``, not a speed)."""
        rows = [default, *(by_class or {}).values()]
        for row in rows:
            for model, speed in row.items():
                if not speed > 0:
                    raise InvalidInput(
                        "speed", f"{model}: {speed}", limit="a speed above 0 (1.0 = reference)"
                    )
        rows_by_class = {name: _row(row) for name, row in (by_class or {}).items()}
        return cls(
            default=_row(default),
            by_class=MappingProxyType(rows_by_class),
            median_relative=_median_relative(rows_by_class.values()),
        )

    def relative(self, workload_class: str | None, gpu_model: str) -> float:
        """Speed on ``gpu_model`` / the job's best speed on the models of the row it reads
        (its class's row, else the default row): 1.0 on its best GPU, and everywhere for a
        job the table gives one speed on every GPU."""
        row = self.by_class.get(workload_class) if workload_class is not None else None
        models = {*(row or self.default), gpu_model.upper()}
        best = max(self.speed(workload_class, model) for model in models)
        return self.speed(workload_class, gpu_model) / best

    def has_comparative_advantage(self, workload_class: str | None, gpu_model: str) -> bool:
        """Whether the class loses less on ``gpu_model`` than the median class does."""
        median = self.median_relative.get(gpu_model.upper())
        if median is None:
            return False
        return self.relative(workload_class, gpu_model) > median

    def speed(self, workload_class: str | None, gpu_model: str) -> float:
        """The speed of a job of ``workload_class`` on ``gpu_model`` (1.0 if unknown)."""
        model = gpu_model.upper()
        if workload_class is not None:
            row = self.by_class.get(workload_class)
            if row is not None:
                found = row.get(model)
                if found is not None:
                    return found
        return self.default.get(model, 1.0)


def _median_relative(rows: Iterable[Mapping[str, float]]) -> Mapping[str, float]:
    """GPU model -> median over the class rows naming it of (speed there / the row's best).

    Only models that at least two classes name: one class alone has no advantage over
    others, so a table of one row (the catalogue's) gives none."""
    by_model: dict[str, list[float]] = {}
    for row in rows:
        if not row:
            continue
        best = max(row.values())
        for model, speed in row.items():
            by_model.setdefault(model, []).append(speed / best)
    return MappingProxyType({m: statistics.median(v) for m, v in by_model.items() if len(v) > 1})


def speeds_from_billing_weights(partitions: Iterable[Partition]) -> SpeedTable:
    """The broker's table: each GPU model's billing weight from the catalogue, which the
    programme sets as what an hour of that GPU is worth against an A100 hour (H100 2.0,
    H200 2.5): the catalogue's only statement of relative speed until it states one per
    workload class. One row for every job; the highest weight of a model wins."""
    weights: dict[str, float] = {}
    for partition in partitions:
        model = partition.gpu_model.upper()
        weights[model] = max(weights.get(model, 0.0), partition.billing_weight)
    return SpeedTable.of({m: w for m, w in weights.items() if w > 0})
