"""Build a site's executor from its kind: the seam where later back-ends (Slurm CLI,
slurmrestd) plug in with :func:`register_executor`, without the broker knowing them."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aifactories.domain.clock import Clock, SystemClock
from aifactories.domain.errors import InvalidInput
from aifactories.domain.sites import Site
from aifactories.executors._output_sweep import DEFAULT_RETENTION_S
from aifactories.executors.base import Executor
from aifactories.executors.emulated import EmulatedExecutor
from aifactories.executors.isolation import JobIsolation
from aifactories.executors.mock import MockExecutor
from aifactories.executors.slurm.cli import SlurmCliExecutor
from aifactories.executors.slurm.rest import SlurmRestExecutor

ExecutorFactory = Callable[..., Executor]
"""``factory(site, **options) -> Executor``."""


def _emulated(
    site: Site,
    state_dir: Path | str,
    clock: Clock | None = None,
    time_factor: float = 1.0,
    kill_grace_s: float = 5.0,
    python: str = sys.executable,
    isolation: JobIsolation | None = None,
    output_retention_s: float = DEFAULT_RETENTION_S,
) -> Executor:
    return EmulatedExecutor(
        site,
        state_dir,
        clock if clock is not None else SystemClock(),
        time_factor,
        kill_grace_s=kill_grace_s,
        python=python,
        isolation=isolation,
        output_retention_s=output_retention_s,
    )


def _mock(site: Site, clock: Clock | None = None, auto_start: bool = True) -> Executor:
    return MockExecutor(site, clock, auto_start=auto_start)


def _slurm_cli(
    site: Site,
    slurm_conf: str,
    output_dir: str = "/tmp",
    qos: str | None = None,
    command_timeout_s: float = 30.0,
    ssh_host: str | None = None,
    accounting: str = "auto",
    submit_user: str | None = None,  # read by the accounts agent, not by the executor
) -> Executor:
    return SlurmCliExecutor(
        site,
        slurm_conf,
        output_dir=output_dir,
        qos=qos,
        command_timeout_s=float(command_timeout_s),
        ssh_host=ssh_host,
        accounting=accounting,
    )


def _slurm_rest(
    site: Site,
    url: str,
    user: str,
    jwt_key_file: str | None = None,
    token_file: str | None = None,
    api_version: str = "v0.0.38",
    output_dir: str = "/tmp",
    qos: str | None = None,
    timeout_s: float = 15.0,
    slurm_conf: str | None = None,
    submit_user: str | None = None,  # read by the accounts agent, not by the executor
) -> Executor:
    return SlurmRestExecutor(
        site,
        url,
        user,
        jwt_key_file=jwt_key_file,
        token_file=token_file,
        api_version=api_version,
        output_dir=output_dir,
        qos=qos,
        timeout_s=float(timeout_s),
        slurm_conf=slurm_conf,
    )


_FACTORIES: dict[str, ExecutorFactory] = {
    "emulated": _emulated,
    "mock": _mock,
    "slurm_cli": _slurm_cli,
    "slurm_rest": _slurm_rest,
}


def known_kinds() -> tuple[str, ...]:
    return tuple(sorted(_FACTORIES))


def register_executor(kind: str, factory: ExecutorFactory) -> None:
    """Add (or replace) the back-end for ``kind``."""
    _FACTORIES[kind] = factory


def make_executor(kind: str, site: Site, **options: Any) -> Executor:
    """The executor of ``kind`` for ``site``; options are the back-end's keyword arguments
    (emulated: ``state_dir``, ``clock``, ``time_factor``, ...; mock: ``clock``, ...)."""
    factory = _FACTORIES.get(kind)
    if factory is None:
        raise InvalidInput(
            "executor", f"unknown kind {kind!r}; known kinds: {', '.join(known_kinds())}"
        )
    try:
        inspect.signature(factory).bind(site, **options)
    except TypeError as exc:
        raise InvalidInput("executor", f"bad options for the {kind} executor: {exc}") from exc
    return factory(site, **options)
