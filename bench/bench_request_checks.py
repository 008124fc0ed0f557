"""The cost of the input checks per request (issue 11): target under 0.2 ms a request.

Validates typical request bodies with the platform's request models (services.jobs.JobRequest,
services.proposals.ProposalFields: strict numbers within 64 bits, finite floats in ranges,
text without NUL or lone surrogates and within its length) and, for comparison, with the
same fields declared as they were before the checks (plain ``int``, ``float``, ``str``): the
difference is what the checks add. Also a refused body, through the handler that builds the
documented 422 (api/validation.py). Prints each figure beside its target:

    .venv/bin/python bench/bench_request_checks.py
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aifactories.api.validation import validation_response
from aifactories.services.jobs.jobs import JobRequest
from aifactories.services.programme.proposals import ProposalFields

TARGET_US = 200.0  # 0.2 ms a request, whatever the body

JOB = {
    "project": "aurora-vision",
    "gpus": 8,
    "time_limit": "2:00:00",
    "name": "train-resnet",
    "command": ["python", "train.py", "--epochs", "10", "--lr", "0.001"],
    "workdir": "/home/alice/projects/vision",
    "countries": ["DE", "FI"],
}
SCRIPT = (
    "#!/bin/bash\n#SBATCH --gpus=8 --time=2:00:00 --job-name=train\n#SBATCH --account=aurora\n"
    + "python train.py --epochs 10 --lr 0.001  # a long comment line of a real script\n" * 50
)
JOB_WITH_SCRIPT = {"project": "aurora-vision", "script": SCRIPT, "workdir": "/home/alice"}
PROPOSAL = {
    "title": "Vision models for warehouse robots",
    "abstract": "We fine-tune vision transformers on warehouse images for picking robots. " * 20,
    "domain": "manufacturing",
    "industrial": True,
    "requested_gpu_hours": 5000.0,
    "gpu_model": "H100",
    "min_gpu_memory_gb": 80,
    "largest_job_gpus": 16,
    "preferred_sites": ["jaif", "lumi-aif"],
    "residency": ["DE", "FI"],
    "period_months": 6,
    "starts_at": "2027-03-01",
    "members": ["alice", "bob"],
}
# the checks scan text: their cost grows with it, about 1 us per kB (the target is for a
# typical request; this line shows the bound)
LARGEST = {**JOB_WITH_SCRIPT, "script": (SCRIPT * 200)[:500_000]}
REFUSED = {**JOB, "gpus": True, "time_limit": "9" * 5000, "command": ["a\x00b"]}


class UncheckedJob(BaseModel):
    """JobRequest as it was declared before the checks, for the comparison."""

    model_config = ConfigDict(extra="forbid")

    project: str | None = None
    gpus: int | None = None
    nodes: int | None = None
    gpu_model: str | None = None
    min_gpu_memory_gb: int | None = None
    time_limit: str | int | None = None
    name: str | None = None
    command: list[str] = []
    script: str | None = None
    workdir: str | None = None
    countries: list[str] = []
    runtime: str | int | None = None


class UncheckedProposal(BaseModel):
    """ProposalFields as it was declared before the checks."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=3, max_length=300)
    abstract: str | None = Field(default=None, min_length=20, max_length=10_000)
    domain: str | None = None
    industrial: bool | None = None
    requested_gpu_hours: float | None = Field(default=None, gt=0, le=10_000_000)
    gpu_model: str | None = None
    min_gpu_memory_gb: int | None = Field(default=None, ge=0, le=1024)
    largest_job_gpus: int | None = Field(default=None, ge=1, le=100_000)
    preferred_sites: list[str] | None = Field(default=None, max_length=20)
    residency: list[str] | None = Field(default=None, max_length=40)
    period_months: int | None = Field(default=None, ge=1, le=24)
    starts_at: str | float | None = None
    members: list[str] | None = Field(default=None, max_length=1000)


def per_call_us(work: Callable[[], object], rounds: int, repeats: int = 5) -> float:
    """Median over ``repeats`` of the mean time of one call, in microseconds."""
    means = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(rounds):
            work()
        means.append((time.perf_counter() - start) / rounds * 1e6)
    return statistics.median(means)


def _refuse() -> object:
    try:
        JobRequest.model_validate(REFUSED)
    except ValidationError as exc:
        # as FastAPI reports them: under the body
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
        return validation_response(errors)
    raise AssertionError("the refused body was accepted")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    cases: list[tuple[str, Callable[[], Any], Callable[[], Any] | None]] = [
        (
            "job submission (command)",
            lambda: JobRequest.model_validate(JOB),
            lambda: UncheckedJob.model_validate(JOB),
        ),
        (
            f"job submission ({len(SCRIPT):,}-character script)",
            lambda: JobRequest.model_validate(JOB_WITH_SCRIPT),
            lambda: UncheckedJob.model_validate(JOB_WITH_SCRIPT),
        ),
        (
            "proposal body",
            lambda: ProposalFields.model_validate(PROPOSAL),
            lambda: UncheckedProposal.model_validate(PROPOSAL),
        ),
        ("refused job body, with its 422", _refuse, None),
        (
            "worst case: the largest script allowed",
            lambda: JobRequest.model_validate(LARGEST),
            lambda: UncheckedJob.model_validate(LARGEST),
        ),
    ]
    print(f"input checks per request ({args.rounds:,} rounds, median of 5)")
    print(f"{'request':44} {'checked':>10} {'unchecked':>10} {'added':>10} {'target':>10}")
    for label, checked, unchecked in cases:
        with_checks = per_call_us(checked, args.rounds)
        without = per_call_us(unchecked, args.rounds) if unchecked is not None else None
        added = f"{with_checks - without:8.1f}us" if without is not None else "         -"
        base = f"{without:8.1f}us" if without is not None else "         -"
        verdict = "ok" if with_checks < TARGET_US else "OVER"
        if label.startswith("worst case") and verdict == "OVER":
            verdict = "over: grows with the text (1 us/kB)"
        print(
            f"{label:44} {with_checks:8.1f}us {base} {added} "
            f"{'< ' + format(TARGET_US, '.0f') + 'us':>10} {verdict}"
        )


if __name__ == "__main__":
    main()
