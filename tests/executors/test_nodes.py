"""The node-capacity helper shared by the emulated site and the mock."""

from __future__ import annotations

import random
import time

import pytest

from aifactories.domain.jobs import Shape
from aifactories.executors.nodes import (
    NodeGrant,
    NodePool,
    gpus_needed,
    held_gpus,
    never_fits,
)


def test_best_fit_packs_single_node_jobs() -> None:
    pool = NodePool(3, 4)
    assert pool.allocate(Shape(1, 3, False)) == (NodeGrant(0, (0, 1, 2)),)
    assert pool.allocate(Shape(1, 2, False)) == (NodeGrant(1, (0, 1)),)
    # 1 GPU: node 0 (1 free) fits tighter than node 1 (2 free) or node 2 (4 free).
    assert pool.allocate(Shape(1, 1, False)) == (NodeGrant(0, (3,)),)
    assert pool.histogram() == (1, 0, 1, 0, 1)
    assert pool.free_gpus() == 6


def test_multi_node_takes_whole_free_nodes_only() -> None:
    pool = NodePool(3, 4)
    pool.allocate(Shape(1, 1, False))
    assert pool.allocate(Shape(3, 4, True)) is None
    grants = pool.allocate(Shape(2, 4, True))
    assert grants == (NodeGrant(1, (0, 1, 2, 3)), NodeGrant(2, (0, 1, 2, 3)))
    assert pool.histogram() == (2, 0, 0, 1, 0)
    pool.release(grants)
    assert pool.histogram() == (0, 0, 0, 1, 2)
    # exclusive shapes hold every GPU of their nodes, even when asking fewer per node
    assert gpus_needed(Shape(2, 2, True), 4) == 8
    assert pool.allocate(Shape(1, 2, True)) == (NodeGrant(1, (0, 1, 2, 3)),)


def test_non_exclusive_multi_node_uses_distinct_nodes() -> None:
    pool = NodePool(2, 4)
    grants = pool.allocate(Shape(2, 3, False))
    assert grants is not None and {g.node for g in grants} == {0, 1}
    assert pool.allocate(Shape(2, 1, False)) == (NodeGrant(0, (3,)), NodeGrant(1, (3,)))
    assert pool.allocate(Shape(1, 1, False)) is None


def test_failed_allocation_changes_nothing() -> None:
    pool = NodePool(2, 4)
    pool.allocate(Shape(1, 2, False))
    before = pool.histogram()
    assert pool.allocate(Shape(2, 3, False)) is None
    assert pool.allocate(Shape(2, 4, True)) is None
    assert pool.histogram() == before


def test_never_fits_explains() -> None:
    assert never_fits(Shape(1, 4, False), 2, 4) is None
    assert "3 nodes" in (never_fits(Shape(3, 4, True), 2, 4) or "")
    assert "GPUs per node" in (never_fits(Shape(1, 5, False), 2, 4) or "")
    assert never_fits(Shape(0, 1, False), 2, 4) is not None


def _reference(pool_nodes: int, gpn: int, busy: dict[int, int], shape: Shape) -> list[int] | None:
    """Plain scan: best-fit lowest-index nodes, or the lowest whole free nodes."""
    free = {n: gpn - busy.get(n, 0) for n in range(pool_nodes)}
    if shape.exclusive:
        whole = [n for n in range(pool_nodes) if free[n] == gpn][: shape.nodes]
        return whole if len(whole) == shape.nodes else None
    chosen: list[int] = []
    for _ in range(shape.nodes):
        fits = [n for n in range(pool_nodes) if free[n] >= shape.gpus_per_node and n not in chosen]
        if not fits:
            return None
        chosen.append(min(fits, key=lambda n: (free[n], n)))
    return chosen


def test_matches_a_plain_reference_on_random_work() -> None:
    rng = random.Random(7)
    pool = NodePool(12, 4)
    held: list[tuple[NodeGrant, ...]] = []
    for _ in range(2000):
        if held and rng.random() < 0.45:
            pool.release(held.pop(rng.randrange(len(held))))
            continue
        nodes = rng.choice([1, 1, 1, 2, 3])
        shape = Shape(nodes, rng.randint(1, 4), exclusive=nodes > 1 and rng.random() < 0.7)
        busy: dict[int, int] = {}
        for grants in held:
            for grant in grants:
                busy[grant.node] = busy.get(grant.node, 0) + len(grant.gpus)
        expected = _reference(12, 4, busy, shape)
        got = pool.allocate(shape)
        assert (None if got is None else [g.node for g in got]) == expected
        if got is not None:
            held.append(got)
        histogram = [0] * 5
        for node in range(12):
            histogram[
                4
                - busy.get(node, 0)
                - (0 if got is None else sum(len(g.gpus) for g in got if g.node == node))
            ] += 1
        assert pool.histogram() == tuple(histogram)


def test_fast_on_a_6000_node_partition() -> None:
    rng = random.Random(3)
    pool = NodePool(6000, 4)
    began = time.perf_counter()
    grants = [pool.allocate(Shape(1, rng.randint(1, 3), False)) for _ in range(12_000)]
    for grant in grants[::2]:
        if grant is not None:
            pool.release(grant)
    for _ in range(300):
        pool.allocate(Shape(4, 4, True))
    assert time.perf_counter() - began < 2.0
    assert sum(k * n for k, n in enumerate(pool.histogram())) == pool.free_gpus()


def test_resize_grows_at_once_and_shrinks_idle_nodes_first() -> None:
    pool = NodePool(2, 4)
    assert pool.allocate(Shape(2, 4, True)) is not None
    pool.resize(4)
    assert pool.histogram() == (2, 0, 0, 0, 2)
    assert pool.allocate(Shape(2, 4, True)) == (
        NodeGrant(2, (0, 1, 2, 3)),
        NodeGrant(3, (0, 1, 2, 3)),
    )
    pool.release(pool.allocate(Shape(1, 1, False)) or ())  # nothing free: a no-op
    pool.resize(6)
    pool.resize(4)  # the two idle nodes go; the busy ones all stay
    assert (pool.nodes, pool.draining_nodes(), pool.histogram()) == (4, 0, (4, 0, 0, 0, 0))
    assert pool.allocate(Shape(1, 1, False)) is None


def test_shrink_drains_busy_nodes_and_they_leave_when_free() -> None:
    pool = NodePool(3, 4)
    full = pool.allocate(Shape(1, 4, False))  # node 0
    part = pool.allocate(Shape(1, 1, False))  # node 1 (node 2 stays idle)
    assert full is not None and part is not None
    pool.resize(1)
    # node 2 (idle) goes; of the busy ones the fuller, node 0, drains; node 1 stays.
    assert (pool.nodes, pool.draining_nodes()) == (1, 1)
    assert pool.histogram() == (0, 0, 0, 1, 0)
    assert (pool.free_gpus(), pool.busy_gpus()) == (3, 5)
    assert never_fits(Shape(2, 1, False), pool.nodes, 4) is not None
    assert pool.allocate(Shape(1, 4, False)) is None  # node 0's GPUs are not offered
    pool.release(full)  # node 0 leaves
    assert (pool.nodes, pool.draining_nodes(), pool.busy_gpus()) == (1, 0, 1)
    assert pool.allocate(Shape(1, 4, False)) is None
    pool.resize(0)
    assert (pool.nodes, pool.draining_nodes(), pool.histogram()) == (0, 1, (0, 0, 0, 0, 0))
    pool.release(part)
    assert (pool.draining_nodes(), pool.busy_gpus(), pool.free_gpus()) == (0, 0, 0)
    pool.resize(2)  # removed nodes come back, lowest index first
    assert pool.allocate(Shape(2, 4, True)) == (
        NodeGrant(0, (0, 1, 2, 3)),
        NodeGrant(1, (0, 1, 2, 3)),
    )


def test_growth_keeps_draining_nodes_first() -> None:
    pool = NodePool(2, 4)
    grants = pool.allocate(Shape(1, 2, False))
    assert grants is not None
    pool.resize(0)
    assert pool.draining_nodes() == 1
    pool.resize(1)  # the draining node stays and takes work again
    assert (pool.draining_nodes(), pool.histogram()) == (0, (0, 0, 1, 0, 0))
    assert pool.allocate(Shape(1, 2, False)) == (NodeGrant(0, (2, 3)),)
    with pytest.raises(ValueError):
        pool.resize(-1)


class _Model:
    """A plain per-node model of a resizable pool, for the random test below."""

    def __init__(self, nodes: int, gpn: int) -> None:
        self.gpn = gpn
        self.state = dict.fromkeys(range(nodes), "up")  # up, draining or gone
        self.busy = dict.fromkeys(range(nodes), 0)

    def up(self) -> list[int]:
        return [n for n in sorted(self.state) if self.state[n] == "up"]

    def choose(self, shape: Shape) -> list[int] | None:
        free = {n: self.gpn - self.busy[n] for n in self.up()}
        if shape.exclusive:
            whole = [n for n in free if free[n] == self.gpn][: shape.nodes]
            return whole if len(whole) == shape.nodes else None
        chosen: list[int] = []
        for _ in range(shape.nodes):
            fits = [n for n in free if free[n] >= shape.gpus_per_node and n not in chosen]
            if not fits:
                return None
            chosen.append(min(fits, key=lambda n: (free[n], n)))
        return chosen

    def release(self, node: int, gpus: int) -> None:
        self.busy[node] -= gpus
        if self.busy[node] == 0 and self.state[node] == "draining":
            self.state[node] = "gone"

    def resize(self, nodes: int) -> None:
        up = len(self.up())
        for kind in ("draining", "gone"):
            for n in sorted(self.state):
                if up < nodes and self.state[n] == kind:
                    self.state[n] = "up"
                    up += 1
        while up < nodes:
            index = len(self.state)
            self.state[index], self.busy[index] = "up", 0
            up += 1
        idle = [n for n in reversed(self.up()) if self.busy[n] == 0][: up - nodes]
        for n in idle:
            self.state[n] = "gone"
        busy = sorted(
            (n for n in self.up() if self.busy[n]), key=lambda n: (self.gpn - self.busy[n], -n)
        )
        for n in busy[: up - nodes - len(idle)]:
            self.state[n] = "draining"

    def histogram(self) -> tuple[int, ...]:
        counts = [0] * (self.gpn + 1)
        for n in self.up():
            counts[self.gpn - self.busy[n]] += 1
        return tuple(counts)


def test_resizes_match_a_plain_model_on_random_work() -> None:
    rng = random.Random(11)
    pool, model = NodePool(8, 4), _Model(8, 4)
    held: list[tuple[NodeGrant, ...]] = []
    for step in range(3000):
        roll = rng.random()
        if roll < 0.05:
            size = rng.randint(0, 12)
            pool.resize(size)
            model.resize(size)
        elif held and roll < 0.5:
            grants = held.pop(rng.randrange(len(held)))
            pool.release(grants)
            for grant in grants:
                model.release(grant.node, len(grant.gpus))
        else:
            nodes = rng.choice([1, 1, 1, 2, 3])
            shape = Shape(nodes, rng.randint(1, 4), exclusive=nodes > 1 and rng.random() < 0.7)
            expected = model.choose(shape)
            got = pool.allocate(shape)
            assert (None if got is None else [g.node for g in got]) == expected, step
            if got is not None:
                held.append(got)
                for grant in got:
                    model.busy[grant.node] += len(grant.gpus)
        draining = sum(1 for s in model.state.values() if s == "draining")
        assert pool.histogram() == model.histogram(), step
        assert (pool.nodes, pool.draining_nodes()) == (len(model.up()), draining)
        assert pool.busy_gpus() == sum(model.busy.values())
        assert sum(k * n for k, n in enumerate(pool.histogram())) == pool.free_gpus()


def test_whole_nodes_drain_and_come_back_like_any_other() -> None:
    # Whole-node jobs share one frozen busy set per pool: draining and releasing them must
    # still count every GPU, and a node taken whole refuses any further grant.
    pool = NodePool(4, 4)
    whole = pool.allocate(Shape(2, 4, True))
    part = pool.allocate(Shape(1, 2, False))
    assert whole is not None and part is not None
    pool.resize(1)  # the three busy nodes: one stays, two drain
    assert (pool.draining_nodes(), pool.busy_gpus()) == (2, 10)
    pool.release(whole)
    assert (pool.draining_nodes(), pool.busy_gpus(), pool.nodes) == (0, 2, 1)
    pool.release(part)
    assert pool.histogram() == (0, 0, 0, 0, 1) and pool.busy_gpus() == 0
    again = pool.allocate(Shape(1, 4, False))
    assert again is not None
    with pytest.raises(ValueError, match="not free"):
        pool.take(again)


def test_a_pool_rebuilt_from_its_grants_goes_on_the_same() -> None:
    # The emulated site rebuilds its pools with take() from the stored grants (equal to the
    # ones allocate gave, not the same objects): whole-node jobs taken and freed a run at a
    # time must leave the two pools in the same state, job after job.
    rng = random.Random(5)
    pool = NodePool(40, 4)
    held: list[tuple[NodeGrant, ...]] = []
    for _ in range(300):
        if held and rng.random() < 0.4:
            pool.release(held.pop(rng.randrange(len(held))))
            continue
        nodes = rng.choice([1, 2, 3, 5, 8])
        got = pool.allocate(Shape(nodes, rng.choice([1, 2, 4]), exclusive=rng.random() < 0.5))
        if got is not None:
            held.append(got)
    rebuilt = NodePool(40, 4)
    copies = [tuple(NodeGrant(g.node, tuple(g.gpus)) for g in grants) for grants in held]
    for grants in copies:
        rebuilt.take(grants)
    assert rebuilt.histogram() == pool.histogram()
    for step in range(300):
        if held and rng.random() < 0.4:
            index = rng.randrange(len(held))
            pool.release(held.pop(index))
            rebuilt.release(copies.pop(index))
        else:
            shape = Shape(rng.choice([1, 2, 4, 6]), rng.choice([1, 3, 4]), rng.random() < 0.5)
            got, again = pool.allocate(shape), rebuilt.allocate(shape)
            assert got == again, step
            if got is not None and again is not None:
                held.append(got)
                copies.append(again)
        assert rebuilt.histogram() == pool.histogram(), step
        assert (rebuilt.busy_gpus(), rebuilt.free_gpus()) == (pool.busy_gpus(), pool.free_gpus())


def test_whole_node_jobs_in_several_runs_free_every_node_once() -> None:
    pool = NodePool(10, 4)
    singles = [pool.allocate(Shape(1, 4, True)) for _ in range(10)]
    assert pool.histogram() == (10, 0, 0, 0, 0)
    for grants in singles[1::3]:  # nodes 1, 4, 7 free: runs of one node
        assert grants is not None
        pool.release(grants)
    spread = pool.allocate(Shape(3, 4, True))
    assert spread is not None and [g.node for g in spread] == [1, 4, 7]
    assert held_gpus(spread) == 12 and pool.histogram() == (10, 0, 0, 0, 0)
    pool.release(spread)
    pool.release(spread)  # already free: nothing changes
    assert pool.histogram() == (7, 0, 0, 0, 3) and pool.busy_gpus() == 28
    again = pool.allocate(Shape(2, 4, True))
    assert again is not None and [g.node for g in again] == [1, 4]
