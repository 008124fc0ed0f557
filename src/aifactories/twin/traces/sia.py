"""Sia (SOSP'23) workloads: ``workloads/{philly,saturn,newtrace}/workload-N.csv``.

Same columns as Pollux (``name,time,application,num_replicas,batch_size``) and the same lack of
a runtime; read by the Pollux reader, whose docstring gives the column mapping and the runtime
model (the rigid time to train the application's epochs, from the measured profiles).

- ``philly``: 8 x 160 jobs, Philly, built like Pollux's workloads;
- ``saturn``: 10 x 160 jobs from the Helios Saturn cluster (SenseTime);
- ``newtrace``: 10 x 960 jobs from a newer production trace (48-hour windows, bursts up to
  about 100 jobs per hour).

Applications: cifar10, imagenet, yolov3, bert, deepspeech2 (the shipped files use no ncf and no
gpt_pmp; gpt_pmp, a pipeline-parallel model, would be skipped as ``no profile for the
application``).

Sia's point is heterogeneity, so ``gpu_profile`` picks whose speed sets the runtime: ``""`` the
original Pollux profile (T4, 4 per node; the default, and the only one that prices every shipped
configuration), ``aws`` (T4), ``azure`` (V100), ``dgx``/``dgx-ext`` (A100-40GB), ``quad`` (Quadro
RTX 6000), ``rtx`` (RTX 2080Ti). Jobs a profile cannot price (too many GPUs for its measured
placements, say) are skipped and counted, never given a made-up runtime. ``profiles`` defaults
to the ``profiles`` folder of the artifact (two levels above ``workloads/<set>/``).
"""

from __future__ import annotations

from pathlib import Path

from aifactories.twin.traces.model import Trace
from aifactories.twin.traces.pollux import read_workload


def read_sia(
    path: Path | str,
    *,
    profiles: Path | str | None = None,
    gpu_profile: str = "",
    limit: int | None = None,
) -> Trace:
    """Read a Sia workload CSV into a :class:`Trace` (see the module docstring)."""
    return read_workload(path, profiles=profiles, gpu_profile=gpu_profile, limit=limit)
