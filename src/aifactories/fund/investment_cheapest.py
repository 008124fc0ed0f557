"""The tie-break between plans that serve as much: the cheapest of the plans proven within the
solver's gap of the best (a second, lexicographic stage after the investment MIP).

Why a second stage and not a penalty on capital in the objective: HiGHS stops once its plan
is proven within MIP_REL_GAP (0.2%) of the best, so a penalty on capital changes the plan only
if the whole budget's worth of it is more than the gap, and then it may also cost more than
the gap of the objective itself; a penalty small enough never to do that is below what HiGHS
resolves. The objective already carries such a penalty (investment_build.TIE_BREAK, a
millionth): on the InvestAI file with the programme's demand it left a plan at EUR 18.00 bn
where EUR 11.39 bn served the same. So, after the first MIP:

- a row: the objective (without the penalty) at least HiGHS' dual bound / (1 + gap), the
  plans it proved within the gap of the best (at most the bound / (1 - gap) for the mean
  wait; never tighter than the first plan, which is always feasible: with a time limit, the
  plans at least as good as the first);
- the objective: the capital, minimised, from the first plan (HiGHS' setSolution);
- a time limit (CHEAPEST_TIME_LIMIT_S): the whole solve stays within the bench's 10 s target
  (bench/bench_invest.py); at the limit the cheapest plan found so far, never dearer than the
  first plan, is kept and the plan says it was not proven the cheapest.

The row, the objective and the time limit are then taken back: the LPs of the why
(investment.py) run on the first model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import highspy
import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from aifactories.fund.investment_build import Model

FloatArray = npt.NDArray[np.float64]

CHEAPEST_TIME_LIMIT_S = 3.0
"""The second stage's time limit, at most: the first MIP of the bench took up to 5.7 s under
load 3 (docs/benchmarks.md), and 3 s more with the LPs of the why stays within its 10 s."""
SOLVE_BUDGET_S = 8.0
"""Both stages end by then if they can (the tie-break gets what the first MIP left of it, at
least MIN_TIME_LIMIT_S): the LPs of the why take the bench's plan to about 10 s."""
MIN_TIME_LIMIT_S = 0.5
MIN_LEFT_S = 0.01  # the caller's limit spent: HiGHS still takes its start plan
CAPITAL_REL_GAP = 1e-2
"""The second stage stops once its capital is proven within 1% of the least: on the bench
(budget-bound, EUR 20 bn) that takes 0.05-0.1 s; at the first stage's 0.2% it ran to the 3 s
limit on seeds 1, 3 and 5 for EUR 4-40 m less (docs/benchmarks.md). 1% is less than a module of
the bench (EUR 0.2 bn and more) and than any InvestAI candidate but the IT4LIA upgrade."""


def time_limit(elapsed_s: float, caller_limit_s: float | None) -> float:
    """The tie-break's time limit after a first MIP of ``elapsed_s``: the caller's limit, if
    any, is on the whole solve, so the tie-break gets at most what is left of it (the API's
    60 s are a total; a sliver at least, for HiGHS to return its start plan)."""
    limit = min(CHEAPEST_TIME_LIMIT_S, max(SOLVE_BUDGET_S - elapsed_s, MIN_TIME_LIMIT_S))
    if caller_limit_s is None:
        return limit
    return min(limit, max(caller_limit_s - elapsed_s, MIN_LEFT_S))


@dataclass(frozen=True, slots=True)
class TieBreak:
    """What the second stage did: the plans it chose among, and the capital before and after."""

    tolerance: float  # relative, of the objective: the plans within it of HiGHS' bound
    capital_gap: float  # relative: the capital kept is proven within it of the least
    first_capital_eur: float  # the first plan found
    capital_eur: float  # the plan kept (after the idle-module clean-up)
    status: str  # optimal: proven the cheapest (within the gap); time_limit; none: no plan
    seconds: float
    note: str = ""  # said after it: why the tie-break alone chose (every plan waits 0 h)

    def text(self) -> str:
        within = f"the plans within {self.tolerance:.2%} of the best"
        note = f"; {self.note}" if self.note else ""
        if self.status == "none":  # HiGHS returned no plan (numerics): the first one is kept
            return (
                "tie-break: not run to a plan; the first plan found, "
                f"EUR {self.capital_eur / 1e9:,.2f} bn, kept{note}"
            )
        if self.status == "time_limit":
            head = (
                f"the cheapest found in {self.seconds:.1f} s (not proven the cheapest) of {within}"
            )
        else:
            head = f"the cheapest (within {self.capital_gap:.0%}) of {within}"
        return (
            f"tie-break: {head}: EUR {self.capital_eur / 1e9:,.2f} bn; the first plan found "
            f"cost EUR {self.first_capital_eur / 1e9:,.2f} bn{note}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": "least capital among the plans within the tolerance of the best",
            "tolerance": self.tolerance,
            "capital_gap": self.capital_gap,
            "first_capital_eur": self.first_capital_eur,
            "capital_eur": self.capital_eur,
            "status": self.status,
            "seconds": self.seconds,
            "note": self.note or None,
        }


def _threshold(m: Model, found: float, bound: float, tolerance: float) -> tuple[float, float]:
    """The row's bounds on the objective without the penalty, in the model's units."""
    inf = highspy.kHighsInf
    if m.lp.sense_ == highspy.ObjSense.kMaximize:
        pure_bound = bound + m.tie_total  # the penalty on the whole budget, taken off
        return min(found, pure_bound / (1.0 + tolerance)) - 1e-9 * max(abs(found), 1.0), inf
    pure_bound = bound - m.tie_total
    upper = max(found, pure_bound / (1.0 - tolerance) if tolerance < 1 else inf)
    return -inf, upper + 1e-9 * max(abs(found), 1.0)


def cheapest(
    h: Any,
    m: Model,
    capital_eur: FloatArray,
    *,
    tolerance: float,
    bound: float,
    time_limit_s: float,
) -> tuple[FloatArray, str, float]:
    """The integers (modules and countries) of the cheapest plan within ``tolerance`` of
    ``bound`` (HiGHS' dual bound, in the model's objective), from the first MIP solved in
    ``h``; its status (optimal, time_limit, none) and the seconds it took. ``h`` is left as
    it was: the first model, no time limit."""
    started = time.perf_counter()
    lp = m.lp
    n = int(lp.num_col_)
    first = np.asarray(h.getSolution().col_value, dtype=np.float64)
    pure = np.asarray(lp.col_cost_, dtype=np.float64).copy()
    pure[: m.n_candidates] = 0.0  # the penalty on capital
    found = float(pure @ first) + float(lp.offset_)
    lower, upper = _threshold(m, found, bound, tolerance)
    offset = float(lp.offset_)
    cols = np.flatnonzero(pure).astype(np.int32)
    row = int(h.getNumRow())
    h.addRow(lower - offset, upper - offset, cols.size, cols, pure[cols])
    cost = np.zeros(n)
    scale = max(float(capital_eur.max(initial=0.0)), 1.0)
    cost[: m.n_candidates] = capital_eur / scale
    everything = np.arange(n, dtype=np.int32)
    h.changeColsCost(n, everything, cost)
    h.changeObjectiveSense(highspy.ObjSense.kMinimize)
    h.changeObjectiveOffset(0.0)
    h.setOptionValue("time_limit", time_limit_s)
    _, first_gap = h.getOptionValue("mip_rel_gap")
    h.setOptionValue("mip_rel_gap", CAPITAL_REL_GAP)
    start = highspy.HighsSolution()
    start.col_value = list(first)
    start.value_valid = True
    h.setSolution(start)
    h.run()
    status = h.getModelStatus()
    feasible = h.getInfo().primal_solution_status == 2  # kSolutionStatusFeasible
    chosen, state = np.round(first[: m.x_start]), "none"
    if status == highspy.HighsModelStatus.kOptimal or (
        status == highspy.HighsModelStatus.kTimeLimit and feasible
    ):
        state = "optimal" if status == highspy.HighsModelStatus.kOptimal else "time_limit"
        found_int = np.round(np.asarray(h.getSolution().col_value)[: m.x_start])
        before = float(capital_eur @ chosen[: m.n_candidates])
        if float(capital_eur @ found_int[: m.n_candidates]) < before * (1 - 1e-12):
            chosen = found_int  # else the first plan, as cheap (the start HiGHS was given)
    h.deleteRows(1, np.array([row], dtype=np.int32))
    h.changeColsCost(n, everything, np.asarray(lp.col_cost_, dtype=np.float64))
    h.changeObjectiveSense(lp.sense_)
    h.changeObjectiveOffset(offset)
    h.setOptionValue("time_limit", highspy.kHighsInf)
    h.setOptionValue("mip_rel_gap", first_gap)
    return chosen, state, time.perf_counter() - started
