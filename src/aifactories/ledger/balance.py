"""Balance moves. Invariant: ``reserved + used + left == granted`` and every term ``>= 0``."""

from __future__ import annotations

from dataclasses import dataclass

from aifactories.domain.errors import BudgetExceeded
from aifactories.domain.units import gpu_hours


@dataclass(frozen=True, slots=True)
class Balance:
    granted: int
    reserved: int = 0
    used: int = 0

    def __post_init__(self) -> None:
        if min(self.granted, self.reserved, self.used) < 0 or self.left < 0:
            raise ValueError(f"an allocation balance cannot go negative: {self}")

    @property
    def left(self) -> int:
        return self.granted - self.reserved - self.used


def reserve(balance: Balance, gpu_seconds: int, what: str = "this job") -> Balance:
    """Hold ``gpu_seconds`` for a job; refuse with the numbers if it does not fit."""
    if gpu_seconds < 0:
        raise ValueError("a reservation is never negative")
    if gpu_seconds > balance.left:
        raise BudgetExceeded(
            f"{what} needs {gpu_hours(gpu_seconds):,.2f} GPU-hours but the allocation has "
            f"{gpu_hours(balance.left):,.2f} GPU-hours left "
            f"(granted {gpu_hours(balance.granted):,.2f}, reserved "
            f"{gpu_hours(balance.reserved):,.2f}, used {gpu_hours(balance.used):,.2f})",
            needed_gpu_seconds=gpu_seconds,
            left_gpu_seconds=balance.left,
        )
    return Balance(balance.granted, balance.reserved + gpu_seconds, balance.used)


def release(balance: Balance, reserved: int) -> Balance:
    """Give back a reservation unused (a job cancelled or requeued before it ran)."""
    return charge(balance, reserved, 0)


def settle_amount(reserved: int, actual: int) -> int:
    """What is charged for a job that reserved ``reserved``: its actual use, capped at the
    reservation. A site may overrun a time limit by a grace period; the cap keeps the promise
    made at admission that a job never costs more than it reserved."""
    return max(0, min(actual, reserved))


def charge(balance: Balance, reserved: int, actual: int) -> Balance:
    """Close a job: release its reservation and charge its use (capped, see settle_amount)."""
    if reserved > balance.reserved:
        raise ValueError(f"cannot release {reserved} GPU-seconds, only {balance.reserved} held")
    charged = settle_amount(reserved, actual)
    return Balance(balance.granted, balance.reserved - reserved, balance.used + charged)
