"""Executors: one small back-end per kind of site, built like httpx transports.

The required contract is :class:`~aifactories.executors.base.Executor`; back-end errors are
translated at this boundary into :class:`~aifactories.domain.errors.ExecutorError` subclasses.

Back-ends: :class:`EmulatedExecutor` (the embedded default's site: real processes, restart
safe), :class:`MockExecutor` (in memory, scriptable, for tests); choose one by kind with
:func:`make_executor`.
"""

from aifactories.executors.base import (
    Executor,
    PartitionCapacity,
    SiteJobStatus,
    SubmitRequest,
    job_tag,
)
from aifactories.executors.emulated import EmulatedExecutor
from aifactories.executors.mock import MockExecutor
from aifactories.executors.registry import known_kinds, make_executor, register_executor

__all__ = [
    "EmulatedExecutor",
    "Executor",
    "MockExecutor",
    "PartitionCapacity",
    "SiteJobStatus",
    "SubmitRequest",
    "job_tag",
    "known_kinds",
    "make_executor",
    "register_executor",
]
