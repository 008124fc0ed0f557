"""The books in euros, pure rules: figures computed by hand on a two-site catalogue."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pytest

from aifactories.catalogue.loader import Catalogue, parse_catalogue
from aifactories.fund.valuation_rules import (
    AllocationEuros,
    Held,
    allocation_rate,
    charge_eur,
    partition_rates,
    pooled_rate,
    unweighted_gpu_hours,
    value_allocation,
)


@dataclass(frozen=True)
class _Cost:
    eur_per_gpu_hour: float


@dataclass(frozen=True)
class _Costs:
    """A small cost model: only what valuation reads."""

    partitions: Mapping[str, _Cost]


def _catalogue() -> Catalogue:
    def site(ident: str, status: str, partitions: list[dict[str, object]]) -> dict[str, object]:
        return {
            "id": ident,
            "name": ident,
            "country": "FI",
            "supercomputer": ident,
            "status": status,
            "partitions": partitions,
        }

    def partition(name: str, nodes: int, weight: float) -> dict[str, object]:
        return {
            "name": name,
            "gpu_model": "H100",
            "gpu_memory_gb": 80,
            "gpus_per_node": 4,
            "nodes": nodes,
            "billing_weight": weight,
        }

    return parse_catalogue(
        {
            "sites": [
                # a: 100 GPUs at weight 2 and EUR 3.00 / GPU-hour, 300 at weight 1 and EUR 1.00
                site("a", "operational", [partition("fast", 25, 2.0), partition("slow", 75, 1.0)]),
                # b: 40 GPUs at weight 1 and EUR 2.00
                site("b", "operational", [partition("gpu", 10, 1.0)]),
                # c: planned, priced, but no pool for any site counts it
                site("c", "planned", [partition("gpu", 10, 1.0)]),
                # d: no cost figures
                site("d", "operational", [partition("gpu", 10, 1.0)]),
            ]
        },
        "test",
    )


COSTS = _Costs(
    {
        "a/fast": _Cost(3.0),
        "a/slow": _Cost(1.0),
        "b/gpu": _Cost(2.0),
        "c/gpu": _Cost(9.0),
    }
)
RATES = partition_rates(_catalogue(), COSTS)
OPERATIONAL = ("a", "b", "d")


def test_partitions_the_cost_model_prices_have_a_rate() -> None:
    assert set(RATES) == {"a/fast", "a/slow", "b/gpu", "c/gpu"}
    fast = RATES["a/fast"]
    assert (fast.gpus, fast.billing_weight, fast.eur_per_gpu_hour) == (100, 2.0, 3.0)
    assert fast.eur_per_billed_gpu_hour == pytest.approx(1.5)


def test_a_charge_is_its_unweighted_gpu_hours_at_the_partitions_cost() -> None:
    # 4 GPU-hours charged at weight 2: 2 GPU-hours of a EUR 3.00 GPU-hour
    assert unweighted_gpu_hours(4 * 3600, 2.0) == pytest.approx(2.0)
    assert charge_eur(4 * 3600, 2.0, 3.0) == pytest.approx(6.0)
    # 8 GPUs for 30 minutes at weight 2.5 (charged 8 x 1800 x 2.5) on EUR 4.20 GPU-hours
    assert charge_eur(8 * 1800 * 5 // 2, 2.5, 4.2) == pytest.approx(16.8)
    with pytest.raises(ValueError, match="positive"):
        charge_eur(3600, 0.0, 1.0)


def test_an_allocations_rate_is_pooled_over_its_partitions_by_capacity() -> None:
    # site a: (100 x 3 + 300 x 1) / (100 x 2 + 300 x 1) = 600 / 500
    assert allocation_rate(RATES, "a", None, OPERATIONAL) == pytest.approx(1.2)
    assert allocation_rate(RATES, "b", None, OPERATIONAL) == pytest.approx(2.0)
    # a pool of a and b: (600 + 40 x 2) / (500 + 40) = 680 / 540
    assert allocation_rate(RATES, None, ["a", "b"], OPERATIONAL) == pytest.approx(680 / 540)
    # a pool for any site: the operational ones (d has no cost, c is planned)
    assert allocation_rate(RATES, None, None, OPERATIONAL) == pytest.approx(680 / 540)
    assert allocation_rate(RATES, "d", None, OPERATIONAL) is None
    assert pooled_rate([]) is None


def test_an_allocation_in_euros_by_hand() -> None:
    rate = allocation_rate(RATES, "a", None, OPERATIONAL)
    value = value_allocation(
        granted=1000 * 3600,  # 1,000 billed GPU-hours at EUR 1.20: EUR 1,200
        reserved=10 * 3600,
        used=4 * 3600,
        rate=rate,
        # a job holds 10 billed GPU-hours on a/fast: 10 x 1.5 = EUR 15
        reservations=[Held(10 * 3600, RATES["a/fast"].eur_per_billed_gpu_hour)],
        charges=[
            Held(2 * 3600, RATES["a/fast"].eur_per_billed_gpu_hour),  # 2 x 1.5 = EUR 3
            Held(1 * 3600, RATES["a/slow"].eur_per_billed_gpu_hour),  # 1 x 1.0 = EUR 1
            Held(1 * 3600, None),  # imported from the site's accounting: 1 x 1.2
        ],
    )
    assert value.eur_per_gpu_hour == pytest.approx(1.2)
    assert value.granted == pytest.approx(1200.0)
    assert value.reserved == pytest.approx(15.0)
    assert value.used == pytest.approx(5.2)
    # left: 1,000 - 10 - 4 = 986 billed GPU-hours at EUR 1.20
    assert value.left == pytest.approx(1183.2)


def test_what_no_charge_explains_is_valued_at_the_allocations_rate() -> None:
    value = value_allocation(granted=100 * 3600, reserved=0, used=3 * 3600, rate=2.0)
    assert value.used == pytest.approx(6.0)
    assert value.reserved == 0.0


NOT_VALUED = AllocationEuros(None, None, None, None, None)


def test_an_allocation_with_no_priced_partition_has_no_euros_at_all() -> None:
    # all five null together: not "EUR 0.00 used" beside "granted: null"
    assert value_allocation(granted=3600, reserved=0, used=0, rate=None) == NOT_VALUED
    assert value_allocation(3600, 0, 1800, None, charges=[Held(1800, 2.0)]) == NOT_VALUED
    assert value_allocation(3600, 1800, 0, None, reservations=[Held(1800, None)]) == NOT_VALUED
