"""Real local Slurm clusters for the Slurm tests, started by the project's own harness.

- ``slurm_sites``: three sites (2 nodes x 4 fake A100 each, no slurmdbd: finished jobs come
  from MinJobAge and ``sacct -c``), shared by the whole session.
- ``slurm_dbd_sites``: two sites with slurmdbd + MariaDB and enforced associations/limits.
- ``slurm_factory``: fresh sites of your own, for tests that kill daemons.

Everything is stopped by PID at the end. Without root (daemons run as SlurmUser=root and fake
GPUs need mknod) the tests are skipped, except in CI, where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from aifactories.localslurm import LocalSlurm, SiteLayout, SiteRequest, free_port_base

# Away from the 17000 of 'scripts/slurm-sites up', so a developer's demo sites can keep
# running, and apart per test process (two test runs at once must not share ports).
_FIRST_SLOT = os.getpid() % 40


def _require_root() -> None:
    if os.geteuid() != 0:
        message = "the local Slurm sites need root (SlurmUser=root, mknod for fake GPUs)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _start(requests: Sequence[SiteRequest], dbd: bool) -> tuple[LocalSlurm, list[SiteLayout], Path]:
    _require_root()
    base = Path(tempfile.mkdtemp(prefix="aifs-", dir="/tmp"))  # munge's socket path is short
    cluster = LocalSlurm(base, port0=free_port_base(_FIRST_SLOT), dbd=dbd)
    try:
        return cluster, cluster.start(requests), base
    except BaseException:
        shutil.rmtree(base, ignore_errors=True)
        raise


def _stop(cluster: LocalSlurm, base: Path) -> None:
    cluster.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[LocalSlurm]:
    cluster, _layouts, base = _start([SiteRequest(nodes=2, gpus_per_node=4)] * 3, dbd=False)
    try:
        yield cluster
    finally:
        _stop(cluster, base)


@pytest.fixture(scope="session")
def slurm_sites(slurm_cluster: LocalSlurm) -> list[SiteLayout]:
    return list(slurm_cluster.sites.values())


@pytest.fixture(scope="session")
def slurm_dbd_cluster() -> Iterator[LocalSlurm]:
    cluster, _layouts, base = _start([SiteRequest(nodes=2, gpus_per_node=4)] * 2, dbd=True)
    try:
        yield cluster
    finally:
        _stop(cluster, base)


@pytest.fixture(scope="session")
def slurm_dbd_sites(slurm_dbd_cluster: LocalSlurm) -> list[SiteLayout]:
    return list(slurm_dbd_cluster.sites.values())


SlurmFactory = Callable[..., tuple[LocalSlurm, list[SiteLayout]]]


@pytest.fixture
def slurm_factory() -> Iterator[SlurmFactory]:
    """``slurm_factory(n_sites, nodes=1, gpus=4, dbd=False) -> (cluster, layouts)``."""
    started: list[tuple[LocalSlurm, Path]] = []

    def make(
        n_sites: int = 1, nodes: int = 1, gpus: int = 4, dbd: bool = False
    ) -> tuple[LocalSlurm, list[SiteLayout]]:
        cluster, layouts, base = _start(
            [SiteRequest(nodes=nodes, gpus_per_node=gpus)] * n_sites, dbd
        )
        started.append((cluster, base))
        return cluster, layouts

    try:
        yield make
    finally:
        for cluster, base in started:
            _stop(cluster, base)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.slurm)
