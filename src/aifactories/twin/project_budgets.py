"""The twin's projects' budgets: one pool allocation per project, moved by the ledger's own
arithmetic (reserve at start, charge at end), and handed to each cycle's snapshot."""

from __future__ import annotations

import math
from collections.abc import Iterable

from aifactories.domain.ids import AllocationId, ProjectId
from aifactories.domain.projects import Allocation, AllocationStatus
from aifactories.ledger import Balance, charge, reserve
from aifactories.twin.federation import TwinProject


class ProjectBudgets:
    """Balances by project, and their allocations rebuilt only for the projects whose balance
    moved since the last cycle (most cycles touch one or two of hundreds)."""

    def __init__(self, projects: Iterable[TwinProject]) -> None:
        self._balances = {p.project_id: Balance(p.granted_gpu_seconds) for p in projects}
        self._moved: set[int] = set(self._balances)
        self._allocation_of: dict[ProjectId, Allocation] = {}
        self._by_project: dict[ProjectId, tuple[Allocation]] = {}

    def reserve(self, project_id: int, gpu_seconds: int) -> None:
        self._moved.add(project_id)
        self._balances[project_id] = reserve(self._balances[project_id], gpu_seconds)

    def charge(self, project_id: int, reserved: int, used: int) -> None:
        self._moved.add(project_id)
        self._balances[project_id] = charge(self._balances[project_id], reserved, used)

    def allocations(self) -> tuple[tuple[Allocation, ...], dict[ProjectId, tuple[Allocation]]]:
        """The open pool allocations as the balances stand, and the same by project, both
        copied in C (not project by project) so that a snapshot keeps its own."""
        for pid in self._moved:
            b = self._balances[pid]
            allocation = self._allocation_of[ProjectId(pid)] = Allocation(
                id=AllocationId(pid),
                project_id=ProjectId(pid),
                site_id=None,
                granted_gpu_seconds=b.granted,
                reserved_gpu_seconds=b.reserved,
                used_gpu_seconds=b.used,
                starts_at=0.0,
                ends_at=math.inf,
                status=AllocationStatus.OPEN,
            )
            self._by_project[ProjectId(pid)] = (allocation,)
        self._moved.clear()
        return tuple(self._allocation_of.values()), dict(self._by_project)
