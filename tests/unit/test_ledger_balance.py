from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aifactories.domain.errors import BudgetExceeded
from aifactories.ledger import Balance, charge, release, reserve


def test_reserve_refuses_with_the_numbers() -> None:
    balance = Balance(granted=3600 * 10, reserved=3600 * 4, used=3600 * 5)
    with pytest.raises(BudgetExceeded) as error:
        reserve(balance, 3600 * 2)
    assert "2.00 GPU-hours" in error.value.message and "1.00 GPU-hours left" in error.value.message
    assert (error.value.needed_gpu_seconds, error.value.left_gpu_seconds) == (7200, 3600)


def test_charge_is_capped_at_the_reservation() -> None:
    balance = reserve(Balance(granted=1000), 300)
    assert charge(balance, 300, 500) == Balance(granted=1000, reserved=0, used=300)
    assert release(balance, 300) == Balance(granted=1000)


def test_a_balance_never_goes_negative() -> None:
    with pytest.raises(ValueError):
        Balance(granted=10, reserved=6, used=5)


@given(st.lists(st.tuples(st.integers(0, 500), st.integers(0, 800)), max_size=30))
def test_reserve_then_charge_keeps_the_invariant(moves: list[tuple[int, int]]) -> None:
    balance = Balance(granted=5000)
    held: list[int] = []
    for amount, actual in moves:
        try:
            balance = reserve(balance, amount)
            held.append(amount)
        except BudgetExceeded:
            assert amount > balance.left
        if held and actual % 2:
            balance = charge(balance, held.pop(0), actual)
        assert balance.reserved + balance.used + balance.left == balance.granted
        assert balance.left >= 0 and balance.reserved == sum(held)
