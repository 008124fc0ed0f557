"""The preemptive, round-based policies by name (the twin runs them; see
:mod:`aifactories.scheduling.preemption`). Kept apart from the placement policies' registry
so that the broker, which cannot preempt jobs at its sites yet, never picks one by mistake."""

from __future__ import annotations

from collections.abc import Callable

from aifactories.domain.errors import InvalidInput
from aifactories.scheduling.policies.gavel_policy import GavelPolicy
from aifactories.scheduling.policies.tiresias_las import TiresiasLas, TiresiasSettings
from aifactories.scheduling.preemption import PreemptivePolicy

_FACTORIES: dict[str, Callable[[], PreemptivePolicy]] = {
    "tiresias_las": TiresiasLas,
    "gavel_las": lambda: GavelPolicy("las"),
    "gavel_ftf": lambda: GavelPolicy("ftf"),
    "gavel_las_agnostic": lambda: GavelPolicy("las", heterogeneity_aware=False),
    "gavel_ftf_agnostic": lambda: GavelPolicy("ftf", heterogeneity_aware=False),
    # Gavel's min_total_duration: the least time in which every active job can finish.
    "gavel_makespan": lambda: GavelPolicy("makespan"),
    "gavel_makespan_agnostic": lambda: GavelPolicy("makespan", heterogeneity_aware=False),
}
PREEMPTIVE_POLICY_NAMES: tuple[str, ...] = tuple(_FACTORIES)


def get_preemptive_policy(
    name: str, *, tiresias: TiresiasSettings | None = None
) -> PreemptivePolicy:
    """The policy by name; ``tiresias`` sets Tiresias' queues, round and promotion."""
    key = name.strip().lower().replace("-", "_")
    if key == "tiresias_las":
        return TiresiasLas(tiresias)
    factory = _FACTORIES.get(key)
    if factory is None:
        raise InvalidInput(
            "policy",
            f"unknown preemptive policy {name!r}; known: {', '.join(PREEMPTIVE_POLICY_NAMES)}",
        )
    return factory()


def is_preemptive(name: str) -> bool:
    return name.strip().lower().replace("-", "_") in _FACTORIES
