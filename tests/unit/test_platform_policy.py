"""A bad broker policy is refused when the platform is built, with the known policies named."""

from __future__ import annotations

from pathlib import Path

import pytest

from aifactories.domain.errors import InvalidInput
from aifactories.services.platform import Platform
from aifactories.settings import Settings


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("lottery", "known: first_fit, earliest_start, fair_share, fifo"),
        ("tiresias_las", "the twin runs it: aif simulate --policy tiresias_las"),
    ],
)
def test_the_platform_refuses_a_policy_the_broker_cannot_run(
    tmp_path: Path, policy: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        Platform(Settings(data_dir=tmp_path, policy=policy))
    assert not (tmp_path / "aifactories.db").exists()  # nothing written before the check
