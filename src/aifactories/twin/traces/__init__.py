"""Trace readers of the twin: real cluster traces in, one :class:`Trace` model out.

=========  =====================================================  =====================
format     what                                                   reader
=========  =====================================================  =====================
philly     Microsoft Philly per-job CSV (Pollux/Sia artifacts)    :mod:`.philly`
swf        Parallel Workloads Archive SWF, plain or .gz           :mod:`.swf`
alibaba    Alibaba GPU 2023 (openb) pod list; node list helpers   :mod:`.alibaba`
helios     SenseTime Helios and Shanghai AI Lab Acme per-job CSV  :mod:`.helios`
pollux     Pollux workloads (runtimes from profiles)              :mod:`.pollux`
sia        Sia workloads (runtimes from profiles)                 :mod:`.sia`
sacct      Slurm ``sacct --parsable2`` export                     :mod:`.sacct`
=========  =====================================================  =====================

Each module's docstring has its column mapping and the rows it skips; every reader streams,
takes ``limit`` (keep the first N accepted jobs) and raises :class:`TraceError` naming file, line
and field. Without a trace, :func:`generate_gavel_mixture` is the embedded default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from aifactories.domain.errors import InvalidInput
from aifactories.twin.traces.alibaba import (
    NodePool,
    alibaba_partitions,
    read_alibaba,
    read_alibaba_nodes,
)
from aifactories.twin.traces.errors import TraceError
from aifactories.twin.traces.helios import read_helios
from aifactories.twin.traces.model import Trace, TraceJob
from aifactories.twin.traces.philly import read_philly
from aifactories.twin.traces.pollux import read_pollux
from aifactories.twin.traces.sacct import read_sacct
from aifactories.twin.traces.sia import read_sia
from aifactories.twin.traces.swf import read_swf
from aifactories.twin.traces.synthetic import generate_gavel_mixture

__all__ = [
    "FORMATS",
    "NodePool",
    "Trace",
    "TraceError",
    "TraceFormat",
    "TraceJob",
    "alibaba_partitions",
    "generate_gavel_mixture",
    "read_alibaba",
    "read_alibaba_nodes",
    "read_helios",
    "read_philly",
    "read_pollux",
    "read_sacct",
    "read_sia",
    "read_swf",
    "read_trace",
]

TraceFormat = Literal["philly", "swf", "alibaba", "helios", "pollux", "sia", "sacct"]
FORMATS: tuple[TraceFormat, ...] = ("philly", "swf", "alibaba", "helios", "pollux", "sia", "sacct")


def read_trace(
    path: Path | str,
    format: str,
    *,
    limit: int | None = None,
    profiles: Path | str | None = None,
    gpu_profile: str = "",
) -> Trace:
    """Read the trace at ``path`` in ``format`` (one of :data:`FORMATS`).

    ``profiles`` and ``gpu_profile`` price the jobs of the ``pollux`` and ``sia`` formats, which
    carry no runtime (see :mod:`.pollux`); the other formats refuse them.
    """
    if format not in FORMATS:
        raise InvalidInput(
            "format", f"unknown trace format {format!r}; known: {', '.join(FORMATS)}"
        )
    if format in ("pollux", "sia"):
        reader = read_pollux if format == "pollux" else read_sia
        return reader(path, profiles=profiles, gpu_profile=gpu_profile, limit=limit)
    if profiles is not None or gpu_profile:
        raise InvalidInput(
            "profiles", f"only the pollux and sia formats use profiles, not {format}"
        )
    if format == "philly":
        return read_philly(path, limit=limit)
    if format == "swf":
        return read_swf(path, limit=limit)
    if format == "alibaba":
        return read_alibaba(path, limit=limit)
    if format == "helios":
        return read_helios(path, limit=limit)
    return read_sacct(path, limit=limit)
