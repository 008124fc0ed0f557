"""To a job, an emulated site looks like Slurm (issue 12): the SLURM_* variables of a batch
job, an ``srun`` on its PATH that starts the tasks, ``--output``/``--error`` files where
Slurm puts them (opened as the job's user, never through a link), ``--signal`` before the
time limit, and Slurm's exit codes and states. Real jobs through the real emulated
executor, in each isolation this machine has (a bubblewrap sandbox; per-project users as
root); the request is built directly, as the broker builds it from a parsed script."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from aifactories.domain.batch import ArrayTask, BatchOptions, parse_signal
from aifactories.domain.clock import SystemClock
from aifactories.domain.ids import JobId
from aifactories.domain.jobs import JobSpec, JobState, Shape
from aifactories.domain.sites import Partition, Site, SiteStatus
from aifactories.executors import _jobproc, _staging, srun
from aifactories.executors.base import SiteJobStatus, SubmitRequest, job_tag
from aifactories.executors.emulated import EmulatedExecutor
from aifactories.executors.isolation import probe_bwrap, resolve_isolation
from aifactories.executors.scontrol import expand_hostlist
from aifactories.executors.srun import compress_hostlist, task_layout, tasks_per_node_text

from .conftest import FAST, SITE_ID, wait_for

ROOT = os.geteuid() == 0
BWRAP = shutil.which("bwrap")
SANDBOX = BWRAP is not None and probe_bwrap(BWRAP, ROOT) is None
MODES = [
    pytest.param("sandbox", marks=pytest.mark.skipif(not SANDBOX, reason="no usable bwrap")),
    pytest.param("user", marks=pytest.mark.skipif(not ROOT, reason="needs root")),
]
ANY_MODE = "sandbox" if SANDBOX else "user" if ROOT else "none"
# srun must be on the PATH in every mode, "none" (no isolation, the operator's choice) too
SRUN_MODES = [*MODES, pytest.param("none")]

GPU = Partition(SITE_ID, "gpu", "H100", 80, nodes=2, gpus_per_node=4)
AMD = Partition(SITE_ID, "lumi-g", "MI250X", 128, nodes=2, gpus_per_node=4)
SITE = Site(SITE_ID, "Slurm-like site", "DE", "TESTER", SiteStatus.OPERATIONAL, (GPU, AMD))
TWO_NODES = Shape(2, 4, exclusive=True)
PLATFORM_ID = 4711  # the platform's job id, never the site's own (which starts at 1)


def submit(
    site: EmulatedExecutor,
    script: str,
    *,
    shape: Shape = TWO_NODES,
    partition: Partition = GPU,
    job_id: int = PLATFORM_ID,
    time_limit_s: int = 3600,
    name: str = "train",
    **fields: object,
) -> str:
    spec = JobSpec(
        gpus=shape.allocated_gpus,
        time_limit_s=time_limit_s,
        nodes=shape.nodes,
        name=name,
        script=script,
        **fields,  # type: ignore[arg-type]
    )
    request = SubmitRequest(
        job_id=JobId(job_id),
        tag=job_tag(job_id),
        partition=partition,
        shape=shape,
        spec=spec,
        account="p-test",
        user="alice",
    )
    return site.submit(request)


def finished(site: EmulatedExecutor, job: str) -> SiteJobStatus:
    return wait_for(site, [job], timeout_s=30)[job]


def text(path: str | None) -> str:
    assert path is not None
    return Path(path).read_text(errors="replace")


def variables(output: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """Under /tmp, traversable by a job user (pytest's folders are 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="aif-slurmlike-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


MakeSite = Callable[[str], EmulatedExecutor]


@pytest.fixture
def make_site(open_folder: Path) -> Iterator[MakeSite]:
    made: list[EmulatedExecutor] = []
    data = open_folder / "data"
    data.mkdir(mode=0o700)

    def make(mode: str) -> EmulatedExecutor:
        isolation = resolve_isolation(
            mode,
            protected=(data,),
            users_file=data / "sites" / "job-users.json",
            scratch_dir=open_folder / "scratch",
        )
        site = EmulatedExecutor(
            SITE, data / "sites" / SITE.id, SystemClock(), FAST, kill_grace_s=0.5,
            isolation=isolation,
        )  # fmt: skip
        made.append(site)
        return site

    yield make
    for site in made:
        for entry in (site.state_dir / "jobs").iterdir():
            site.cancel(entry.name)


# ------------------------------------------------------------------------- environment


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_a_batch_script_sees_slurms_variables(
    make_site: MakeSite, open_folder: Path, mode: str
) -> None:
    site = make_site(mode)
    submitted_from = open_folder / "project"
    submitted_from.mkdir(mode=0o755)
    job = submit(
        site,
        "#!/bin/bash\n#SBATCH --nodes=2\nenv | grep -E '^(SLURM|CUDA|ROCR)' | sort\n",
        workdir=str(submitted_from),
        ntasks=4,
        ntasks_per_node=2,
        cpus_per_task=8,
        mem_per_gpu_mb=16000,
    )
    status = finished(site, job)
    assert status.state is JobState.COMPLETED, status
    env = variables(text(status.output_path))
    expected = {
        "SLURM_JOB_ID": str(PLATFORM_ID),
        "SLURM_JOBID": str(PLATFORM_ID),
        "SLURM_JOB_NAME": "train",
        "SLURM_JOB_ACCOUNT": "p-test",
        "SLURM_JOB_PARTITION": "gpu",
        "SLURM_JOB_NODELIST": "gpu-[0000-0001]",
        "SLURM_NODELIST": "gpu-[0000-0001]",
        "SLURM_JOB_NUM_NODES": "2",
        "SLURM_NNODES": "2",
        "SLURM_NTASKS": "4",
        "SLURM_NTASKS_PER_NODE": "2",
        "SLURM_TASKS_PER_NODE": "2(x2)",
        "SLURM_CPUS_PER_TASK": "8",
        "SLURM_MEM_PER_GPU": "16000",
        "SLURM_GPUS_ON_NODE": "4",
        "SLURM_JOB_GPUS": "0,1,2,3",
        "CUDA_VISIBLE_DEVICES": "0,1,2,3",
        "SLURM_SUBMIT_DIR": str(submitted_from),
        "SLURM_CLUSTER_NAME": SITE_ID,
    }
    assert {name: env.get(name) for name in expected} == expected
    assert "ROCR_VISIBLE_DEVICES" not in env  # NVIDIA GPUs
    assert "SLURM_ARRAY_TASK_ID" not in env
    # Slurm's default output file, named after the platform's job id, in the job's folder
    assert status.output_path is not None
    assert Path(status.output_path).name == f"slurm-{PLATFORM_ID}.out"
    assert status.error_path is None  # standard error went with the output


@pytest.mark.slow
def test_an_array_task_on_amd_gpus(make_site: MakeSite) -> None:
    site = make_site(ANY_MODE)
    array = ArrayTask(array_job_id=4700, task_id=3, task_count=10, task_min=0, task_max=9)
    job = submit(
        site,
        "env | grep -E '^(SLURM_ARRAY|ROCR|CUDA|SLURM_JOB_ID)' | sort\n",
        shape=Shape(1, 2, exclusive=False),
        partition=AMD,
        batch=BatchOptions(array=array),
    )
    status = finished(site, job)
    assert status.state is JobState.COMPLETED, status
    env = variables(text(status.output_path))
    assert env["SLURM_ARRAY_JOB_ID"] == "4700" and env["SLURM_ARRAY_TASK_ID"] == "3"
    assert env["SLURM_ARRAY_TASK_COUNT"] == "10" and env["SLURM_ARRAY_TASK_MAX"] == "9"
    assert env["SLURM_JOB_ID"] == str(PLATFORM_ID)
    assert env["ROCR_VISIBLE_DEVICES"] == env["CUDA_VISIBLE_DEVICES"] == "0,1"
    assert Path(status.output_path or "").name == "slurm-4700_3.out"  # slurm-%A_%a.out


def test_slurms_notations() -> None:
    assert compress_hostlist(["booster-0001", "booster-0002"]) == "booster-[0001-0002]"
    assert compress_hostlist(["gpu-0007"]) == "gpu-0007"
    assert compress_hostlist(["n-01", "n-02", "n-03", "n-07", "x"]) == "n-[01-03,07],x"
    assert task_layout(5, 2) == [3, 2] and task_layout(4, 3) == [2, 1, 1]
    assert tasks_per_node_text(task_layout(5, 3)) == "2(x2),1"
    assert expand_hostlist("n-[01-03,07],x") == ["n-01", "n-02", "n-03", "n-07", "x"]
    assert expand_hostlist(compress_hostlist(["a-9", "a-10"])) == ["a-9", "a-10"]


# --------------------------------------------------------------------------------- srun


@pytest.mark.slow
@pytest.mark.parametrize("mode", SRUN_MODES)
def test_srun_starts_the_tasks(make_site: MakeSite, mode: str) -> None:
    site = make_site(mode)
    script = "\n".join(
        [
            "#!/bin/sh",
            # step 0: four copies of a Python program, one per rank
            "srun -n 4 python3 -c 'import os; e = os.environ; "
            'print("rank", e["SLURM_PROCID"], e["SLURM_LOCALID"], e["SLURM_NODEID"], '
            'e["SLURM_STEP_ID"], e["SLURM_STEP_NUM_TASKS"])\'',
            # step 1: the job's own task count (SLURM_NTASKS), labelled, options ignored
            "srun -l --cpu-bind=cores --mpi=pmix --gpus-per-task=1 --kill-on-bad-exit "
            "sh -c 'echo node $SLURM_NODEID step $SLURM_STEPID'",
            # step 2: the highest exit code of the tasks
            "srun -n 3 sh -c 'exit $SLURM_PROCID'",
            'echo "srun exited $?"',
            "srun -n 2 sh -c 'kill -9 $$'",
            'echo "killed srun exited $?"',
        ]
    )
    job = submit(site, script, ntasks=2)
    status = finished(site, job)
    assert status.state is JobState.COMPLETED, status
    output = text(status.output_path)
    ranks = sorted(line.split()[1:] for line in output.splitlines() if line.startswith("rank"))
    # procid, localid (per node), nodeid, step id, tasks in the step: 4 tasks on 2 nodes
    assert ranks == [
        ["0", "0", "0", "0", "4"],
        ["1", "1", "0", "0", "4"],
        ["2", "0", "1", "0", "4"],
        ["3", "1", "1", "0", "4"],
    ]
    labelled = sorted(line for line in output.splitlines() if ": node" in line)
    assert labelled == ["0: node 0 step 1", "1: node 1 step 1"]
    assert "srun exited 2" in output
    assert "srun: error: gpu-0001: task 2: Exited with exit code 2" in output
    assert "killed srun exited 137" in output  # 128 + SIGKILL


@pytest.mark.slow
@pytest.mark.parametrize("mode", SRUN_MODES)
def test_scontrol_show_hostnames(make_site: MakeSite, mode: str) -> None:
    """The MASTER_ADDR line of multi-node training scripts; anything else is refused."""
    site = make_site(mode)
    script = (
        'export MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)\n'
        'echo "master $MASTER_ADDR"; scontrol show hostnames | tr "\\n" " "; echo\n'
        "scontrol show job $SLURM_JOB_ID || echo refused\n"
        'getent hosts "$MASTER_ADDR" || echo unresolved; echo "on $(uname -n)"\n'
    )
    status = finished(site, submit(site, script))
    output = text(status.output_path)
    assert status.state is JobState.COMPLETED, (status, output)
    assert "master gpu-0000" in output and "gpu-0000 gpu-0001 \n" in output
    assert "answers 'scontrol show hostnames [LIST]' only" in output and "refused" in output
    if mode == "sandbox":  # the nodes are this machine, under their names
        assert "127.0.0.1       gpu-0000 gpu-0001" in output and "on gpu-0000" in output


@pytest.mark.slow
def test_srun_as_the_command_and_a_bad_option(make_site: MakeSite) -> None:
    site = make_site(ANY_MODE)
    spec = JobSpec(
        gpus=1, time_limit_s=3600, nodes=1, name="cmd", ntasks=3,
        command=("srun", "sh", "-c", "echo task $SLURM_PROCID of $SLURM_NTASKS"),
    )  # fmt: skip
    request = SubmitRequest(
        JobId(5), job_tag(5), GPU, Shape(1, 1, exclusive=False), spec, "p-test", "alice"
    )
    job = site.submit(request)
    status = finished(site, job)
    assert status.state is JobState.COMPLETED, status
    lines = sorted(line for line in text(status.output_path).splitlines() if line)
    assert lines == ["task 0 of 3", "task 1 of 3", "task 2 of 3"]

    bad = submit(site, "srun --frobnicate true\n", job_id=6, shape=Shape(1, 1, False))
    status = finished(site, bad)
    assert status.state is JobState.FAILED and status.exit_code == 1
    assert "option '--frobnicate' is not supported" in text(status.output_path)


# ------------------------------------------------------------------------------- output


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_output_and_error_go_where_slurm_puts_them(make_site: MakeSite, mode: str) -> None:
    site = make_site(mode)
    job = submit(
        site,
        "echo to stdout; echo to stderr >&2\n",
        batch=BatchOptions(output="%x-%j.out", error="%x-%j.err"),
    )
    status = finished(site, job)
    assert status.state is JobState.COMPLETED, status
    assert status.output_path is not None and status.error_path is not None
    out, err = Path(status.output_path), Path(status.error_path)
    assert (out.name, err.name) == (f"train-{PLATFORM_ID}.out", f"train-{PLATFORM_ID}.err")
    assert out.parent == err.parent  # the job's own folder
    assert out.read_text() == "to stdout\n" and err.read_text() == "to stderr\n"
    if ROOT:  # opened as the job's user, not as the platform's root
        assert out.stat().st_uid != 0 and err.stat().st_uid != 0
    chunk = site.read_output(job, "error", 0, 1 << 10)
    assert chunk is not None and chunk.data == b"to stderr\n"

    # a folder that does not exist in the job's folder (Slurm does not create folders either)
    nested = submit(site, "echo nested\n", job_id=12, batch=BatchOptions(output="out/%j.log"))
    status = finished(site, nested)
    assert status.state is JobState.FAILED
    assert "no such folder" in (status.reason or "")


def _submission_folder(folder: Path) -> dict[str, bytes]:
    """A member's folder as a Slurm script finds it; its files, to check it is untouched."""
    folder.mkdir(mode=0o755)
    files = {
        "train.py": b"print('trained on', open('data.txt').read().strip())\n",
        "data.txt": b"the member's data\n",
        f"slurm-{PLATFORM_ID}.out": b"an old run's output\n",  # the job's output name
        "logs/old.err": b"an old run's error\n",  # a folder --error writes into
        ".bash_profile": b"echo the submitter's profile\n",  # would shadow srun's .profile
        ".hidden": b"a dot file\n",
    }
    for name, content in files.items():
        (folder / name).parent.mkdir(mode=0o755, exist_ok=True)
        (folder / name).write_bytes(content)
    return files


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_a_script_works_in_its_submission_folder_without_writing_into_it(
    make_site: MakeSite, open_folder: Path, mode: str
) -> None:
    """A script written for Slurm reads its inputs and writes beside them (mkdir, a new
    file): it starts in its own folder, with a link per entry of the submission folder, so
    what it writes stays its own and the submission folder is left as it was."""
    site = make_site(mode)
    submitted_from = open_folder / "project"
    files = _submission_folder(submitted_from)
    script = (
        "#!/bin/bash -l\n"
        "python3 train.py\n"
        "mkdir checkpoints && echo step > checkpoints/c.ckpt && echo wrote\n"
        "echo 'wrapper' > wrapper.sh && echo made a file\n"
        "(echo more >> data.txt) 2>/dev/null || echo data.txt is read-only\n"
        'echo "in $PWD submitted from $SLURM_SUBMIT_DIR srun $(command -v srun)"\n'
        "test -e .hidden || echo no dot files\n"
        "echo to stderr >&2\n"
    )
    options = BatchOptions(error="logs/%j.err")
    job = submit(site, script, workdir=str(submitted_from), batch=options)
    status = finished(site, job)
    output = text(status.output_path)
    assert status.state is JobState.COMPLETED, (status, output)
    work = Path(json_file(site.job_dir(job) / "request.json")["env"]["HOME"])
    lines = output.splitlines()
    assert lines[:4] == [
        "trained on the member's data",
        "wrote",
        "made a file",
        "data.txt is read-only",
    ]
    assert lines[4].startswith(f"in {work} submitted from {submitted_from} srun ")
    assert "/usr/bin/srun" not in lines[4] and "no dot files" in lines
    assert "the submitter's profile" not in output  # the job's login shell read our .profile
    # its output files are its own, in its own folder, never the links' targets
    assert Path(status.output_path or "") == work / f"slurm-{PLATFORM_ID}.out"
    assert Path(status.error_path or "") == work / "logs" / f"{PLATFORM_ID}.err"
    assert text(status.error_path) == "to stderr\n"
    assert (work / "checkpoints" / "c.ckpt").read_text() == "step\n"
    assert not (work / f"slurm-{PLATFORM_ID}.out").is_symlink()
    # the platform linked the other entries and says which (dot names and outputs: none)
    staged = json_file(site.job_dir(job) / "staged.json")
    assert sorted(staged["links"]) == ["data.txt", "train.py"]
    assert all((work / name).is_symlink() for name in staged["links"])
    # the submission folder is as it was
    now = {str(p.relative_to(submitted_from)) for p in submitted_from.rglob("*") if p.is_file()}
    assert now == set(files)
    assert all((submitted_from / name).read_bytes() == data for name, data in files.items())


@pytest.mark.slow
def test_a_folder_with_too_many_entries_is_linked_in_part(
    make_site: MakeSite, open_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_staging, "MAX_LINKS", 3)
    site = make_site(ANY_MODE)
    submitted_from = open_folder / "many"
    submitted_from.mkdir(mode=0o755)
    for number in range(5):
        (submitted_from / f"part{number}").write_text(f"{number}\n")
    job = submit(site, "ls | grep -c part\n", workdir=str(submitted_from))
    status = finished(site, job)
    assert status.state is JobState.COMPLETED, status
    lines = text(status.output_path).splitlines()
    assert "only 3 entries of the submission folder" in lines[0]
    assert lines[1] == "3"


def json_file(path: Path) -> dict[str, Any]:
    value = json.loads(path.read_text())
    assert isinstance(value, dict)
    return value


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_output_outside_the_jobs_folder_fails_the_job(
    make_site: MakeSite, open_folder: Path, mode: str
) -> None:
    site = make_site(mode)
    victim = open_folder / "victim.txt"
    victim.write_text("untouched\n")
    marker = "the script ran"
    for number, pattern in enumerate((str(victim), "../../../victim.txt", "/etc/%u.out")):
        job = submit(
            site, f"echo {marker}\n", job_id=20 + number, batch=BatchOptions(output=pattern)
        )
        status = finished(site, job)
        assert status.state is JobState.FAILED, status
        assert "must be inside its own folder" in (status.reason or ""), status.reason
        assert marker not in site.output_path(job).read_text()  # never started
    assert victim.read_text() == "untouched\n"
    assert not Path("/etc/alice.out").exists()


@pytest.mark.parametrize("as_job_user", [False, pytest.param(True, marks=pytest.mark.skipif(
    not ROOT, reason="needs root"))])  # fmt: skip
def test_a_planted_link_is_never_written_through(tmp_path: Path, as_job_user: bool) -> None:
    """The runner's open of a job's files (as the job's user when the platform is root):
    links, a linked folder and a FIFO in the job's folder give an error, write nothing."""
    work = tmp_path / "work"
    work.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched\n")
    (work / "out.log").symlink_to(victim)
    (work / "dir").symlink_to(tmp_path)
    os.mkfifo(work / "fifo")
    owner = None
    if as_job_user:
        owner = (1950999999, 1950999999)
        os.chown(work, *owner)
        tmp_path.chmod(0o755)
    for name in ("out.log", "dir/victim.txt", "fifo", "dir/new.txt"):
        spec = {"root": str(work), "output": str(work / name), "error": str(work / name)}
        streams, failure = _jobproc.open_streams(spec, owner)
        streams.close()
        assert failure is not None and streams.output is None, name
        assert "cannot open the job's standard output" in failure
    assert victim.read_text() == "untouched\n"
    assert not (tmp_path / "new.txt").exists()
    assert os.geteuid() == (0 if ROOT else os.getuid())  # the runner's own ids are back

    spec = {"root": str(work), "output": str(work / "a.out"), "error": str(work / "a.err")}
    streams, failure = _jobproc.open_streams(spec, owner)
    streams.close()
    assert failure is None
    info = (work / "a.out").stat()
    assert stat.S_ISREG(info.st_mode)
    if owner is not None:
        assert (info.st_uid, info.st_gid) == owner


# ------------------------------------------------------------------ signals and states


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_signal_to_the_batch_shell_before_the_time_limit(make_site: MakeSite, mode: str) -> None:
    site = make_site(mode)
    # Without the signal the job would run into its time limit (3.6 real seconds).
    script = "trap 'echo got USR1; exit 0' USR1\nwhile :; do sleep 0.05; done\n"
    job = submit(site, script, batch=BatchOptions(signal=parse_signal("B:USR1@1800")))
    status = finished(site, job)
    assert status.state is JobState.COMPLETED, (status, site.output_path(job).read_text())
    assert "got USR1" in text(status.output_path)
    assert status.elapsed_s < 3600


@pytest.mark.slow
def test_signal_without_b_reaches_the_steps_not_the_batch_shell(make_site: MakeSite) -> None:
    site = make_site(ANY_MODE)
    # The batch shell would die of USR1 (it has no trap): only the srun tasks get it.
    script = (
        'srun -n 2 sh -c \'trap "echo task $SLURM_PROCID got USR1; exit 0" USR1; '
        "while :; do sleep 0.05; done'\n"
        'echo "srun exited $?"\n'
    )
    job = submit(site, script, batch=BatchOptions(signal=parse_signal("USR1@1800")))
    status = finished(site, job)
    output = text(status.output_path)
    assert status.state is JobState.COMPLETED, (status, output)
    assert "task 0 got USR1" in output and "task 1 got USR1" in output
    assert "srun exited 0" in output


@pytest.mark.slow
def test_exit_codes_and_states_follow_slurm(make_site: MakeSite) -> None:
    site = make_site(ANY_MODE)
    one_gpu = Shape(1, 1, exclusive=False)
    cases = {
        "exit 0\n": (JobState.COMPLETED, 0),
        "exit 3\n": (JobState.FAILED, 3),
        "kill -9 $$\n": (JobState.FAILED, 137),
        "kill -TERM $$\n": (JobState.FAILED, 143),
        "while :; do sleep 0.05; done\n": (JobState.TIMEOUT, None),
    }
    jobs = {
        submit(site, script, job_id=30 + n, shape=one_gpu, time_limit_s=600): expected
        for n, (script, expected) in enumerate(cases.items())
    }
    statuses = wait_for(site, list(jobs), timeout_s=30)
    assert {j: (s.state, s.exit_code) for j, s in statuses.items()} == jobs
    timed_out = next(j for j, (state, _) in jobs.items() if state is JobState.TIMEOUT)
    note = f"*** JOB {30 + len(cases) - 1} ON gpu-"
    assert note in text(statuses[timed_out].output_path)
    assert "CANCELLED DUE TO TIME LIMIT ***" in text(statuses[timed_out].output_path)

    running = submit(site, "while :; do sleep 0.05; done\n", job_id=40, shape=one_gpu)
    wait_for(site, [running], lambda s: s.state is JobState.RUNNING)
    site.cancel(running)
    status = finished(site, running)
    assert status.state is JobState.CANCELLED


@pytest.mark.slow
def test_a_cancel_reaches_the_steps_tasks_through_srun(make_site: MakeSite) -> None:
    site = make_site(ANY_MODE)
    script = (
        'srun -n 2 sh -c \'trap "echo task $SLURM_PROCID got TERM; exit 0" TERM; '
        "echo task $SLURM_PROCID started; while :; do sleep 0.05; done'\n"
    )
    job = submit(site, script, shape=Shape(1, 1, exclusive=False))
    status = wait_for(site, [job], lambda s: s.output_path is not None)[job]
    output = Path(status.output_path or "")
    _wait_for_text(output, ("task 0 started", "task 1 started"))
    site.cancel(job)
    assert finished(site, job).state is JobState.CANCELLED
    # the runner stops the job after the site has recorded the cancel: wait for its note
    text = _wait_for_text(output, ("CANCELLED ***",))
    assert "task 0 got TERM" in text and "task 1 got TERM" in text
    assert text.count("got TERM") == 2  # once each: srun passed it on, nobody twice


def _wait_for_text(path: Path, wanted: tuple[str, ...]) -> str:
    deadline = time.monotonic() + 20
    while True:
        text = path.read_text(errors="replace") if path.exists() else ""
        if all(w in text for w in wanted):
            return text
        if time.monotonic() > deadline:
            pytest.fail(f"{wanted} never appeared in {path}: {text!r}")
        time.sleep(0.02)


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
def test_the_scripts_interpreter_and_a_login_shell_keep_srun(
    make_site: MakeSite, mode: str
) -> None:
    """``#!/bin/bash -l`` (usual on LUMI): bash runs the script, not sh, and the login
    shell's /etc/profile, which resets PATH, still leaves the site's srun first."""
    site = make_site(mode)
    script = (
        "#!/bin/bash -l\n"
        "ranks=(); [[ $- == *i* ]] || shopt -q login_shell && echo login shell\n"
        'ranks+=("$(srun -n 2 sh -c \'echo $SLURM_PROCID\' | sort | tr "\\n" " ")")\n'
        'echo "ranks ${ranks[0]}"\n'
    )
    job = submit(site, script, shape=Shape(1, 1, exclusive=False))
    status = finished(site, job)
    output = text(status.output_path)
    assert status.state is JobState.COMPLETED, (status, output)
    assert "login shell" in output and "ranks 0 1 " in output


@pytest.mark.parametrize(
    ("argv", "tasks", "nodes"),
    [
        (["-n4", "true"], 4, 2),
        (["--ntasks=3", "--nodes", "1", "true"], 3, 1),
        (["-N", "2", "--ntasks-per-node", "3", "-c", "2", "true"], 6, 2),
        (["-N1", "true"], 1, 1),
        (["--gpus-per-task=1", "--gpu-bind", "closest", "-l", "-u", "--", "-n", "x"], 2, 2),
        (["true"], 2, 2),  # the job's SLURM_NTASKS
    ],
)
def test_srun_reads_slurms_options(argv: list[str], tasks: int, nodes: int) -> None:
    env = {"SLURM_NTASKS": "2", "SLURM_JOB_NUM_NODES": "2", "AIF_NODELIST": "g-0000,g-0001"}
    step = srun.parse(argv)
    assert srun.layout_of(step, env) == (tasks, nodes)
    envs = srun.task_environments(step, env)
    assert [e["SLURM_PROCID"] for e in envs] == [str(k) for k in range(tasks)]
    assert {e["SLURM_STEP_NUM_TASKS"] for e in envs} == {str(tasks)}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--frobnicate", "true"], "not supported on an emulated site"),
        (["-n", "0", "true"], "positive whole number"),
        (["-N", "3", "true"], "asks for 3 nodes but the job has 2"),
        (["-n", "2"], "no command to run"),
        (["-n"], "needs a value"),
    ],
)
def test_srun_says_what_is_wrong(argv: list[str], message: str) -> None:
    env = {"SLURM_NTASKS": "2", "SLURM_JOB_NUM_NODES": "2"}
    with pytest.raises(srun.Usage, match=message):
        srun.layout_of(srun.parse(argv), env)
