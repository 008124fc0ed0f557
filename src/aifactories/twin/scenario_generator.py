"""The generator part of a scenario: which embedded mixture, how long its arrivals last, at
which load, and the defaults each mixture takes (written out in the resolved scenario)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

DEFAULT_GENERATOR_HOURS = 336.0
# Each mixture's default arrival window (hours) and load. Gavel's: the longest jobs run 167 h,
# so two weeks leave the second to measure. The AI-factory mixture's week-long jobs take a
# week to reach their steady share: four weeks leave three; 1.4 A100-hours per GPU-hour,
# since the catalogue's GPUs run 1.53 A100s each on average (GPU-weighted DEFAULT_SPEED), so
# it offers about 0.9 of what they deliver.
MIXTURE_DEFAULTS: dict[str, tuple[float, float]] = {
    "gavel": (DEFAULT_GENERATOR_HOURS, 0.9),
    "ai-factory": (672.0, 1.4),
}
AI_FACTORY_PARTITION_GPUS = 4096
"""The AI-factory mixture's largest job: ``auto`` picks that mixture where a partition holds
it, Gavel's elsewhere (docs/twin.md, "Steady state" for the windows)."""


class GeneratorSpec(BaseModel):
    """An embedded, seeded mixture: ``load`` is offered GPU-hours (at the reference A100's
    speed) over the GPUs; the jobs are those arriving within ``hours``, or the first ``jobs``
    (one of the two).

    ``ai-factory`` (twin/traces/federation_year.py): 1 to 4,096 GPUs, 10 min to 7 days, a
    few thousand jobs a fortnight on the catalogue, so a default run takes seconds. ``gavel``:
    Gavel's Philly-fitted mixture of 1 to 8 GPUs (twin/traces/synthetic.py), which needs half
    a million jobs to fill the catalogue a fortnight. ``auto`` (the default): ai-factory where
    a partition can hold its largest jobs (4,096 GPUs), else gavel. What ``auto`` and the
    mixture's defaults (``MIXTURE_DEFAULTS``) chose is written in the resolved scenario.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)  # as every part of a scenario

    mixture: Literal["auto", "ai-factory", "gavel"] = "auto"
    hours: Annotated[float, Field(gt=0, le=100_000, allow_inf_nan=False)] | None = None
    jobs: Annotated[int, Field(ge=1, le=10_000_000)] | None = None
    load: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _one_size(self) -> GeneratorSpec:
        if self.hours is not None and self.jobs is not None:
            raise PydanticCustomError(
                "generator",
                "give one of 'hours' and 'jobs', not both",
                {"expected": "hours: the arrival window (default), or jobs: a job count"},
            )
        return self

    def concrete(self, largest_partition_gpus: int) -> GeneratorSpec:
        """The mixture chosen for a federation whose largest partition has that many GPUs,
        with its default window and load where none is given."""
        mixture = self.mixture
        if mixture == "auto":
            big = largest_partition_gpus >= AI_FACTORY_PARTITION_GPUS
            mixture = "ai-factory" if big else "gavel"
        hours, load = MIXTURE_DEFAULTS[mixture]
        return self.model_copy(
            update={
                "mixture": mixture,
                "hours": self.hours if self.hours is not None or self.jobs is not None else hours,
                "load": self.load if self.load is not None else load,
            }
        )
