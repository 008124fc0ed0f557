"""The benchmark's instance (bench/bench_invest.py, seed 1: 120 candidates, 5 years, every
constraint) keeps its optimum: the objective below was computed once, at 4c6c1a6 (before the
changes to the model's build for issue 15's second round), and a change to the formulation or
to HiGHS' options must find the same optimum within the gap both runs proved (1e-4 of it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from aifactories.fund.investment import MIP_REL_GAP, optimise_investments

SEED_1_OBJECTIVE = 77_052_815_266.18848  # weighted GPU-hours served, 2027-2031
SEED_1_BASELINE = 2_552_544_158.379622  # today's capacity alone


def _bench() -> ModuleType:
    path = Path(__file__).parents[2] / "bench" / "bench_invest.py"
    spec = importlib.util.spec_from_file_location("bench_invest", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_bench_instance_keeps_its_optimum() -> None:
    problem = _bench().bench_problem(30, 1)
    plan = optimise_investments(problem)
    assert plan.status == "optimal" and plan.mip_gap <= MIP_REL_GAP
    assert plan.objective == pytest.approx(SEED_1_OBJECTIVE, rel=MIP_REL_GAP)
    assert plan.baseline_objective == pytest.approx(SEED_1_BASELINE, rel=1e-9)
    assert plan.capital_eur <= problem.budget_eur
