"""The award run's HTML page, on runs built from the real optimiser and greedy rule: in the
shape ``GET /award-runs/{id}`` returns (the chosen plan only) and with both plans' lines."""

from __future__ import annotations

import html
import json
import re
from dataclasses import asdict
from typing import Any

import pytest

from aifactories.programme.award_compare import compare
from aifactories.programme.award_model import (
    AwardPlan,
    PartitionCapacity,
    ProgrammeWeights,
    ProposalDemand,
)
from aifactories.programme.award_report import (
    award_run_html,
    comparison_header,
    plan_views,
    shares_by_kind,
)
from aifactories.programme.greedy import greedy_awards
from aifactories.programme.optimiser import optimise_awards
from tests.programme.test_optimiser import demand, partition

MONTHS = 3
MONTH_STARTS = [1767225600.0, 1769904000.0, 1772323200.0]  # 2026-01, -02, -03 (UTC)
# Industrial and critical-domain work is worth more than rank 1 here: the optimiser funds
# proposal 12 first, the greedy rule walks down the ranking and funds proposal 11 first.
WEIGHTS = ProgrammeWeights(industrial=1.0, critical_domain=1.0)


def _round() -> tuple[list[ProposalDemand], list[PartitionCapacity], AwardPlan, AwardPlan]:
    demands = [
        demand(11, 1, 150.0, fraction=0.5, parts=("a/gpu", "b/gpu"), last=2, country="DE"),
        demand(
            12,
            2,
            150.0,
            fraction=0.5,
            parts=("a/gpu", "b/gpu"),
            last=2,
            industrial=True,
            critical=True,
            kind="startup",
            country="FR",
        ),
        demand(13, 3, 90.0, fraction=0.5, parts=("b/gpu",), last=2, kind="sme", country="IT"),
        demand(14, 4, 30.0, parts=("z/none",), kind="public", country="DE"),  # runs nowhere
        demand(15, 5, 30.0, parts=("c/gpu",), last=2, kind="academia", country="DE"),
    ]
    parts = [
        partition("a/gpu", 50.0, 50.0, 50.0),
        partition("b/gpu", 40.0, 40.0, 40.0),
        partition("c/gpu", 10.0, 10.0, 10.0),
    ]
    optimal = optimise_awards(demands, parts, WEIGHTS, months=MONTHS)
    greedy = greedy_awards(demands, parts, months=MONTHS, weights=WEIGHTS)
    return demands, parts, optimal, greedy


def _plan_json(plan: AwardPlan, *, with_lines: bool) -> dict[str, Any]:
    """As services/award_runs._plan_json stores it (plus the lines when asked)."""
    out: dict[str, Any] = {
        "objective_value": plan.objective_value,
        "solver": plan.solver,
        "solve_seconds": plan.solve_seconds,
        "status": plan.status,
        "mip_gap": plan.mip_gap,
        "awarded_gpu_hours": plan.awarded_gpu_hours,
        "outcomes": [asdict(o) for o in plan.outcomes],
    }
    if with_lines:
        out["lines"] = [asdict(line) for line in plan.lines]
    return out


def run_json(*, both: bool = False, method: str = "optimiser") -> dict[str, Any]:
    """A run as services/award_runs.run_view returns it, through JSON; ``both`` adds the two
    plans with their lines and the month starts (what the service stores in the summary)."""
    demands, parts, optimal, greedy = _round()
    chosen = optimal if method == "optimiser" else greedy
    comparison = compare(optimal, greedy, demands, parts, WEIGHTS, months=MONTHS)
    lines: dict[str, list[dict[str, Any]]] = {}
    for line in chosen.lines:
        lines.setdefault(str(line.proposal_id), []).append(
            {
                "site_id": line.site_id,
                "partition_id": line.partition_id,
                "month_starts_at": MONTH_STARTS[line.month],
                "gpu_hours": line.gpu_hours,
            }
        )
    run: dict[str, Any] = {
        "id": 7,
        "call": "ls-2026",
        "cutoff_at": None,
        "method": method,
        "status": "proposed",
        "objective": optimal.objective_text,
        "weights": asdict(WEIGHTS),
        "plan": _plan_json(chosen, with_lines=False),
        "comparison": [list(map(str, r)) for r in comparison.table_rows()],
        "lines": lines,
        "created_at": MONTH_STARTS[0],
        "applied_at": None,
    }
    if both:
        run["optimiser"] = _plan_json(optimal, with_lines=True)
        run["greedy"] = _plan_json(greedy, with_lines=True)
        run["month_starts"] = MONTH_STARTS
        run["proposals"] = [d.proposal_id for d in demands]
    result: dict[str, Any] = json.loads(json.dumps(run))
    return result


def _figures(page: str) -> list[list[dict[str, Any]]]:
    """The Plotly figures' data (traces) embedded in the page."""
    return [
        json.loads(m.group(1))
        for m in re.finditer(r"Plotly\.newPlot\(\s*\"[^\"]+\",\s*(\[.*?\]),\s*\{", page, re.S)
    ]


def _short(run: dict[str, Any], plan: str) -> list[dict[str, Any]]:
    return [o for o in run[plan]["outcomes"] if o["awarded"] < o["requested"] - 1e-3]


def test_the_round_differs_between_the_plans() -> None:
    run = run_json(both=True)
    awarded = {
        name: {o["proposal_id"]: round(o["awarded"]) for o in run[name]["outcomes"]}
        for name in ("optimiser", "greedy")
    }
    assert awarded["optimiser"] != awarded["greedy"]
    assert _short(run, "optimiser") and _short(run, "greedy")


def test_the_page_from_the_api_shape() -> None:
    run = run_json()
    page = award_run_html(run)
    assert page.startswith("<!doctype html>") and "plotly" in page.lower()
    assert html.escape(run["objective"]) in page
    for name, value in run["weights"].items():
        assert f"<td>{name}</td><td class='num'>{value:g}</td>" in page
    for outcome in run["plan"]["outcomes"]:
        assert f"<td>#{outcome['proposal_id']}</td>" in page
    # the comparison, with its header: the optimiser and the greedy rule side by side
    assert "<th class='num'>optimiser</th><th class='num'>greedy</th>" in page
    assert "Jain index, countries" in page
    # every short proposal with its reason and explanation; none that got all it asked
    short = [o for o in run["plan"]["outcomes"] if o["awarded"] < o["requested"] - 1e-3]
    full = [o for o in run["plan"]["outcomes"] if o not in short]
    assert short and full
    for o in short:
        assert f"<td>#{o['proposal_id']}</td>" in page.split("less than they asked")[1]
        assert f"<td>{o['reason']}</td>" in page
        assert html.escape(o["explanation"]) in page
    for o in full:
        assert f"<td>#{o['proposal_id']}</td>" not in page.split("less than they asked")[1]
    # only the chosen plan is drawn, and the page says the other is in the table only
    assert "holds the per-proposal and monthly awards of the plan it chose (optimiser)" in page
    requested, awarded = _figures(page)[0]
    assert requested["name"] == "requested" and awarded["name"] == "awarded: optimiser"
    assert awarded["y"] == [o["awarded"] for o in run["plan"]["outcomes"]]


def test_monthly_hours_add_up_per_plan() -> None:
    run = run_json(both=True)
    figures = _figures(award_run_html(run))
    monthly = figures[1]
    for axis, name in (("x", "optimiser"), ("x2", "greedy")):
        traces = [t for t in monthly if t.get("xaxis", "x") == axis]
        assert {t["name"] for t in traces} == {"a/gpu", "b/gpu", "c/gpu"}
        assert traces[0]["x"] == ["2026-01", "2026-02", "2026-03"]
        total = sum(sum(t["y"]) for t in traces)
        assert total == pytest.approx(run[name]["awarded_gpu_hours"])


def test_both_plans_per_proposal_in_panel_order() -> None:
    run = run_json(both=True)
    page = award_run_html(run)
    requested, optimiser, greedy = _figures(page)[0]
    assert requested["x"] == ["#11", "#12", "#13", "#14", "#15"]
    assert requested["y"] == [150.0, 150.0, 90.0, 30.0, 30.0]
    for trace, name in ((optimiser, "optimiser"), (greedy, "greedy")):
        assert trace["name"] == f"awarded: {name}"
        assert trace["y"] == [o["awarded"] for o in run[name]["outcomes"]]
    tail = page.split("less than they asked")[1]
    for name in ("optimiser", "greedy"):
        for o in _short(run, name):
            assert f"<td>{name}</td><td>#{o['proposal_id']}</td>" in tail
            assert html.escape(o["explanation"]) in tail
    assert "holds the per-proposal and monthly awards" not in page


def test_shares_by_kind_come_from_the_comparison() -> None:
    run = run_json()
    shares = shares_by_kind(run["comparison"])
    assert set(shares) == {"optimiser", "greedy"}
    assert list(shares["optimiser"]) == ["all", "startup", "sme", "academia", "public"]
    assert shares["optimiser"]["public"] == 0.0  # it runs nowhere
    figure = _figures(award_run_html(run))[2]
    assert [t["name"] for t in figure] == ["optimiser", "greedy"]
    assert figure[0]["y"] == list(shares["optimiser"].values())


def test_text_is_escaped() -> None:
    run = run_json()
    run["call"] = "<script>alert('call')</script>"
    short = next(o for o in run["plan"]["outcomes"] if o["reason"])
    short["explanation"] = "<img src=x onerror=alert(1)>"
    page = award_run_html(run, title="<script>alert('title')</script>")
    assert "<script>alert" not in page and "<img src=x" not in page
    assert "<h1>&lt;script&gt;alert(&#x27;title&#x27;)&lt;/script&gt;</h1>" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<h1>" in award_run_html(run) and "&lt;script&gt;alert(&#x27;call" in award_run_html(run)


def test_comparison_header_names_the_baseline() -> None:
    assert comparison_header([["gain over committee", "+1%", "", ""]]) == (
        "measure",
        "optimiser",
        "committee",
        "optimiser - committee",
    )
    assert comparison_header([])[2] == "greedy"


def test_a_greedy_run_and_a_run_without_awards() -> None:
    greedy = run_json(method="greedy")
    assert [p.name for p in plan_views(greedy)] == ["greedy"]
    assert "awarded: greedy" in award_run_html(greedy)
    empty = run_json()
    empty["lines"] = {}
    for o in empty["plan"]["outcomes"]:
        o.update(awarded=0.0, reason="capacity", explanation="nothing free")
    empty["comparison"] = []
    page = award_run_html(empty)
    assert "No GPU-hours were awarded per month" in page
    assert "No comparison in this run" in page
    assert len(_figures(page)) == 1
