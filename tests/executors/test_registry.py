"""make_executor: the seam where site back-ends are chosen by kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from aifactories.domain.clock import ManualClock
from aifactories.domain.errors import InvalidInput
from aifactories.executors.base import Executor
from aifactories.executors.emulated import EmulatedExecutor
from aifactories.executors.mock import MockExecutor
from aifactories.executors.registry import known_kinds, make_executor, register_executor

from .conftest import SITE


def test_known_kinds(tmp_path: Path) -> None:
    assert {"emulated", "mock"} <= set(known_kinds())
    emulated = make_executor("emulated", SITE, state_dir=tmp_path, time_factor=10.0)
    assert isinstance(emulated, EmulatedExecutor) and emulated.time_factor == 10.0
    mock = make_executor("mock", SITE, clock=ManualClock())
    assert isinstance(mock, MockExecutor) and isinstance(mock, Executor)


def test_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInput) as caught:
        make_executor("slurm-rest", SITE)
    assert caught.value.field == "executor"
    assert "emulated, mock" in caught.value.message


def test_bad_options_are_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        make_executor("mock", SITE, colour="red")
    with pytest.raises(InvalidInput):
        make_executor("emulated", SITE)  # no state_dir


def test_register_a_new_kind() -> None:
    def factory(site: object, **options: object) -> Executor:
        return MockExecutor(SITE)

    register_executor("test-kind", factory)
    assert isinstance(make_executor("test-kind", SITE), MockExecutor)
