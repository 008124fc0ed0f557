"""Node-level GPU capacity of one partition, shared by the emulated site and the mock.

Only partly busy nodes have a set of busy GPUs; the rest is a byte per node, so a
6,000-node partition with a few jobs costs 12 kB and a few sets, not 6,000 objects.
Placement follows Slurm's habits:

* a non-exclusive shape takes ``gpus_per_node`` GPUs on each of ``nodes`` distinct nodes,
  best fit (the node with the fewest free GPUs that still fits, lowest index on ties), so
  small jobs pack together and leave whole nodes for multi-node jobs;
* an exclusive shape takes ``nodes`` whole free nodes, lowest indices first.

A pool can be resized (a partition grows or loses nodes while jobs run, as when a site adds
a rack or takes nodes out for maintenance). Growth is immediate. A shrink removes idle nodes
first and then drains busy ones: like Slurm's DRAIN state, a draining node takes no new work
and leaves the partition when its last job ends, so nothing running is killed.

The twin places and frees whole-node jobs by the million (a 4,096-GPU job is 1,024 nodes):
whole free nodes and nodes held whole are a byte per node (``_idle``, ``_held_whole``), so
the lowest free ones are found run by run with C-speed scans and taken or freed a run at a
time (slice assignments), not node by node.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter

from aifactories.domain.jobs import Shape


@dataclass(frozen=True, slots=True)
class NodeGrant:
    """The GPUs a job holds on one node (``gpus`` are indices 0..gpus_per_node-1)."""

    node: int
    gpus: tuple[int, ...]


Grants = tuple[NodeGrant, ...]


def held_gpus(grants: Iterable[NodeGrant]) -> int:
    return sum(map(len, map(_gpus_of, grants)))  # in C: a job may hold 1,024 nodes


_gpus_of = attrgetter("gpus")


def gpus_needed(shape: Shape, gpus_per_node: int) -> int:
    """GPUs a shape holds on a partition: exclusive shapes hold every GPU of their nodes."""
    per_node = gpus_per_node if shape.exclusive else shape.gpus_per_node
    return shape.nodes * per_node


def never_fits(shape: Shape, nodes: int, gpus_per_node: int) -> str | None:
    """Why ``shape`` can never run on a partition of that size, or None if it can."""
    if shape.nodes < 1 or shape.gpus_per_node < 1:
        return f"a job needs at least one node and one GPU per node, not {shape}"
    if shape.nodes > nodes:
        return f"the job asks for {shape.nodes} nodes; the partition has {nodes}"
    if shape.gpus_per_node > gpus_per_node:
        return (
            f"the job asks for {shape.gpus_per_node} GPUs per node; "
            f"the partition's nodes have {gpus_per_node}"
        )
    return None


class NodePool:
    """Free and busy GPUs of one partition."""

    def __init__(self, nodes: int, gpus_per_node: int) -> None:
        if nodes < 1 or gpus_per_node < 1:
            raise ValueError(f"a partition needs nodes and GPUs, not {nodes}x{gpus_per_node}")
        # ``nodes`` counts the nodes that take work. Node indices run below ``_limit``; after
        # a shrink some of them are ``_absent`` (removed while idle) or ``_draining`` (busy,
        # leaving when free), so nodes == _limit - len(_absent) - len(_draining).
        self.nodes = nodes
        self.gpus_per_node = gpus_per_node
        self._limit = nodes
        self._absent: set[int] = set()
        self._draining: set[int] = set()
        # Busy GPUs per node; a node one job holds whole shares the frozen ``_full`` (copied
        # before any change), so a 2,048-node job makes no 2,048 sets. Nodes allocate gave
        # whole are not here but in ``_held_whole`` (below) until anything else touches them.
        self._busy: dict[int, set[int] | frozenset[int]] = {}
        self._full = frozenset(range(gpus_per_node))
        self._all = tuple(range(gpus_per_node))  # the GPUs of every whole-node grant
        self._held = 0  # GPUs in _busy, kept as a count: the twin asks at every change
        # Partly busy nodes bucketed by their free GPU count (0..gpus_per_node-1): best fit
        # looks at gpus_per_node buckets instead of scanning every busy node.
        self._by_free: list[set[int]] = [set() for _ in range(gpus_per_node)]
        # Lowest-index picks in a bucket stay O(log n) with lazy min-heaps (entries may be
        # stale or repeated; they are checked against the bucket when they reach the top).
        self._bucket_heaps: list[list[int]] = [[] for _ in range(gpus_per_node)]
        # ``_idle[n]`` is 1 for a whole free node that takes work (not busy, not removed),
        # 0 otherwise, for n below ``_limit``: ``find`` scans it in C for the lowest ones.
        self._idle = bytearray(b"\x01") * nodes
        # ``_held_whole[n]`` is 1 for a node :meth:`allocate` gave whole to one job, kept
        # out of ``_busy`` and the buckets so that a 1,024-node job is taken and freed with
        # a few slice assignments; :meth:`_unpack` moves such a node into ``_busy`` (as
        # ``_full``) before any other change to it. ``_whole_count`` counts the ones.
        self._held_whole = bytearray(nodes)
        self._whole_count = 0
        # The grant of all of node n's GPUs, for n below len(_whole): immutable, so made once
        # per node and shared by every job that holds the node whole (see _whole_grants).
        self._whole: list[NodeGrant] = []

    # -- queries ---------------------------------------------------------------------------

    def free_gpus(self) -> int:
        """Free GPUs on the nodes that take work (a draining node's free GPUs are not)."""
        draining = sum(len(self._busy[node]) for node in self._draining)
        return self.nodes * self.gpus_per_node - (self._held - draining)

    def busy_gpus(self) -> int:
        """GPUs held by jobs, on draining nodes too."""
        return self._held

    def draining_nodes(self) -> int:
        """Busy nodes that a shrink removed: they leave when their last job ends."""
        return len(self._draining)

    def whole_free_nodes(self) -> int:
        return self.nodes - (len(self._busy) + self._whole_count - len(self._draining))

    def histogram(self) -> tuple[int, ...]:
        """``[k]`` = nodes with exactly ``k`` free GPUs, for ``k`` in 0..gpus_per_node, over
        the nodes that take work (so the counts add up to ``nodes``; draining nodes are
        left out, since nothing may be placed on them)."""
        counts = [len(bucket) for bucket in self._by_free]
        counts[0] += self._whole_count
        counts.append(self.whole_free_nodes())
        return tuple(counts)

    # -- changes ---------------------------------------------------------------------------

    def allocate(self, shape: Shape) -> Grants | None:
        """Take the GPUs for ``shape`` now, or return None (and change nothing) if they are
        not free. Callers check :func:`never_fits` first."""
        if never_fits(shape, self.nodes, self.gpus_per_node) is not None:
            return None
        if shape.exclusive or shape.gpus_per_node == self.gpus_per_node:
            # Whole nodes either way: best fit of a full node's GPUs finds no partly free
            # node and takes the lowest whole free one, node after node.
            runs = self._lowest_idle_runs(shape.nodes)
            if runs is None:
                return None
            picked_whole: list[NodeGrant] = []
            for start, end in runs:
                self._take_whole(start, end)
                picked_whole.extend(self._whole_grants(start, end))
            return tuple(picked_whole)
        else:
            picked: list[NodeGrant] = []
            taken: set[int] = set()
            for _ in range(shape.nodes):
                node = self._best_fit(shape.gpus_per_node, exclude=taken)
                if node is None:
                    return None
                taken.add(node)
                busy = self._busy.get(node, set())
                free = [g for g in range(self.gpus_per_node) if g not in busy]
                picked.append(NodeGrant(node, tuple(free[: shape.gpus_per_node])))
            grants = tuple(picked)
        self.take(grants)
        return grants

    def _own(self, node: int) -> set[int]:
        """The node's busy set, made its own before a change (see ``_full``)."""
        busy = self._busy.get(node)
        if busy is None or isinstance(busy, frozenset):
            busy = self._busy[node] = set(busy or ())
        return busy

    def take(self, grants: Sequence[NodeGrant]) -> None:
        """Mark ``grants`` busy (also used to rebuild the pool from stored jobs)."""
        for grant in grants:
            if 0 <= grant.node < len(self._held_whole) and self._held_whole[grant.node]:
                self._unpack(grant.node)  # taken whole: the overlap below says so
            busy: set[int] | frozenset[int] = self._busy.get(grant.node, set())
            overlap = busy.intersection(grant.gpus)
            valid = (
                0 <= grant.node < self._limit
                and grant.node not in self._absent
                and grant.node not in self._draining
                and all(0 <= g < self.gpus_per_node for g in grant.gpus)
            )
            if overlap or not valid:
                raise ValueError(f"GPUs {grant.gpus} of node {grant.node} are not free")
            if busy:
                self._by_free[self.gpus_per_node - len(busy)].discard(grant.node)
            else:
                self._idle[grant.node] = 0
            before = len(busy)
            if grant.node not in self._busy:
                self._busy[grant.node] = busy
            mine = self._own(grant.node)
            mine.update(grant.gpus)
            self._held += len(mine) - before
            self._file(grant.node, mine)

    def _whole_grants(self, start: int, end: int) -> list[NodeGrant]:
        """The whole-node grants of nodes ``start`` to ``end - 1``, made on first use (a
        128-node job would otherwise make 128 grants, and a million jobs a hundred million)."""
        whole = self._whole
        if end > len(whole):
            gpus = self._all
            whole.extend(NodeGrant(node, gpus) for node in range(len(whole), end))
        return whole[start:end]

    def _take_whole(self, start: int, end: int) -> None:
        """Mark the whole free nodes ``start`` to ``end - 1`` busy: what :meth:`take` does
        for them, without its checks, since :meth:`_lowest_idle_runs` only hands out free
        nodes that take work (the twin places multi-node jobs by the hundred thousand)."""
        self._idle[start:end] = bytes(end - start)
        self._held_whole[start:end] = b"\x01" * (end - start)
        self._whole_count += end - start
        self._held += self.gpus_per_node * (end - start)

    def _unpack(self, node: int) -> None:
        """Move a node held whole into ``_busy`` and the full bucket, where every other
        change (a partial release, a drain, a take's checks) finds it."""
        self._held_whole[node] = 0
        self._whole_count -= 1
        self._busy[node] = self._full
        self._by_free[0].add(node)

    def _unpack_all(self) -> None:
        held = self._held_whole
        node = held.find(1)
        while node >= 0:
            self._unpack(node)
            node = held.find(1, node + 1)

    def release(self, grants: Sequence[NodeGrant]) -> None:
        """Free ``grants``; releasing GPUs that are already free is a no-op."""
        gpn = self.gpus_per_node
        if not self._draining and grants:
            if self._release_run(grants):
                return
            # Whole-node grants (the ones allocate made: they share ``_all``) of nodes still
            # held whole are freed together; the rest node by node below.
            whole, held = self._all, self._held_whole
            nodes = [grant.node for grant in grants if grant.gpus is whole]
            if nodes and max(nodes) < len(held) and all(map(held.__getitem__, nodes)):
                self._release_whole(nodes)
                if len(nodes) == len(grants):
                    return
                grants = [grant for grant in grants if grant.gpus is not whole]
        for grant in grants:
            busy = self._busy.get(grant.node)
            if busy is None:
                if not (grant.node < len(self._held_whole) and self._held_whole[grant.node]):
                    continue
                self._unpack(grant.node)
                busy = self._full
            before = len(busy)
            if before == gpn == len(grant.gpus) and grant.node not in self._draining:
                # A whole node a job held alone (most of a big job's nodes): free at once.
                self._by_free[0].discard(grant.node)
                del self._busy[grant.node]
                self._held -= gpn
                self._idle[grant.node] = 1
                continue
            if grant.node in self._draining:
                busy = self._own(grant.node)
                busy.difference_update(grant.gpus)
                self._held -= before - len(busy)
                if not busy:  # its last job ended: the node leaves the partition
                    del self._busy[grant.node]
                    self._draining.discard(grant.node)
                    self._absent.add(grant.node)
                    self._trim()
                continue
            self._by_free[self.gpus_per_node - len(busy)].discard(grant.node)
            busy = self._own(grant.node)
            busy.difference_update(grant.gpus)
            self._held -= before - len(busy)
            if busy:
                self._file(grant.node, busy)
            else:
                del self._busy[grant.node]
                self._idle[grant.node] = 1

    def _release_run(self, grants: Sequence[NodeGrant]) -> bool:
        """Free a job's grants at once if they are the whole-node grants of one run of nodes
        it holds whole (most jobs of whole nodes); False, changing nothing, otherwise."""
        low, high, count = grants[0].node, grants[-1].node, len(grants)
        if high - low + 1 != count or high >= len(self._whole) or low < 0:
            return False
        # Identity first: C-speed, and true only for the grants allocate handed out.
        if self._whole[low : high + 1] != list(grants):
            return False
        if self._held_whole.count(1, low, high + 1) != count:
            return False
        self._held_whole[low : high + 1] = bytes(count)
        self._idle[low : high + 1] = b"\x01" * count
        self._whole_count -= count
        self._held -= self.gpus_per_node * count
        return True

    def _release_whole(self, nodes: list[int]) -> None:
        """Free distinct nodes that jobs held whole, none of them draining (:meth:`release`)."""
        held, idle = self._held_whole, self._idle
        for node in nodes:
            held[node] = 0
            idle[node] = 1
        self._whole_count -= len(nodes)
        self._held -= self.gpus_per_node * len(nodes)

    def resize(self, nodes: int) -> None:
        """Make the partition ``nodes`` nodes from now on.

        Growth is immediate: draining nodes are kept first (they are still there), then
        removed nodes come back, lowest index first, then new nodes are added above. A shrink
        removes idle nodes first, highest index first; if busy nodes must go too, the fullest
        ones drain (fewest free GPUs, then highest index), since draining them strands the
        fewest free GPUs. :meth:`histogram` and :meth:`free_gpus` count ``nodes`` nodes at
        once; the drained ones go when :meth:`release` frees their last GPU.
        """
        if nodes < 0:
            raise ValueError(f"a partition cannot have {nodes} nodes")
        gpn = self.gpus_per_node
        self._unpack_all()  # a shrink looks at every busy node, in _busy
        for node in sorted(self._draining):
            if self.nodes >= nodes:
                break
            self._draining.discard(node)
            self._file(node, self._busy[node])
            self.nodes += 1
        for node in sorted(self._absent):
            if self.nodes >= nodes:
                break
            self._absent.discard(node)
            self._idle[node] = 1  # whole free again: a pick candidate
            self.nodes += 1
        if self.nodes < nodes:
            self._idle.extend(b"\x01" * (nodes - self.nodes))
            self._held_whole.extend(bytes(nodes - self.nodes))
            self._limit += nodes - self.nodes
            self.nodes = nodes
        excess = self.nodes - nodes
        node = self._limit - 1
        while excess and node >= 0:  # idle nodes first, highest index first
            if node not in self._busy and node not in self._absent:
                self._absent.add(node)
                self._idle[node] = 0
                excess -= 1
            node -= 1
        if excess:
            fullest = sorted(
                (n for n in self._busy if n not in self._draining),
                key=lambda n: (gpn - len(self._busy[n]), -n),
            )
            for node in fullest[:excess]:
                self._by_free[gpn - len(self._busy[node])].discard(node)
                self._draining.add(node)
        self.nodes = nodes
        self._trim()

    # -- internals -------------------------------------------------------------------------

    def _trim(self) -> None:
        """Removed nodes at the top of the index range shrink the range instead, so that the
        absent set stays small and a later growth hands out fresh nodes from there."""
        while self._limit and self._limit - 1 in self._absent:
            self._limit -= 1
            self._absent.discard(self._limit)
        del self._idle[self._limit :]
        del self._held_whole[self._limit :]

    def _file(self, node: int, busy: set[int] | frozenset[int]) -> None:
        free = self.gpus_per_node - len(busy)
        if free < self.gpus_per_node:
            self._by_free[free].add(node)
            if free:  # best fit never looks for a node with no free GPU: no heap for those
                heapq.heappush(self._bucket_heaps[free], node)

    def _best_fit(self, need: int, exclude: set[int]) -> int | None:
        for free in range(need, self.gpus_per_node):
            bucket = self._by_free[free]
            if exclude:
                candidates = bucket - exclude  # only multi-node shapes; few nodes
                if candidates:
                    return min(candidates)
                continue
            heap = self._bucket_heaps[free]
            while heap and heap[0] not in bucket:
                heapq.heappop(heap)
            if heap:
                return heap[0]
        return self._lowest_idle(exclude)

    def _lowest_idle(self, exclude: set[int]) -> int | None:
        """The lowest whole free node not in ``exclude``, or None."""
        idle = self._idle
        node = idle.find(1)
        while node >= 0 and node in exclude:
            node = idle.find(1, node + 1)
        return None if node < 0 else node

    def _lowest_idle_runs(self, count: int) -> list[tuple[int, int]] | None:
        """The ``count`` lowest whole free nodes as runs ``(start, end)`` of consecutive
        nodes, or None if there are fewer. Nothing changes until the caller takes them."""
        if self.whole_free_nodes() < count:
            return None
        idle = self._idle
        runs: list[tuple[int, int]] = []
        end = 0
        while count:
            start = idle.find(1, end)
            if start < 0:  # cannot happen while the count check above holds
                return None
            end = idle.find(0, start, start + count)
            if end < 0:  # free up to start + count (or to the last node)
                end = min(start + count, len(idle))
            runs.append((start, end))
            count -= end - start
        return runs
