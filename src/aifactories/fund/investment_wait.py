"""The lowest-mean-wait objective of the investment optimiser: its queueing model, the tangent
planes that put it in the MIP, and the mean wait of a plan.

The model. Each country's capacity in a year is one pool (as in the served-demand objective:
which site of the country serves a GPU-hour does not change it). A pool of capacity C
(GPU-hours a year it can deliver, already at the file's utilisation) carrying load L (GPU-hours
served from it) is taken as an M/M/1 queue whose jobs last S hours on average (the scenario's
``mean_job_hours``): utilisation rho = L / C, each GPU-hour served waits rho / (1 - rho) x S
hours, so the pool's total wait is

    S x W(L, C),   W(L, C) = L^2 / (C - L)   (GPU-hours x job lengths),

quadratic-over-linear, jointly convex in (L, C) for C > L and homogeneous of degree 1: its
tangent plane at utilisation u passes through the origin, W >= alpha(u) L - beta(u) C with
alpha = u (2 - u) / (1 - u)^2 and beta = u^2 / (1 - u)^2. The MIP keeps one column W per pool
and one row per tangent utilisation (TANGENTS): the largest of the planes, an outer
linearisation from below, exact at each tangent utilisation and within TANGENT_TOLERANCE of
L^2 / (C - L) between 0.457 and MAX_UTILISATION (tests/fund/test_investment_wait.py). A pool is
loaded to MAX_UTILISATION at most (L <= 0.95 C): beyond it the true wait grows without bound.

Unserved demand. Each GPU-hour asked and not served counts as waiting T hours: a year (8,766 h),
or, if longer, 10% more than the steepest marginal wait the planes allow (1.1 x S x
alpha(MAX_UTILISATION): 1,756 h for jobs of 4 h, so a year). Serving one more GPU-hour where a
pool has room adds less queueing than that, so it always lowers the objective: a plan cannot
look better by leaving demand unserved (with T equal to the steepest slope, a solver could
stop indifferent at the last breakpoint).

The figure. Mean wait = (S x sum of W + unserved wait) / GPU-hours asked, in hours per GPU-hour
asked over the horizon. It is not weighted by priority: a pool is one first-come queue, every
GPU-hour in it waits alike, and every GPU-hour left unserved counts the same (use the
served-demand objective for the programme's priorities; the away penalty does not apply
either). It is the model's estimate, not the twin's: ``aif invest --check`` runs the plan in
the twin. Limits: an M/M/1 queue per country overstates the wait of a pool of many
accelerators at moderate load (an M/M/c queue waits far less below saturation) and ignores
job sizes and the federation's routing within a year; it ranks plans by congestion, it does
not predict the twin's hours. Below 45.7% utilisation the planes undercount the wait (to 0 at
30%), where it is small anyway (at most 0.84 S per GPU-hour).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from aifactories.domain.units import HOURS_PER_YEAR

TANGENTS = (0.457, 0.544, 0.628, 0.705, 0.772, 0.827, 0.871, 0.905, 0.931, 0.95)
"""Utilisations of the tangent planes: each as far below the next as keeps the planes within
3% of the wait between them (closer where the curve bends most, near saturation)."""
MAX_UTILISATION = TANGENTS[-1]
TANGENT_TOLERANCE = 0.03
ZERO_WAIT_UTILISATION = TANGENTS[0] / (2.0 - TANGENTS[0])
"""Where the first plane crosses 0 (about 30% busy): below it the model's wait is 0, so plans
that only differ in pools this lightly loaded all wait the same."""
ABS_WAIT_H = 1e-6
"""Hours of mean wait below which two waits are the same (and a wait is 0): the LP's noise."""
MEAN_JOB_HOURS = 4.0
"""The scenario's default mean job length (an assumption: AI and HPC jobs of hours, not days;
a plan file states its own)."""


def tangent(u: float) -> tuple[float, float]:
    """(alpha, beta) of the plane tangent to L^2 / (C - L) at utilisation u."""
    return u * (2.0 - u) / (1.0 - u) ** 2, u * u / (1.0 - u) ** 2


def queue_wait(load: float, capacity: float) -> float:
    """W = L^2 / (C - L): the total wait of the pool in GPU-hours x job lengths; infinite at
    or beyond saturation."""
    if load <= 0:
        return 0.0
    return load * load / (capacity - load) if capacity > load else float("inf")


def linearised_wait(load: float, capacity: float) -> float:
    """The MIP's W: the largest of the tangent planes (and 0)."""
    return max(0.0, *(a * load - b * capacity for a, b in map(tangent, TANGENTS)))


def unserved_wait_hours(mean_job_hours: float) -> float:
    """Hours each unserved GPU-hour counts as waiting (see the module docstring)."""
    return max(HOURS_PER_YEAR, 1.1 * mean_job_hours * tangent(MAX_UTILISATION)[0])


@dataclass(frozen=True, slots=True)
class WaitFigures:
    """A plan's mean wait (the model's estimate), in hours per GPU-hour."""

    mean_wait_h: float  # per GPU-hour asked: queueing and unserved together (the objective)
    queue_h: float  # per GPU-hour asked: the queueing part
    unserved_h: float  # per GPU-hour asked: the unserved part
    served_wait_h: float  # per GPU-hour served: the mean queueing wait of what is served
    unserved_share: float  # of the GPU-hours asked

    @classmethod
    def of(
        cls, *, wait: float, served: float, asked: float, job_hours: float, unserved_hours: float
    ) -> WaitFigures:
        """From the sum of W (GPU-hours x job lengths), the GPU-hours served and asked."""
        unserved = max(asked - served, 0.0)
        queue = job_hours * wait
        per_asked = 1.0 / asked if asked > 0 else 0.0
        return cls(
            mean_wait_h=(queue + unserved_hours * unserved) * per_asked,
            queue_h=queue * per_asked,
            unserved_h=unserved_hours * unserved * per_asked,
            served_wait_h=queue / served if served > 0 else 0.0,
            unserved_share=unserved * per_asked,
        )

    def as_dict(self) -> dict[str, float]:
        return {
            "mean_wait_h": self.mean_wait_h,
            "queue_h": self.queue_h,
            "unserved_h": self.unserved_h,
            "served_wait_h": self.served_wait_h,
            "unserved_share": self.unserved_share,
        }


def wait_saved(
    own: npt.NDArray[np.float64], saved_h: float, asked: float
) -> npt.NDArray[np.float64]:
    """Each pool's share of the wait the plan saves against today alone, in hours x GPU-hours
    asked (``saved_h``: hours of mean wait). ``own``, per pool, is T x (GPU-hours it serves
    more) - S x (its queue's growth): not its saving, because load that only moves from one
    country's pool to another's (a demand of residency eu or any) is served more in one and
    less in the other, and the pool that gains would be credited with a saving the plan does
    not make. So the plan's net saving is shared among the pools that gain, in proportion to
    their gain; nothing when it saves none."""
    gain = np.maximum(own, 0.0)
    if saved_h <= ABS_WAIT_H or gain.sum() <= 0:
        return np.zeros_like(own)
    return gain * (saved_h * asked / float(gain.sum()))


def zero_wait_note(mean_wait_h: float) -> str:
    """Said when the plan waits 0 h: every plan that does ties, the tie-break alone chose."""
    if mean_wait_h > ABS_WAIT_H:
        return ""
    return (
        f"the plan waits 0.0 h (all demand served, each pool under {ZERO_WAIT_UTILISATION:.0%} "
        "busy, where the model's queueing wait is 0): every such plan ties on the objective, "
        "and the tie-break alone chose this one"
    )
