"""Benchmark the allocation optimiser against the committee's greedy rule on a synthetic round.

    python bench/bench_award_optimiser.py [--proposals 5000] [--seed 1] [--months 12]
        [--demand-ratio 2.0] [--request-exponent 1.0] [--strict]

The round is drawn by :mod:`aifactories.programme.synthetic_demand` over the default
catalogue's operational partitions (seeded). The optimiser's time is wall-clock from its
inputs to its plan (model building, every HiGHS solve, splitting pools into lines and the
reasons), against a limit of 10 s and a target of 2 s; then both plans side by side under
the same weights. ``--strict`` exits 1 if the limit is missed.
"""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.table import Table

from aifactories.programme.award_compare import compare
from aifactories.programme.award_model import ProgrammeWeights
from aifactories.programme.greedy import greedy_awards
from aifactories.programme.optimiser import MIP_REL_GAP, optimise_awards
from aifactories.programme.synthetic_demand import synthetic_round

LIMIT_S, TARGET_S = 10.0, 2.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--proposals", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--demand-ratio", type=float, default=2.0)
    parser.add_argument("--request-exponent", type=float, default=1.0)
    parser.add_argument("--strict", action="store_true", help="exit 1 if the limit is missed")
    args = parser.parse_args(argv)

    console = Console()
    rnd = synthetic_round(
        args.proposals, seed=args.seed, months=args.months, demand_ratio=args.demand_ratio
    )
    weights = ProgrammeWeights(request_exponent=args.request_exponent)
    requested = sum(d.requested_gpu_hours for d in rnd.demands)
    console.print(
        f"{len(rnd.demands):,} proposals x {len(rnd.partitions)} partitions x {rnd.months} "
        f"months; requested {requested:,.0f} GPU-hours = {rnd.demand_ratio:.2f} x free "
        f"capacity (programme share {rnd.programme_share:.0%} of the machines); seed {args.seed}"
    )
    plan = optimise_awards(rnd.demands, rnd.partitions, weights, months=rnd.months)
    greedy = greedy_awards(rnd.demands, rnd.partitions, months=rnd.months, weights=weights)
    verdict = "PASS" if plan.solve_seconds < LIMIT_S else "FAIL"
    console.print(
        f"[bold]{plan.status} in {plan.solve_seconds:.2f} s[/bold]; limit {LIMIT_S:g} s, "
        f"target {TARGET_S:g} s: {verdict}. Proven gap {plan.mip_gap:.1e} "
        f"(stops at {MIP_REL_GAP:g}). {plan.solver}"
    )
    comparison = compare(plan, greedy, rnd.demands, rnd.partitions, weights, months=rnd.months)
    table = Table(title=f"optimiser vs greedy (gain {comparison.gain_percent:+.1f}%)")
    for header in ("measure", "optimiser", "greedy", "difference"):
        table.add_column(header, justify="left" if header == "measure" else "right")
    for measure, a, b, diff in comparison.table_rows():
        table.add_row(measure, a, b, diff)
    console.print(table)
    console.print(f"[dim]{comparison.weights_text}[/dim]")
    return 1 if verdict == "FAIL" and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
