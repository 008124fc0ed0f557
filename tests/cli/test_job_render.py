"""``aif job`` and ``aif jobs`` show a batch job's Slurm side in words: its id as Slurm shows
it (123_4), its array, dependency, resources, output files and warnings; no raw JSON."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from aifactories.cli.render import job_details, jobs_table

JOB: dict[str, Any] = {
    "id": 57,
    "ref": "52_5",
    "project": "kalevala-mri",
    "user_id": 3,
    "name": "sweep",
    "state": "pending",
    "reason": "JobArrayTaskLimit: at most 3 tasks at once",
    "gpus": 8,
    "nodes": 2,
    "gpu_model": "any",
    "min_gpu_memory_gb": 0,
    "time_limit_s": 600,
    "countries": [],
    "command": [],
    "has_script": True,
    "site_id": None,
    "partition_id": None,
    "allocated_gpus": None,
    "submitted_at": "2026-12-06T10:00:00+00:00",
    "placed_at": None,
    "started_at": None,
    "ended_at": None,
    "elapsed_s": None,
    "exit_code": None,
    "site_job_id": None,
    "reserved_gpu_hours": 0.0,
    "charged_gpu_hours": 0.0,
    "charged_gpu_seconds": 0,
    "requeues": 0,
    "cancel_requested": False,
    "array_job_id": 52,
    "array_task_id": 5,
    "array_task_count": 10,
    "options": {
        "partitions": ["lumi-aif/lumi-g"],
        "ntasks_per_node": 4,
        "cpus_per_task": 7,
        "mem_per_node_mb": 0,
        "exclusive": True,
        "batch": {"output": "%x-%j.out", "array": [52, 5, 10, 0, 9, 1]},
    },
    "dependency": "afterok:40:41",
    "warnings": ["line 13: --qos=normal accepted but not acted on"],
    "output_path": None,
    "error_path": None,
}


def _text(renderable: Any) -> str:
    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(renderable)
    return out.getvalue()


def test_a_job_array_task_is_shown_in_words() -> None:
    text = _text(job_details(JOB))
    assert "Job 52_5" in text
    assert "task 5 of 10 tasks of array 52" in text
    assert "afterok:40:41" in text
    assert "partition lumi-aif/lumi-g, 4 tasks per node, 7 cores per task" in text
    assert "all of each node's memory, whole nodes" in text
    assert "%x-%j.out" in text and "--qos=normal" in text
    assert "{" not in text and "[" not in text  # no JSON, no Python lists


def test_the_jobs_table_names_tasks_as_slurm_does() -> None:
    assert "52_5" in _text(jobs_table([JOB]))
