"""Pure mapping of Slurm's words onto ours: states, reasons, exit codes, GPUs, durations,
sbatch options and accounting rows (the formats are those Slurm 22.05.8 printed here)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from aifactories.domain.errors import ProtocolError
from aifactories.domain.ids import JobId, SiteId
from aifactories.domain.jobs import JobSpec, JobState, Shape
from aifactories.domain.sites import Partition
from aifactories.executors.base import SubmitRequest
from aifactories.executors.slurm.batch import batch_job, sbatch_args
from aifactories.executors.slurm.jobrecord import (
    HOPELESS_PREFIX,
    allocated_gpus,
    decode_exit,
    gpus_in_tres,
    gres_gpu_count,
    parse_duration,
    status_from_record,
    tag_of,
)
from aifactories.executors.slurm.sacct import parse_exit_code, read_accounting, sacct_command
from aifactories.executors.slurm.states import is_hopeless_pending, map_state, node_takes_work

S, R = JobState.SUBMITTED, JobState.RUNNING


@pytest.mark.parametrize(
    ("slurm_state", "expected"),
    [
        ("PENDING", S),
        ("CONFIGURING", S),
        ("POWER_UP_NODE", S),
        ("REQUEUED", S),
        ("REQUEUE_HOLD", S),
        ("REQUEUE_FED", S),
        ("RESV_DEL_HOLD", S),
        ("RUNNING", R),
        ("SUSPENDED", R),
        ("STOPPED", R),
        ("RESIZING", R),
        ("SIGNALING", R),
        ("STAGE_OUT", R),
        ("COMPLETING", R),
        ("COMPLETED", JobState.COMPLETED),
        ("FAILED", JobState.FAILED),
        ("LAUNCH_FAILED", JobState.FAILED),
        ("RECONFIG_FAIL", JobState.FAILED),
        ("SPECIAL_EXIT", JobState.FAILED),
        ("BOOT_FAIL", JobState.FAILED),
        ("NODE_FAIL", JobState.FAILED),
        ("OUT_OF_MEMORY", JobState.FAILED),
        ("CANCELLED", JobState.CANCELLED),
        ("CANCELLED by 0", JobState.CANCELLED),
        ("CANCELLED+", JobState.CANCELLED),
        ("REVOKED", JobState.CANCELLED),
        ("TIMEOUT", JobState.TIMEOUT),
        ("DEADLINE", JobState.TIMEOUT),
        ("PREEMPTED", JobState.PENDING),
        # flags combined with a base state, as lists or sacct/squeue forms
        ("RUNNING,COMPLETING", R),
        ("COMPLETED,COMPLETING", R),
        ("PENDING,REQUEUED", S),
        ("PREEMPTED,REQUEUED", S),
        ("FAILED,SPECIAL_EXIT", JobState.FAILED),
        ("RUNNING,UPDATE_DB", R),
        ("running", R),
        # squeue %t short codes
        ("PD", S),
        ("R", R),
        ("CG", R),
        ("CD", JobState.COMPLETED),
        ("F", JobState.FAILED),
        ("CA", JobState.CANCELLED),
        ("TO", JobState.TIMEOUT),
        ("NF", JobState.FAILED),
        ("OOM", JobState.FAILED),
        ("PR", JobState.PENDING),
        ("DL", JobState.TIMEOUT),
    ],
)
def test_every_slurm_state_maps_onto_the_job_state_machine(
    slurm_state: str, expected: JobState
) -> None:
    assert map_state(slurm_state) is expected


def test_completing_counts_as_running_only_if_the_job_started() -> None:
    assert map_state("COMPLETING", started=True) is R
    assert map_state("COMPLETING", started=False) is S
    assert map_state("CANCELLED,COMPLETING", started=False) is JobState.CANCELLED


@pytest.mark.parametrize("slurm_state", ["EXPLODED", "", "RUNNING,WEIRD_FLAG", "UPDATE_DB"])
def test_an_unknown_state_is_a_protocol_error_naming_it(slurm_state: str) -> None:
    with pytest.raises(ProtocolError, match="unknown Slurm job state"):
        map_state(slurm_state, "Whatever")


def test_the_error_names_the_state_and_reason() -> None:
    with pytest.raises(ProtocolError, match=r"'EXPLODED'.*'Kaboom'"):
        map_state("EXPLODED", "Kaboom")


@pytest.mark.parametrize(
    "reason",
    [
        "InvalidAccount",
        "InvalidQOS",
        "AccountNotAllowed",
        "QOSNotAllowed",
        "BadConstraints",
        "PartitionNodeLimit",
        "PartitionTimeLimit",
        "PartitionConfig",
        "DependencyNeverSatisfied",
        "AssocGrpGRESMinutes",
        "AssocGrpCPUMinutesLimit",
        "AssocGrpBillingMinutes",
        "QOSGrpGRESMinutes",
        "QOSGrpCpuMinutesLimit",
        "AssocMaxWallDurationPerJobLimit",
        "QOSMaxWallDurationPerJobLimit",
        "QOSMaxGRESPerJob",
        "AssocMaxNodesPerJobLimit",
        "QOSMinGRES",
        "(InvalidAccount)",
    ],
)
def test_reasons_that_never_clear_are_hopeless(reason: str) -> None:
    assert is_hopeless_pending(reason)


@pytest.mark.parametrize(
    "reason",
    [
        "None",
        "",
        "Resources",
        "Priority",
        "Dependency",
        "BeginTime",
        "ReqNodeNotAvail, UnavailableNodes:site1-n1",
        "PartitionDown",
        "JobHeldAdmin",
        "JobHeldUser",
        "AssocGrpGRES",
        "AssocGrpGRESRunMinutes",
        "AssocGrpCPURunMinutesLimit",
        "QOSGrpGRESRunMinutes",
        "AssocMaxJobsLimit",
        "QOSMaxGRESPerUser",
        "Licenses",
        "Reservation",
    ],
)
def test_reasons_that_clear_by_waiting_are_not_hopeless(reason: str) -> None:
    assert not is_hopeless_pending(reason)


@pytest.mark.parametrize(
    ("state", "flags", "usable"),
    [
        ("idle", [], True),
        ("mixed", [], True),
        ("allocated", [], True),
        ("planned", [], True),
        ("mixed-", [], True),
        ("idle*", [], False),
        ("down*", [], False),
        ("drained", [], False),
        ("draining", [], False),
        ("reserved", [], False),
        ("maint", [], False),
        ("fail", [], False),
        ("unknown", [], False),
        ("idle", ["DRAIN"], False),
        ("idle", ["NOT_RESPONDING"], False),
    ],
)
def test_only_nodes_that_take_work_count_free_gpus(
    state: str, flags: list[str], usable: bool
) -> None:
    assert node_takes_work(state, flags) is usable


@pytest.mark.parametrize(
    ("raw", "code"), [(0, 0), (768, 3), (1024, 4), (1792, 7), (15, 143), (9, 137), (65280, 255)]
)
def test_raw_wait_status_becomes_the_exit_code(raw: int, code: int) -> None:
    assert decode_exit(raw) == code


@pytest.mark.parametrize(
    ("text", "code"), [("3:0", 3), ("0:0", 0), ("0:15", 143), ("1:9", 137), ("", None)]
)
def test_sacct_exit_code(text: str, code: int | None) -> None:
    assert parse_exit_code(text) == code


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("00:00:30", 30),
        ("01:02:03", 3723),
        ("1-00:00:00", 86400),
        ("2-03:04:05", 2 * 86400 + 3 * 3600 + 4 * 60 + 5),
        ("1-02", 86400 + 7200),
        ("1-02:30", 86400 + 7200 + 1800),
        ("05:07", 307),
        ("00:01.500", 1.5),
        ("10", 600),
        ("UNLIMITED", math.inf),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "1:2:3:4", "-5"])
def test_unreadable_durations(text: str) -> None:
    with pytest.raises(ProtocolError):
        parse_duration(text)


def test_gpu_counts_in_gres_and_tres() -> None:
    assert gres_gpu_count("gpu:a100:4") == 4
    assert gres_gpu_count("gpu:a100:4(S:0-1)") == 4
    assert gres_gpu_count("gpu:4") == 4
    assert gres_gpu_count("gpu:a100:2(IDX:0,2),gpu:v100:1(IDX:3)") == 3
    assert gres_gpu_count("gpu:a100:0(IDX:N/A)") == 0
    assert gres_gpu_count("(null)") == 0
    assert gpus_in_tres("cpu=1,mem=100M,node=1,billing=1,gres/gpu=2") == 2
    assert gpus_in_tres("billing=1,cpu=1,gres/gpu=4,gres/gpu:a100=4,mem=1G") == 4
    assert gpus_in_tres("gres:gpu:a100:2") == 2
    assert gpus_in_tres("cpu=1,mem=100M") is None


def test_allocated_gpus_prefers_tres_alloc_then_gres_detail_then_the_request() -> None:
    base = {"node_count": 2, "tres_per_node": "gres:gpu:4"}
    assert allocated_gpus({**base, "tres_alloc_str": "node=2,gres/gpu=8", "gres_detail": []}) == 8
    details = {**base, "tres_alloc_str": "node=2", "gres_detail": ["gpu:a100:4(IDX:0-3)"] * 2}
    assert allocated_gpus(details) == 8
    assert allocated_gpus({**base, "tres_alloc_str": "cpu=2,node=2", "gres_detail": []}) == 8
    assert allocated_gpus({"tres_per_job": "gres:gpu:3"}) == 3
    assert allocated_gpus({"tres_per_node": ""}) == 0


def test_the_tag_comes_from_the_comment_or_the_name() -> None:
    assert tag_of({"comment": "aif-42", "name": "x"}) == "aif-42"
    assert tag_of({"comment": "", "name": "aif-42_train"}) == "aif-42"
    assert tag_of({"comment": "(null)", "name": "aif-42"}) == "aif-42"
    assert tag_of({"comment": "other", "name": "aif-4x"}) is None
    assert tag_of({"name": "aif-421x"}) is None


def _record(**fields: object) -> dict[str, object]:
    record: dict[str, object] = {
        "job_id": 100001,
        "job_state": "RUNNING",
        "state_reason": "None",
        "exit_code": 0,
        "start_time": 1000,
        "end_time": 1120,
        "comment": "aif-7",
        "name": "aif-7_x",
        "node_count": 1,
        "nodes": "site1-n1",
        "gres_detail": ["gpu:a100:2(IDX:0-1)"],
        "tres_alloc_str": "cpu=1,mem=100M,node=1,billing=1",
        "tres_per_node": "gres:gpu:a100:2",
    }
    record.update(fields)
    return record


def test_a_pending_job_is_submitted_with_a_readable_reason() -> None:
    # A pending job's start_time is the scheduler's estimate: not a start.
    status = status_from_record(
        _record(job_state="PENDING", state_reason="Resources", start_time=5000, nodes=""), 2000
    )
    assert status.state is S and status.started_at is None and status.elapsed_s == 0
    assert status.reason == "queued at site: Resources (waiting for free GPUs)"
    assert status.tag == "aif-7" and status.site_job_id == "100001"
    plain = status_from_record(_record(job_state="PENDING", state_reason="None", nodes=""), 0)
    assert plain.reason == "queued at site"


def test_a_running_job_counts_elapsed_from_its_start() -> None:
    status = status_from_record(_record(), 1030.5)
    assert status.state is R and status.started_at == 1000
    assert status.elapsed_s == pytest.approx(30.5) and status.allocated_gpus == 2
    assert status.ended_at is None and status.exit_code is None
    assert status_from_record(_record(), 900).elapsed_s == 0  # clocks apart: never negative


def test_a_finished_job_reports_exit_code_and_elapsed() -> None:
    status = status_from_record(
        _record(
            job_state="FAILED",
            state_reason="NonZeroExitCode",
            exit_code=768,
            end_time=1045,
            gres_detail=[],
        ),
        5000,
    )
    assert status.state is JobState.FAILED and status.exit_code == 3
    assert status.reason == "NonZeroExitCode"
    assert status.elapsed_s == 45 and status.ended_at == 1045 and status.allocated_gpus == 2
    completed = status_from_record(_record(job_state="COMPLETED", gres_detail=[]), 5000)
    assert completed.reason is None and completed.exit_code == 0


def test_exit_code_objects_of_newer_apis() -> None:
    status = status_from_record(
        _record(job_state="FAILED", exit_code={"status": "FAILED", "return_code": 3}), 5000
    )
    assert status.exit_code == 3


def test_a_job_cancelled_while_queued_never_started() -> None:
    status = status_from_record(
        _record(
            job_state="CANCELLED",
            state_reason="Priority",
            nodes="",
            start_time=1500,
            end_time=1500,
            gres_detail=[],
            tres_alloc_str="",
        ),
        5000,
    )
    assert status.state is JobState.CANCELLED and status.started_at is None
    assert status.elapsed_s == 0 and status.allocated_gpus == 0 and status.exit_code is None
    assert status.reason is None


def test_a_hopeless_job_cancelled_by_the_executor_stays_failed() -> None:
    status = status_from_record(
        _record(job_state="CANCELLED", state_reason="InvalidAccount", nodes="", gres_detail=[]),
        5000,
    )
    assert status.state is JobState.FAILED
    assert status.reason == f"{HOPELESS_PREFIX}InvalidAccount"


def test_a_preempted_job_goes_back_to_the_broker() -> None:
    status = status_from_record(_record(job_state="PREEMPTED", gres_detail=[]), 5000)
    assert status.state is JobState.PENDING
    assert status.reason == "preempted at the site: requeue elsewhere"


def test_a_record_without_an_id_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="job_id"):
        status_from_record({"job_state": "RUNNING"}, 0)


# -- batch jobs ----------------------------------------------------------------------------------


def _request(spec: JobSpec, shape: Shape) -> SubmitRequest:
    partition = Partition(SiteId("s1"), "gpu", "A100", 40, 2, 4)
    return SubmitRequest(JobId(42), "aif-42", partition, shape, spec, "proj1", "alice")


def test_a_one_node_job_of_a_given_model() -> None:
    spec = JobSpec(gpus=2, time_limit_s=61, gpu_model="A100", name="my train!", runtime_s=5)
    job = batch_job(_request(spec, Shape(1, 2, False)), output_dir="/scratch/out/")
    assert job.name == "aif-42_my-train" and job.tag == job.comment == "aif-42"
    assert job.gpu_type == "a100" and job.time_limit_min == 2 and not job.exclusive
    assert job.script == "#!/bin/bash\nsleep 5\n"
    assert job.workdir == "/scratch/out" and job.output == "/scratch/out/aif-42_my-train-%j.out"
    assert job.environment["AIF_TAG"] == "aif-42" and "PATH" in job.environment
    assert sbatch_args(job) == [
        "--parsable",
        "--job-name=aif-42_my-train",
        "--comment=aif-42",
        "--account=proj1",
        "--partition=gpu",
        "--nodes=1",
        "--gres=gpu:a100:2",
        "--time=2",
        "--chdir=/scratch/out",
        "--output=/scratch/out/aif-42_my-train-%j.out",
    ]


def test_a_gang_job_of_any_model_takes_whole_nodes() -> None:
    spec = JobSpec(gpus=8, time_limit_s=3600, command=("python", "train.py", "--lr", "1e-3 x"))
    job = batch_job(_request(spec, Shape(2, 4, True)), output_dir="/tmp", qos="high")
    assert job.gpu_type is None and job.time_limit_min == 60
    assert job.script == "#!/bin/bash\npython train.py --lr '1e-3 x'\n"
    args = sbatch_args(job)
    assert "--nodes=2" in args and "--gres=gpu:4" in args and "--exclusive" in args
    assert args[-1] == "--qos=high"


def test_scripts_and_defaults() -> None:
    shape = Shape(1, 1, False)
    user = batch_job(
        _request(JobSpec(1, 10, script="#!/bin/sh\necho hi\n"), shape), output_dir="/t"
    )
    # a shell script sees the name it was given as SLURM_JOB_NAME (slurm/batch.py)
    assert user.script == "#!/bin/sh\nexport SLURM_JOB_NAME=job\necho hi\n"
    assert user.time_limit_min == 1
    bare = batch_job(_request(JobSpec(1, 60, script="echo hi\n"), shape), output_dir="/t")
    assert bare.script == "#!/bin/bash\nexport SLURM_JOB_NAME=job\necho hi\n"
    nothing = batch_job(_request(JobSpec(1, 60, workdir="/home/a"), shape), output_dir="/t")
    assert nothing.script == "#!/bin/bash\ntrue\n" and nothing.workdir == "/home/a"


# -- accounting ----------------------------------------------------------------------------------

# sacct -c (jobcomp/filetxt) as printed on this machine with SLURM_TIME_FORMAT=%s
_JOBCOMP = """\
100002|FAILED|3:0|0||1795880683|1795880683||sbatch||unknown||site1-n1
100004|CANCELLED|0:0|0||1795880685|1795880685||sbatch||unknown||(null)
100001|COMPLETED|0:0|30||1795880683|1795880713||aif-7_x|proj1|unknown||site1-n1
"""
_DBD = "\n".join(
    [
        "100002|FAILED|4:0|7|billing=1,cpu=1,gres/gpu=2,mem=100M,node=1|1795880759|1795880766"
        "|aif-9|aif-9_y|projx|site1|None|site1-n1",
        "100005|CANCELLED by 0|0:15|12|billing=2,gres/gpu=8,node=2|1795880800|1795880812"
        "||aif-10_z|projx|site1|None|site1-n[1-2]",
        "100006|PENDING|0:0|0||Unknown|Unknown|aif-11||projx|site1|Priority|None assigned",
    ]
)


def test_jobcomp_rows_filtered_here_because_sacct_c_ignores_filters() -> None:
    calls: list[list[str]] = []

    def run(argv: list[str]) -> str:
        calls.append(argv)
        return _JOBCOMP

    records = read_accounting(run, None, 1795880700, completion_file_mode=True)
    assert [r.site_job_id for r in records] == ["100001"]
    assert calls[0][:3] == ["sacct", "-c", "-X"] and "-S" not in calls[0]
    (done,) = records
    assert done.tag == "aif-7" and done.account == "proj1" and done.state is JobState.COMPLETED
    assert done.elapsed_s == 30 and done.allocated_gpus is None and done.exit_code == 0
    assert done.to_status(fallback_gpus=2).allocated_gpus == 2
    by_id = read_accounting(run, ["100004", "100002"], None, completion_file_mode=True)
    assert {r.site_job_id: r.state for r in by_id} == {
        "100002": JobState.FAILED,
        "100004": JobState.CANCELLED,
    }
    cancelled = next(r for r in by_id if r.site_job_id == "100004")
    assert cancelled.start is None and cancelled.exit_code is None and cancelled.elapsed_s == 0


def test_slurmdbd_rows_carry_gpus_comment_and_exit_codes() -> None:
    records = read_accounting(lambda argv: _DBD, ["100002", "100005", "100006"], None, False)
    failed, cancelled, pending = records
    assert failed.tag == "aif-9" and failed.exit_code == 4 and failed.allocated_gpus == 2
    assert failed.gpu_seconds == 14 and failed.cluster == "site1" and failed.reason is None
    assert cancelled.state is JobState.CANCELLED and cancelled.exit_code == 143
    assert cancelled.allocated_gpus == 8 and cancelled.tag == "aif-10"
    assert pending.state is S and pending.start is None and pending.reason == "Priority"
    status = failed.to_status()
    assert (status.state, status.started_at, status.ended_at) == (
        JobState.FAILED,
        1795880759,
        1795880766,
    )


def test_sacct_command_for_a_time_window() -> None:
    argv = sacct_command(None, 0.0, completion_file_mode=False)
    assert argv[:2] == ["sacct", "-X"] and "-S" in argv and argv[-2:] == ["-E", "now"]
    assert "-j" in sacct_command(["1", "2"], None, False)


def test_a_short_sacct_row_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="columns"):
        read_accounting(lambda argv: "100001|COMPLETED\n", None, None, False)


def test_sbatch_failing_with_words_we_do_not_know_refuses_the_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sbatch exits non-zero only when it made no job: the job is refused with what sbatch
    said (not left 'unknown', which requeued it and failed again at every cycle)."""
    from aifactories.domain.errors import SubmissionRejected
    from aifactories.domain.sites import Site, SiteStatus
    from aifactories.executors.slurm.cli import CommandFailed, SlurmCliExecutor

    conf = tmp_path / "slurm.conf"
    conf.write_text("ClusterName=t\n")
    partition = Partition(SiteId("t"), "gpu", "A100", 40, 2, 4)
    site = Site(SiteId("t"), "T", "IT", "T", SiteStatus.OPERATIONAL, (partition,))
    executor = SlurmCliExecutor(site, str(conf))
    executor._partitions_checked = True

    def fails(argv: list[str], **_: object) -> str:
        raise CommandFailed(argv, 1, "sbatch: error: Something Slurm 26 says about --gres\n")

    monkeypatch.setattr(executor, "run", fails)
    request = SubmitRequest(
        job_id=JobId(7),
        tag="aif-x-7",
        partition=partition,
        shape=Shape(nodes=1, gpus_per_node=1, exclusive=False),
        spec=JobSpec(gpus=1, time_limit_s=60),
        account="p",
        user="u",
    )
    with pytest.raises(SubmissionRejected, match="Something Slurm 26 says about --gres"):
        executor.submit(request)
