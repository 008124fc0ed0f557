"""A batch job's Slurm options at real Slurm sites (slurm/batch.py, slurm/rest_api.py), and
the batch scripts of tests/batch_scripts run unchanged on sites shaped like the machines
they were written for (LUMI-G, Leonardo Booster, MareNostrum 5 ACC)."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from aifactories.catalogue.loader import parse_catalogue
from aifactories.domain.batch import ArrayTask, BatchOptions, parse_signal
from aifactories.domain.errors import SubmissionRejected
from aifactories.domain.fit import fit
from aifactories.domain.ids import JobId
from aifactories.domain.jobs import JobSpec, JobState, Shape
from aifactories.domain.sites import Site
from aifactories.executors.base import Executor, SubmitRequest, job_tag
from aifactories.executors.registry import make_executor
from aifactories.executors.slurm.batch import batch_job, fill_pattern, sbatch_args, site_script
from aifactories.executors.slurm.cli import SlurmCliExecutor
from aifactories.executors.slurm.rest_api import rest_api
from aifactories.localslurm import LocalSlurm, SiteLayout, SiteRequest
from aifactories.localslurm.sites_file import catalogue_entry
from tests.slurm.conftest import _start, _stop
from tests.slurm.test_cli_executor import _JOB_IDS, final, request, site_of, slurm, wait_for
from tests.slurm.test_rest_executor import _executor as rest_executor

SCRIPTS = Path(__file__).parent.parent / "batch_scripts"

# -- what is sent (no site needed) ----------------------------------------------------------


def test_directives_are_switched_off_and_the_name_set_without_moving_a_line() -> None:
    text = "#!/bin/bash -l\n#SBATCH --array=0-3\n#PBS -q x\n\n#SBATCH --x\necho hi\n#SBATCH y\n"
    sent = site_script(text, "my run")
    assert sent.split("\n") == [
        "#!/bin/bash -l",
        "##SBATCH --array=0-3",
        "##PBS -q x",
        "export SLURM_JOB_NAME='my run'",
        "##SBATCH --x",
        "echo hi",
        "#SBATCH y",  # after the first command: sbatch never reads it
        "",
    ]
    python = site_script("#!/usr/bin/env python3\n#SBATCH --gres=gpu:1\nprint(1)\n", "p")
    assert python == "#!/usr/bin/env python3\n##SBATCH --gres=gpu:1\nprint(1)\n"
    no_blank = site_script("#!/usr/bin/env bash\necho hi\n", "n")
    assert no_blank == "#!/usr/bin/env bash\nexport SLURM_JOB_NAME=n\necho hi\n"


def test_patterns_fill_in_what_only_the_platform_knows() -> None:
    task = ArrayTask(array_job_id=40, task_id=7, task_count=10, task_min=0, task_max=9)
    assert fill_pattern("%x-%j_%A_%3a.%u%%N.out", name="a%b", user="ana", array=task) == (
        "a%%b-%j_40_007.ana%%N.out"
    )
    assert fill_pattern("%A_%a-%N", name="n", user="u", array=None) == "%A_%a-%N"
    assert fill_pattern("lit\\%x", name="n", user="u", array=None) == "lit\\%x"


def _submit_request(spec: JobSpec, shape: Shape) -> SubmitRequest:
    entry = {
        "id": "x",
        "name": "x",
        "country": "FI",
        "supercomputer": "x",
        "status": "operational",
        "partitions": [
            {
                "name": "gpu",
                "gpu_model": "A100",
                "gpu_memory_gb": 40,
                "gpus_per_node": 8,
                "nodes": 2,
            }
        ],
    }
    partition = parse_catalogue({"version": 1, "sites": [entry]}, "t").sites[0].partitions[0]
    job_id = next(_JOB_IDS)
    return SubmitRequest(JobId(job_id), job_tag(job_id), partition, shape, spec, "proj", "ana")


def test_every_option_reaches_sbatch_and_the_rest_job_object() -> None:
    spec = JobSpec(
        gpus=2,
        time_limit_s=90,
        name="opts",
        script="#!/bin/bash\necho hi\n",
        ntasks=3,
        ntasks_per_node=3,
        cpus_per_task=2,
        mem_per_node_mb=1500,
        mem_per_gpu_mb=700,
        exclusive=True,
        batch=BatchOptions(
            output="o-%x.out",
            error="e-%j.err",
            signal=parse_signal("USR1@30"),
            requeue=False,
            array=ArrayTask(40, 7, 10, 0, 9),
        ),
    )
    job = batch_job(_submit_request(spec, Shape(1, 2, False)), output_dir="/out")
    args = sbatch_args(job)
    for wanted in (
        "--ntasks=3",
        "--ntasks-per-node=3",
        "--cpus-per-task=2",
        "--mem=1500",
        "--mem-per-gpu=700",
        "--exclusive",  # asked for, though the shape alone would share the node
        "--output=o-opts.out",
        "--error=e-%j.err",
        "--signal=USR1@30",
        "--no-requeue",
        "--time=2",
    ):
        assert wanted in args
    assert job.environment["SLURM_ARRAY_TASK_ID"] == "7"
    body = rest_api("v0.0.38").submit_body(job)["job"]
    assert body["tasks"] == 3 and body["tasks_per_node"] == 3 and body["cpus_per_task"] == 2
    assert body["memory_per_node"] == 1500 and body["memory_per_gpu"] == 700
    assert body["signal"] == "USR1@30" and body["no_requeue"] is True
    assert body["standard_output"] == "o-opts.out" and body["standard_error"] == "e-%j.err"
    assert body["environment"]["SLURM_CPUS_PER_TASK"] == "2"
    assert body["environment"]["SLURM_ARRAY_JOB_ID"] == "40"
    plain = batch_job(_submit_request(JobSpec(1, 60), Shape(1, 1, False)), output_dir="/out")
    assert not any(
        a.startswith(("--ntasks", "--cpus", "--mem", "--signal")) for a in sbatch_args(plain)
    )
    assert plain.output.startswith("/out/") and plain.error is None
    batch_only = replace(job, signal=parse_signal("B:USR1@30"))
    assert "B:" in (rest_api("v0.0.38").unsupported(batch_only) or "")


# -- at a real site ---------------------------------------------------------------------------

ENV_DUMP = (
    "#!/bin/bash\n"
    "#SBATCH --array=0-3\n"
    "#SBATCH --mail-type=ALL\n"
    "#SBATCH --gpus-per-node=3\n"
    "\n"
    "for v in SLURM_JOB_NAME SLURM_NTASKS SLURM_CPUS_PER_TASK SLURM_MEM_PER_NODE \\\n"
    "         SLURM_ARRAY_JOB_ID SLURM_ARRAY_TASK_ID SLURM_ARRAY_TASK_COUNT; do\n"
    '  echo "$v=${!v}"\n'
    "done\n"
    "srun hostname | wc -l | sed 's/^/tasks=/'\n"
)


@pytest.fixture
def workdir(slurm_sites: list[SiteLayout]) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="opts-", dir=slurm_sites[0].output_dir))
    folder.chmod(0o777)  # REST jobs run as another user
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _options_request(site: Site, workdir: Path) -> SubmitRequest:
    base = request(site, gpus=2)
    spec = replace(
        base.spec,
        name="env dump",
        script=ENV_DUMP,
        workdir=str(workdir),
        ntasks=3,
        cpus_per_task=2,
        mem_per_node_mb=1500,
        batch=BatchOptions(
            output="arr-%A_%a.out",
            requeue=False,
            signal=parse_signal("USR1@30"),
            array=ArrayTask(array_job_id=40, task_id=7, task_count=10, task_min=0, task_max=9),
        ),
    )
    return replace(base, spec=spec)


@pytest.mark.parametrize("backend", ["cli", "rest"])
def test_the_options_hold_inside_the_job_and_at_the_controller(
    backend: str,
    slurm_cluster: LocalSlurm,
    slurm_sites: list[SiteLayout],
    workdir: Path,
) -> None:
    layout = slurm_sites[0] if backend == "cli" else slurm_sites[1]
    executor: Executor
    if backend == "cli":
        executor = SlurmCliExecutor(
            site_of(layout), str(layout.slurm_conf), output_dir=str(workdir)
        )
    else:
        executor = rest_executor(layout)
    req = _options_request(executor.site, workdir)
    site_job_id = executor.submit(req)
    done = wait_for(executor, site_job_id, final, timeout_s=60)
    assert done.state is JobState.COMPLETED and done.allocated_gpus == 2
    assert done.output_path == f"{workdir}/arr-40_7.out"
    lines = dict(
        line.split("=", 1)
        for line in Path(done.output_path).read_text().splitlines()
        if "=" in line
    )
    assert lines == {
        "SLURM_JOB_NAME": "env dump",
        "SLURM_NTASKS": "3",
        "SLURM_CPUS_PER_TASK": "2",
        "SLURM_MEM_PER_NODE": "1500",
        "SLURM_ARRAY_JOB_ID": "40",
        "SLURM_ARRAY_TASK_ID": "7",
        "SLURM_ARRAY_TASK_COUNT": "10",
        "tasks": "3",
    }
    shown = slurm(slurm_cluster, layout, "scontrol", "show", "job", "-o", site_job_id)
    for field in ("NumTasks=3", "CPUs/Task=2", "MinMemoryNode=1500M", "Requeue=0"):
        assert field in shown.split()
    assert "ArrayJobId" not in shown  # one job per task: the script's --array was not applied
    assert not re.search(r"MailType=(?!NONE)", shown)


def test_a_signal_to_the_batch_shell_is_refused_by_rest_with_the_reason(
    slurm_sites: list[SiteLayout], workdir: Path
) -> None:
    executor = rest_executor(slurm_sites[1])
    req = _options_request(executor.site, workdir)
    req = replace(req, spec=replace(req.spec, batch=BatchOptions(signal=parse_signal("B:USR1"))))
    with pytest.raises(SubmissionRejected, match="batch shell"):
        executor.submit(req)


def test_memory_per_gpu_and_exclusive_reach_the_controller(
    slurm_cluster: LocalSlurm, slurm_sites: list[SiteLayout], workdir: Path
) -> None:
    layout = slurm_sites[0]
    executor = SlurmCliExecutor(site_of(layout), str(layout.slurm_conf), output_dir=str(workdir))
    base = request(executor.site, gpus=2, command=("true",))
    req = replace(base, spec=replace(base.spec, mem_per_gpu_mb=700, exclusive=True))
    site_job_id = executor.submit(req)
    wait_for(executor, site_job_id, final)
    shown = slurm(slurm_cluster, layout, "scontrol", "show", "job", "-o", site_job_id).split()
    assert "OverSubscribe=NO" in shown
    assert any(f.startswith("MemPerTres=") and "gpu:700" in f for f in shown), shown


# -- the machines' batch scripts, unchanged ----------------------------------------------------

# Local sites shaped like the machines' GPU nodes (two nodes each), and the names their users
# write in --partition, which the catalogue carries as aliases of the site's partition.
MACHINES = {
    "lumi": (
        SiteRequest(2, 8, "mi250x", cpus_per_node=64, memory_mb=512_000),
        ["standard-g", "small-g"],
    ),
    "leonardo": (
        SiteRequest(2, 4, "a100", cpus_per_node=32, memory_mb=494_000),
        ["boost_usr_prod"],
    ),
    "mn5": (SiteRequest(2, 4, "h100", cpus_per_node=80, memory_mb=512_000), []),
}


@pytest.fixture(scope="module")
def machines() -> Iterator[tuple[LocalSlurm, dict[str, SiteLayout]]]:
    cluster, layouts, base = _start([request for request, _ in MACHINES.values()], dbd=False)
    try:
        yield cluster, dict(zip(MACHINES, layouts, strict=True))
    finally:
        _stop(cluster, base)


def machine_site(name: str, layout: SiteLayout, backend: str) -> Site:
    entry = catalogue_entry(layout, backend)
    request_, aliases = MACHINES[name]
    partition = entry["partitions"][0]  # type: ignore[index]
    partition |= {
        "aliases": aliases,
        "cpus_per_node": request_.cpus_per_node,
        "mem_per_node_gb": request_.memory_mb // 1024,
    }
    return parse_catalogue({"version": 1, "sites": [entry]}, "test").sites[0]


_DIRECTIVE = re.compile(r"^#SBATCH\s+--([a-z-]+)(?:=(\S+))?")


def directives(script: str) -> dict[str, str]:
    """The script's #SBATCH options (long form, as the three scripts write them)."""
    found = {}
    for line in script.splitlines()[1:]:
        if line and not line.startswith("#"):
            break
        match = _DIRECTIVE.match(line)
        if match:
            found[match.group(1)] = match.group(2) or ""
    return found


def _megabytes(text: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([KMGT]?)", text).groups()  # type: ignore[union-attr]
    return (
        int(number)
        * {"": 1, "K": 1, "M": 1, "G": 1024, "T": 1024**2}[unit]
        // (1024 if unit == "K" else 1)
    )


def script_request(path: Path, site: Site, workdir: Path) -> SubmitRequest:
    """What the platform makes of the script (the parser's job; here read by hand), placed
    on the site's partition its --partition names."""
    text = path.read_text()
    opts = directives(text)
    nodes = int(opts["nodes"])
    per_node = int(opts.get("gpus-per-node") or opts["gres"].rsplit(":", 1)[-1])
    hours, minutes, seconds = (int(x) for x in opts["time"].split(":"))
    partition = site.partitions[0]
    if "partition" in opts:
        assert partition.answers_to(opts["partition"])
    spec = JobSpec(
        gpus=nodes * per_node,
        nodes=nodes,
        time_limit_s=hours * 3600 + minutes * 60 + seconds,
        name=opts["job-name"],
        script=text,
        workdir=str(workdir),
        partitions=frozenset({partition.id}) if "partition" in opts else frozenset(),
        ntasks_per_node=int(opts["ntasks-per-node"]),
        cpus_per_task=int(opts["cpus-per-task"]),
        mem_per_node_mb=_megabytes(opts["mem"]) if "mem" in opts else None,
        exclusive="exclusive" in opts,
        batch=BatchOptions(output=opts.get("output"), error=opts.get("error")),
    )
    shape = fit(spec, partition)
    assert isinstance(shape, Shape), shape
    job_id = next(_JOB_IDS)
    return SubmitRequest(
        JobId(job_id), job_tag(job_id), partition, shape, spec, opts["account"], "ana"
    )


def _run_script(
    executor: Executor, script: str, site: Site, layout: SiteLayout
) -> tuple[Path, str, list[str], list[str]]:
    workdir = Path(tempfile.mkdtemp(prefix="script-", dir=layout.output_dir))
    workdir.chmod(0o777)
    req = script_request(SCRIPTS / script, site, workdir)
    site_job_id = executor.submit(req)
    done = wait_for(executor, site_job_id, final, timeout_s=180)
    out = Path(done.output_path or "").read_text() if done.output_path else ""
    assert done.state is JobState.COMPLETED and done.exit_code == 0, (done, out)
    assert done.allocated_gpus == req.shape.allocated_gpus
    err = Path(done.error_path).read_text().splitlines() if done.error_path else []
    return workdir, site_job_id, out.splitlines(), err


def _executor(name: str, layout: SiteLayout, backend: str) -> tuple[Executor, Site]:
    site = machine_site(name, layout, backend)
    assert site.executor is not None
    return make_executor(site.executor.kind, site, **site.executor.as_dict()), site


def test_lumi_g_script_runs_a_task_per_gcd_on_two_nodes(
    machines: tuple[LocalSlurm, dict[str, SiteLayout]],
) -> None:
    layout = machines[1]["lumi"]
    executor, site = _executor("lumi", layout, "cli")
    workdir, site_job_id, out, _err = _run_script(executor, "lumi_g_allreduce.sh", site, layout)
    assert (workdir / f"lumi-allreduce-{site_job_id}.out").is_file()
    ranks = sorted(line for line in out if line.startswith("rank "))
    assert len(ranks) == 16
    for rank in range(16):
        assert any(
            line.startswith(f"rank {rank}/16 local {rank % 8} gcd {rank % 8} threads 7 ")
            for line in ranks
        ), ranks
    assert "job lumi-allreduce on 2 nodes, 16 tasks" in out
    assert out[-1] == f"allreduce sum {sum(range(16))}"
    assert sorted(p.name for p in workdir.iterdir()) == [f"lumi-allreduce-{site_job_id}.out"]


@pytest.mark.parametrize("backend", ["cli", "rest"])
def test_leonardo_booster_script_trains_on_eight_gpus_with_separate_error_file(
    backend: str, machines: tuple[LocalSlurm, dict[str, SiteLayout]]
) -> None:
    layout = machines[1]["leonardo"]
    executor, site = _executor("leonardo", layout, backend)
    workdir, site_job_id, out, err = _run_script(
        executor, "leonardo_booster_train.sh", site, layout
    )
    assert (workdir / f"leo-train-{site_job_id}.out").is_file()
    assert (workdir / f"leo-train-{site_job_id}.err").is_file()
    assert sorted(int(line.split()[1].split("/")[0]) for line in out) == list(range(8))
    assert all(" loss 0.03125" in line and "/8 " in line for line in out), out
    assert sorted(err) == sorted(f"rank {r} done" for r in range(8))
    checkpoint = workdir / "checkpoints" / f"leo-train-{site_job_id}.ckpt"
    assert checkpoint.read_text() == "loss=0.03125\n"  # SLURM_JOB_NAME is the script's name


def test_marenostrum5_acc_script_takes_a_whole_node(
    machines: tuple[LocalSlurm, dict[str, SiteLayout]],
) -> None:
    cluster, layouts = machines
    layout = layouts["mn5"]
    executor, site = _executor("mn5", layout, "cli")
    workdir, site_job_id, out, err = _run_script(executor, "mn5_acc_finetune.sh", site, layout)
    assert out[0] == "shards: 4, cores per shard: 20"
    assert sorted(out[1:]) == [f"shard {s} of 4 mean {s * 100 + 49.5} cores 20" for s in range(4)]
    assert err == []
    shown = slurm(cluster, layout, "scontrol", "show", "job", "-o", site_job_id).split()
    assert "OverSubscribe=NO" in shown and "NumNodes=1" in shown
    assert sorted(p.name for p in workdir.iterdir()) == [
        f"finetune_{site_job_id}.err",
        f"finetune_{site_job_id}.out",
    ]
