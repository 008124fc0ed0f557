"""The cycle's working copy of capacity and budgets, and the per-requirement option cache.

The snapshot is immutable; a cycle copies what placements use up (node histograms and
allocation remainders) so that two jobs of one cycle can never over-fill a partition or
overdraw an allocation. Everything here is private to :mod:`aifactories.scheduling`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from aifactories.domain.errors import InvalidInput
from aifactories.domain.fit import shape_fitting
from aifactories.domain.ids import AllocationId, JobId, PartitionId, ProjectId, SiteId
from aifactories.domain.jobs import JobSpec, PendingJob, Shape
from aifactories.domain.projects import Allocation, AllocationStatus
from aifactories.domain.sites import Partition
from aifactories.scheduling.snapshot import PartitionState

# What makes two jobs interchangeable for capacity: everything that decides where they fit
# (JobSpec.fit_key: hardware, residency, gang size, partitions asked for, tasks, cores,
# memory), with the time limit added where a partition has a MaxTime.
SpecKey = tuple[object, ...]


class Slot:
    """One available partition's free capacity during a cycle (mutable, cycle-local)."""

    __slots__ = (
        "bw",
        "country",
        "dips",
        "free",
        "gpn",
        "hist",
        "holds",
        "id",
        "max_block",
        "order",
        "partition",
        "placed",
        "site_id",
        "state",
        "total",
    )

    def __init__(self, state: PartitionState, order: int) -> None:
        partition = state.partition
        hist = list(state.free_nodes_by_free_gpus)
        if len(hist) != partition.gpus_per_node + 1 or min(hist, default=0) < 0:
            raise InvalidInput(
                "snapshot",
                f"partition {partition.id}: free_nodes_by_free_gpus must have "
                f"{partition.gpus_per_node + 1} non-negative counts (0..gpus_per_node), "
                f"got {state.free_nodes_by_free_gpus}",
            )
        self.state = state
        self.order = order
        self.partition = partition
        self.site_id = partition.site_id
        self.id: PartitionId = partition.id
        self.total = partition.total_gpus
        self.country = state.country.upper()
        self.bw = partition.billing_weight
        self.gpn = partition.gpus_per_node
        self.hist = hist
        # One plain loop for both: a cycle builds a slot per partition, the twin many cycles.
        free = top = 0
        for k in range(1, len(hist)):
            count = hist[k]
            if count:
                free += k * count
                top = k
        self.free = free
        self.max_block = top
        # (expected end, GPUs) of this cycle's placements here, for expected-start estimates.
        self.placed: list[tuple[float, int]] = []
        # Reservations on this partition, and the free-GPU profile at their starts (built by
        # :mod:`aifactories.scheduling.reservations`, rebuilt when anything here changed).
        self.holds: list[Hold] = []
        self.dips: object = None

    def fits(self, option: Option) -> bool:
        if self.free < option.gpus:
            return False
        if option.exclusive:
            return self.hist[self.gpn] >= option.nodes
        return self.max_block >= option.per_node

    def take(self, shape: Shape, ends_at: float) -> None:
        """Use capacity for ``shape``; the caller has checked that it fits."""
        hist = self.hist
        gpus = shape.nodes * shape.gpus_per_node
        if shape.exclusive:
            hist[self.gpn] -= shape.nodes
            hist[0] += shape.nodes
        else:
            k = gpus
            while not hist[k]:  # best fit: the node with the fewest free GPUs that fits
                k += 1
            hist[k] -= 1
            hist[k - gpus] += 1
        self.free -= gpus
        top = self.max_block
        while top and not hist[top]:
            top -= 1
        self.max_block = top
        self.placed.append((ends_at, gpus))


class Option(NamedTuple):
    """A partition a job's hardware, residency and gang size allow, with its layout there."""

    slot: Slot
    shape: Shape
    per_node: int
    nodes: int
    exclusive: bool
    gpus: int  # GPUs held (and charged): whole nodes for exclusive shapes


class Entry:
    """Options for one :data:`SpecKey`, shared by every job with that key in the cycle.

    ``live`` keeps the options that still have room for the key's shape. A cycle only ever
    uses capacity up, so an option found full is dropped for good and later jobs with the
    same key do not test it again; once ``live`` is empty they are refused at once.
    """

    __slots__ = ("live", "never", "options", "starts", "texts", "unknown", "views")

    def __init__(self, options: tuple[Option, ...], never: str | None) -> None:
        self.options = options
        self.never = never  # why no partition can take this job at all, if none can
        self.live = list(options)
        # Filled after the decisions, for wait reasons: built once per key, not once per job.
        self.texts: dict[int, str] = {}  # partition order -> "; expected to start around ..."
        self.starts: list[tuple[float, int, Option]] | None = None
        self.unknown: tuple[Option, ...] = ()  # options whose start cannot be estimated
        self.views: dict[frozenset[SiteId] | None, View] = {}


class View:
    """An entry's options as a project sees them: at the sites its allocations cover.

    Keyed by the covered sites (None: every site), so the many projects alike share one.
    """

    __slots__ = ("capacity", "options", "room")

    def __init__(self, options: tuple[Option, ...]) -> None:
        self.options = options
        self.room = tuple(o for o in options if o.slot.fits(o))  # built after all decisions
        # The capacity part of the reason (or, with no options, the sites that would do).
        self.capacity: str | None = None


class Note(Enum):
    """What the decision loop saw of a job it could not place, for writing the reason."""

    NO_CANDIDATE = "no candidate"
    HELD = "held for the reserved head job"
    DECLINED = "declined by the policy"
    BEHIND = "behind a blocked job, with no backfill"
    NOT_TESTED = "beyond the jobs tested this cycle"


@dataclass(frozen=True, slots=True)
class Hold:
    """A reservation: ``gpus`` GPUs of ``slot`` are kept for ``job_id`` from ``start`` to
    ``end`` (its expected start plus its time limit)."""

    slot: Slot
    start: float
    end: float
    gpus: int
    job_id: JobId


# A job the decision loop could not place: what it saw, and the reservation that kept it
# out (HELD) if one did.
Failure = tuple[PendingJob, "Entry", Note, Hold | None]


# Shapes by (requirement key, partition), across cycles: a cycle meets the same few keys on
# the same partitions again and again (the twin runs millions of cycles), and fitting is
# pure. Keyed by the partition object's id, which the entry keeps alive, so an id is never
# reused while its entry stands; a resized partition is a new object, hence a new entry.
_SHAPES: dict[tuple[SpecKey, int], tuple[Partition, Shape | None]] = {}
_SHAPES_KEPT = 100_000


def options_for(spec: JobSpec, slots: Iterable[Slot], key: SpecKey) -> tuple[Option, ...]:
    """The available partitions this job could ever use, in catalogue order; ``key`` is its
    requirement key (see :data:`SpecKey`)."""
    if spec.gpus < 1:
        return ()
    countries = frozenset(c.upper() for c in spec.countries)
    options: list[Option] = []
    shapes = _SHAPES
    for slot in slots:
        if countries and slot.country not in countries:
            continue
        partition = slot.partition
        known = shapes.get((key, id(partition)))
        if known is not None and known[0] is partition:
            shape = known[1]
        else:
            shape = shape_fitting(spec, partition)
            if len(shapes) >= _SHAPES_KEPT:
                shapes.clear()
            shapes[(key, id(partition))] = (partition, shape)
        if shape is None:
            continue
        options.append(
            Option(
                slot=slot,
                shape=shape,
                per_node=shape.gpus_per_node,
                nodes=shape.nodes,
                exclusive=shape.exclusive,
                gpus=shape.allocated_gpus,
            )
        )
    return tuple(options)


class Budgets:
    """Allocation remainders for one cycle, and which allocation pays for what.

    At a site, a project's site-specific allocations are tried before its pool ones
    (``site_id`` None; a pool with ``pool_sites`` only at those), each group by lowest id:
    the first with enough left pays.
    """

    def __init__(
        self,
        allocations: Iterable[Allocation],
        now: float,
        sites: Iterable[SiteId],
        grouped: Mapping[ProjectId, Sequence[Allocation]] | None = None,
    ) -> None:
        # Filled per project as the cycle meets its jobs (orders), so a federation of many
        # projects with few of them waiting pays only for those; ``left`` holds every
        # allocation the orders handed out.
        self.left: dict[AllocationId, int] = {}
        self._sites = tuple(dict.fromkeys(sites))
        self._allocations = allocations
        self._now = now
        self._grouped: Mapping[ProjectId, Sequence[Allocation]] | None = grouped
        self.known_orders: dict[ProjectId, dict[SiteId, tuple[AllocationId, ...]]] = {}
        self._covers: dict[ProjectId, frozenset[SiteId] | None] = {}

    def orders(self, project: ProjectId) -> dict[SiteId, tuple[AllocationId, ...]]:
        """For each available site, the allocations the project may use there, preferred first.

        One dict per project, so the decision loop tests budgets with a lookup and a short
        inline loop instead of a method call per partition.
        """
        orders = self.known_orders.get(project)
        if orders is None:
            mine = sorted(self._usable(project), key=lambda a: a.id)
            pool = tuple(a.id for a in mine if a.site_id is None)
            # Most projects only hold pool allocations: every site then shares one tuple.
            orders = self.known_orders[project] = dict.fromkeys(self._sites, pool)
            if any(a.pool_sites is not None for a in mine):
                for site in orders:
                    orders[site] = tuple(a.id for a in mine if a.site_id is None and a.covers(site))
            for site in {a.site_id for a in mine if a.site_id is not None and a.site_id in orders}:
                orders[site] = tuple(a.id for a in mine if a.site_id == site) + orders[site]
        return orders

    def _usable(self, project: ProjectId) -> list[Allocation]:
        """The project's allocations open now (usable_at without the site test, which the
        orders make per site), their remainders entered in ``left``."""
        if self._grouped is None:
            grouped: dict[ProjectId, list[Allocation]] = {}
            for allocation in self._allocations:
                grouped.setdefault(allocation.project_id, []).append(allocation)
            self._grouped = grouped
        now = self._now
        mine = [
            a
            for a in self._grouped.get(project, ())
            if a.status is AllocationStatus.OPEN and a.starts_at <= now < a.ends_at
        ]
        for allocation in mine:
            self.left[allocation.id] = allocation.left_gpu_seconds
        return mine

    def covers(self, project: ProjectId) -> frozenset[SiteId] | None:
        """The sites where the project holds a usable allocation; None for every site."""
        if project in self._covers:
            return self._covers[project]
        orders = self.orders(project)
        sites = frozenset(site for site, usable in orders.items() if usable)
        cover = None if len(sites) == len(orders) else sites
        self._covers[project] = cover
        return cover

    def find(self, project: ProjectId, site: SiteId, need: int) -> AllocationId | None:
        """The preferred allocation with at least ``need`` GPU-seconds left, if any."""
        left = self.left
        for allocation_id in self.orders(project).get(site, ()):
            if left[allocation_id] >= need:
                return allocation_id
        return None
