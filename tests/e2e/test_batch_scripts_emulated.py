"""The user-guide batch scripts of tests/batch_scripts, unchanged, through the real platform
(``aif up`` as a process) on emulated sites shaped like the machines they were written for,
submitted with the real CLI from a folder holding the script: the script's --account
chooses the project, its --partition (an alias in the catalogue) or its cores the site, and
``aif logs`` shows what each script prints. tests/slurm/test_batch_scripts_platform.py runs
the same scripts on local Slurm clusters."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from aifactories.db.accounts import organisation_by_name, user_by_username
from aifactories.db.engine import make_engine
from aifactories.db.models import AllocationRow, MembershipRow, ProjectRow
from aifactories.domain.organisations import Domain
from aifactories.domain.units import SECONDS_PER_HOUR
from tests.e2e.server import Server

pytestmark = pytest.mark.slow

SCRIPTS = Path(__file__).parent.parent / "batch_scripts"

# The machines as the scripts know them (tests/batch_scripts/README.md): LUMI-G with 8 GCDs
# and 64 cores per node, Leonardo Booster with 4 A100, 32 cores and 512 GB, MareNostrum 5
# ACC with 4 H100 and 80 cores (the only site where the MN5 script's 4 x 20 cores fit).
CATALOGUE = """
sites:
  - {id: lumi-aif, name: LUMI AI Factory, country: FI, supercomputer: LUMI, status: operational,
     partitions: [{name: gpu, gpu_model: MI250X, gpu_memory_gb: 64, gpus_per_node: 8, nodes: 2,
                   cpus_per_node: 64, mem_per_node_gb: 512, aliases: [standard-g, small-g]}]}
  - {id: it4lia, name: IT4LIA, country: IT, supercomputer: Leonardo, status: operational,
     partitions: [{name: booster, gpu_model: A100, gpu_memory_gb: 64, gpus_per_node: 4,
                   nodes: 2, cpus_per_node: 32, mem_per_node_gb: 512,
                   aliases: [boost_usr_prod]}]}
  - {id: bsc-aif, name: BSC AI Factory, country: ES, supercomputer: MareNostrum 5,
     status: operational,
     partitions: [{name: acc, gpu_model: H100, gpu_memory_gb: 64, gpus_per_node: 4, nodes: 2,
                   cpus_per_node: 80, mem_per_node_gb: 512}]}
"""
# script -> (its --account, the site its --partition or shape leads to)
MACHINES = {
    "lumi_g_allreduce.sh": ("project_465000000", "lumi-aif"),
    "leonardo_booster_train.sh": ("EUHPC_D00_000", "it4lia"),
    "mn5_acc_finetune.sh": ("ehpc000", "bsc-aif"),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("platform")
    (home / "catalogue.yaml").write_text(CATALOGUE)
    srv = Server(
        home,
        f"sqlite:///{home / 'aif.db'}",
        extra_env={"AIFACTORIES_CATALOGUE": str(home / "catalogue.yaml")},
    )
    # The demo's users first; the projects are added while the platform is stopped, as an
    # operator changes the database offline, then it starts again on the same database.
    srv.start("--demo", "--time-factor", "1")  # the scripts' time limits, really
    srv.stop()
    _add_projects(srv)
    srv.start("--time-factor", "1")
    try:
        srv.extra_env["AIFACTORIES_TOKEN"] = srv.token("alice")
        yield srv
    finally:
        srv.stop()


def _add_projects(server: Server) -> None:
    """The scripts' accounts as projects (the platform has no command that names a project's
    code: awards make their own), alice a member of each, each paid from an allocation
    usable at any site: the script alone must decide where the job runs."""
    engine = make_engine(server.database_url)
    try:
        with Session(engine) as session, session.begin():
            organisation = organisation_by_name(session, "Aurora Robotics")
            alice = user_by_username(session, "alice")
            assert organisation is not None and alice is not None
            now = time.time()
            for code, _site in MACHINES.values():
                project = ProjectRow(
                    code=code,
                    title=f"user-guide scripts ({code})",
                    organisation_id=organisation.id,
                    domain=Domain.SCIENCE.value,
                    industrial=False,
                    priority_weight=1.0,
                )
                session.add(project)
                session.flush()
                session.add(MembershipRow(project_id=project.id, user_id=alice.id, role="member"))
                session.add(
                    AllocationRow(
                        project_id=project.id,
                        site_id=None,
                        granted_gpu_seconds=1_000 * SECONDS_PER_HOUR,
                        reserved_gpu_seconds=0,
                        used_gpu_seconds=0,
                        starts_at=now - 86400,
                        ends_at=now + 365 * 86400,
                        status="open",
                    )
                )
    finally:
        engine.dispose()


@pytest.fixture
def submission_folder() -> Iterator[Path]:
    """Where the member submits from: a folder the job's user may read (pytest's are 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="aif-scripts-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def run_script(server: Server, folder: Path, script: str) -> tuple[dict[str, Any], str]:
    """``aif submit --wait --json SCRIPT`` from ``folder``, holding an unchanged copy of
    the script; the job at its end, and what the command said on standard error."""
    shutil.copy2(SCRIPTS / script, folder / script)
    assert (folder / script).read_bytes() == (SCRIPTS / script).read_bytes()
    done = server.aif("submit", "--wait", "--json", script, cwd=folder)
    assert done.stdout, done.stderr
    job: dict[str, Any] = json.loads(done.stdout)
    account, site = MACHINES[script]
    assert (job["state"], job["exit_code"]) == ("completed", 0), (job, done.stderr)
    assert done.returncode == 0, done.stderr
    assert (job["project"], job["site_id"]) == (account, site)
    # the job wrote nothing into the member's folder: it ran in its own, staged with links
    assert [p.name for p in folder.iterdir()] == [script]
    return job, done.stderr


def logs(server: Server, job: dict[str, Any], *options: str) -> list[str]:
    shown = server.aif("logs", *options, str(job["id"]))
    assert shown.returncode == 0, shown.stderr
    return shown.stdout.splitlines()


def test_lumi_g_script(server: Server, submission_folder: Path) -> None:
    job, said = run_script(server, submission_folder, "lumi_g_allreduce.sh")
    assert "warning" not in said  # every directive of the script is honoured
    assert job["partition_id"] == "lumi-aif/gpu"
    output = Path(job["output_path"])
    assert (output.name, job["error_path"]) == (f"lumi-allreduce-{job['id']}.out", None)
    out = logs(server, job)
    assert out[0] == "job lumi-allreduce on 2 nodes, 16 tasks"
    ranks = [line for line in out if line.startswith("rank ")]
    assert len(ranks) == 16
    for rank in range(16):
        wanted = f"rank {rank}/16 local {rank % 8} gcd {rank % 8} threads 7 on "
        assert sum(line.startswith(wanted) for line in ranks) == 1, ranks
    assert out[-1] == "allreduce sum 120"
    # the script cleaned up after itself in the job's own folder
    assert not [p for p in output.parent.iterdir() if p.name.startswith(("reduce_", "select_"))]


def test_leonardo_booster_script(server: Server, submission_folder: Path) -> None:
    job, said = run_script(server, submission_folder, "leonardo_booster_train.sh")
    assert "warning" not in said
    assert job["partition_id"] == "it4lia/booster"
    name = f"leo-train-{job['id']}"
    output, error = Path(job["output_path"]), Path(job["error_path"])
    assert (output.name, error.name) == (f"{name}.out", f"{name}.err")
    out = logs(server, job)
    assert sorted(int(line.split()[1].split("/")[0]) for line in out) == list(range(8))
    assert all("/8 " in line and line.endswith(" loss 0.03125") for line in out), out
    assert sorted(logs(server, job, "--error")) == sorted(f"rank {r} done" for r in range(8))
    # rank 0's checkpoint, in the job's own folder (its SLURM_JOB_NAME is --job-name)
    assert (output.parent / "checkpoints" / f"{name}.ckpt").read_text() == "loss=0.03125\n"


def test_marenostrum5_script(server: Server, submission_folder: Path) -> None:
    job, said = run_script(server, submission_folder, "mn5_acc_finetune.sh")
    # --qos is the site's business: accepted, with a warning that says so
    assert "warning:" in said and "--qos=acc_debug" in said, said
    assert job["partition_id"] == "bsc-aif/acc"
    output, error = Path(job["output_path"]), Path(job["error_path"])
    assert (output.name, error.name) == (f"finetune_{job['id']}.out", f"finetune_{job['id']}.err")
    out = logs(server, job)
    assert out[0] == "shards: 4, cores per shard: 20"
    assert sorted(out[1:]) == [f"shard {s} of 4 mean {s * 100 + 49.5} cores 20" for s in range(4)]
    assert logs(server, job, "--error") == []
