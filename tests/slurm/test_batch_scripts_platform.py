"""The user-guide batch scripts of tests/batch_scripts, unchanged, through the whole platform
on real local Slurm sites shaped like the machines they were written for: the script's
--account chooses the project, its --partition (a site's own name, an alias in the catalogue)
or its CPU count chooses the site, the broker submits and follows the job at the site, and
the job's output comes back through the platform's output service.

test_batch_options.py runs the same scripts through the executors alone."""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from aifactories.db.accounts import organisation_by_name, user_by_username
from aifactories.db.models import AllocationRow, JobRow, MembershipRow, ProjectRow
from aifactories.domain.errors import InvalidInput
from aifactories.domain.organisations import Domain
from aifactories.domain.units import SECONDS_PER_HOUR
from aifactories.localslurm import LocalSlurm, SiteLayout
from aifactories.localslurm.sites_file import catalogue_entry
from aifactories.services.core.auth import authenticate
from aifactories.services.core.context import Principal
from aifactories.services.demo import YEAR_S, load_demo
from aifactories.services.jobs.job_output import read_job_output
from aifactories.services.jobs.jobs import JobRequest, submit_job
from tests.slurm.conftest import _start, _stop
from tests.slurm.platform_on_slurm import (
    SlurmPlatform,
    assert_books_balance,
    make_platform,
    slurm_jobs,
)
from tests.slurm.test_batch_options import MACHINES
from tests.slurm.test_cli_executor import slurm

SCRIPTS = Path(__file__).parent.parent / "batch_scripts"

# The projects whose codes the scripts write in --account, one per machine.
ACCOUNTS = {"lumi": "project_465000000", "leonardo": "EUHPC_D00_000", "mn5": "ehpc000"}


@pytest.fixture(scope="module")
def machines() -> Iterator[tuple[LocalSlurm, dict[str, SiteLayout]]]:
    """Three sites, in the catalogue's order: LUMI-like (8 x MI250X GCDs, 64 cores),
    Leonardo-like (4 x A100, 32 cores), MareNostrum-like (4 x H100, 80 cores)."""
    cluster, layouts, base = _start([request for request, _ in MACHINES.values()], dbd=False)
    try:
        yield cluster, dict(zip(MACHINES, layouts, strict=True))
    finally:
        _stop(cluster, base)


def machine_entry(name: str, layout: SiteLayout, backend: str) -> dict[str, object]:
    """The site's catalogue entry: its Slurm partition ``gpu`` with the names the machine's
    users write as aliases, and its node's cores and memory, which placement checks."""
    entry = catalogue_entry(layout, backend)
    request, aliases = MACHINES[name]
    partition = entry["partitions"][0]  # type: ignore[index]
    partition |= {
        "aliases": aliases,
        "cpus_per_node": request.cpus_per_node,
        "mem_per_node_gb": request.memory_mb // 1024,
    }
    return entry


@dataclass
class ScriptPlatform:
    """A platform on the three sites, with the scripts' projects and a member, alice."""

    sp: SlurmPlatform
    alice: Principal
    project_ids: dict[str, int]  # account -> project id

    def submit_script(self, script: str, workdir: Path) -> int:
        text = (SCRIPTS / script).read_text()
        # as `aif submit FILE` sends it: alice's profile names her own project, which the
        # script's --account must win over
        request = JobRequest(script=text, workdir=str(workdir), default_project="aurora-vision")
        return int(submit_job(self.sp.platform.ctx, self.alice, request).id)

    def run(self, job_id: int) -> JobRow:
        self.sp.cycle_until(lambda: self.sp.all_final([job_id]), timeout_s=180)
        return self.sp.job(job_id)

    def read(self, job_id: int, stream: str) -> list[str]:
        view = read_job_output(
            self.sp.platform.ctx,
            self.alice,
            str(job_id),
            stream,  # type: ignore[arg-type]
            executors=self.sp.platform.executors(),
        )
        assert view.exists, (stream, view)
        return view.data.decode().splitlines()


def _add_projects(sp: SlurmPlatform) -> dict[str, int]:
    """The scripts' accounts as projects, alice a member of each, each paid from an
    allocation usable at any site: the script alone must decide where the job runs."""
    ctx = sp.platform.ctx
    now = ctx.clock.now()
    ids = {}
    with ctx.sessions() as session, session.begin():
        organisation = organisation_by_name(session, "Aurora Robotics")
        alice = user_by_username(session, "alice")
        assert organisation is not None and alice is not None
        for code in ACCOUNTS.values():
            project = ProjectRow(
                code=code,
                title=f"user-guide scripts ({code})",
                organisation_id=organisation.id,
                domain=Domain.SCIENCE.value,
                industrial=False,
                priority_weight=ctx.priority_weights.for_project(Domain.SCIENCE, False),
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
                    ends_at=now + YEAR_S,
                    status="open",
                )
            )
            ids[code] = project.id
    return ids


def start(
    tmp_path: Path,
    database_url: str,
    machines: tuple[LocalSlurm, dict[str, SiteLayout]],
    rest: frozenset[str] = frozenset(),
) -> ScriptPlatform:
    """The platform; the machines named in ``rest`` are driven through slurmrestd, the
    others through the Slurm commands."""
    cluster, layouts = machines
    entries = [
        machine_entry(name, layout, "rest" if name in rest else "cli")
        for name, layout in layouts.items()
    ]
    sites_file = tmp_path / "sites.yaml"
    sites_file.write_text(yaml.safe_dump({"version": 1, "sites": entries}, sort_keys=False))
    platform = make_platform(tmp_path, database_url, sites_file)
    tokens = load_demo(platform.ctx).tokens
    sp = SlurmPlatform(platform, tokens, cluster, list(layouts.values()))
    project_ids = _add_projects(sp)
    return ScriptPlatform(sp, authenticate(platform.ctx, tokens["alice"]), project_ids)


@pytest.fixture
def workdir(machines: tuple[LocalSlurm, dict[str, SiteLayout]]) -> Iterator[Path]:
    """An empty folder every site's jobs can write (slurmrestd's jobs run as another user)."""
    folder = Path(tempfile.mkdtemp(prefix="script-", dir=machines[1]["lumi"].output_dir))
    folder.chmod(0o777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def assert_ran_at(
    f: ScriptPlatform, row: JobRow, machines: tuple[LocalSlurm, dict[str, SiteLayout]], name: str
) -> None:
    """Completed at the machine's site, under the project of the script's --account, and
    sent to Slurm's partition ``gpu`` with that account."""
    cluster, layouts = machines
    layout = layouts[name]
    assert (row.state, row.exit_code) == ("completed", 0), (row.state, row.reason)
    assert row.site_id == layout.name and row.partition_id == f"{layout.name}/gpu"
    assert row.project_id == f.project_ids[ACCOUNTS[name]]
    # charged what Slurm measured: every GPU of the shape for the elapsed time, at billing
    # weight 1 (a script that ran for under a second may be charged nothing)
    gpus = row.shape_nodes * row.shape_gpus_per_node  # type: ignore[operator]
    assert row.elapsed_s is not None
    assert row.charged_gpu_seconds == math.ceil(gpus * row.elapsed_s * 1.0)
    assert row.site_job_id is not None
    at_site = [j for j in slurm_jobs(cluster, layout) if j.get("comment") == f.sp.tag(row.id)]
    assert len(at_site) == 1, at_site
    # Slurm keeps account names in lower case (EUHPC_D00_000 is euhpc_d00_000 there)
    assert (at_site[0]["account"], at_site[0]["partition"]) == (ACCOUNTS[name].lower(), "gpu")
    assert str(at_site[0]["job_id"]) == row.site_job_id
    assert_books_balance(f.sp.platform)


def test_lumi_g_script_runs_at_the_site_of_standard_g(
    tmp_path: Path,
    database_url: str,
    machines: tuple[LocalSlurm, dict[str, SiteLayout]],
    workdir: Path,
) -> None:
    f = start(tmp_path, database_url, machines)
    try:
        # standard-g is an alias of the MI250X site's gpu partition only (and 2 nodes of 8
        # GPUs fit nowhere else anyway; the Leonardo test shows an alias steering a job)
        row = f.run(f.submit_script("lumi_g_allreduce.sh", workdir))
        assert_ran_at(f, row, machines, "lumi")
        assert row.warnings is None  # every directive of the script is honoured
        out_name = f"lumi-allreduce-{row.site_job_id}.out"
        assert (row.output_path, row.error_path) == (f"{workdir}/{out_name}", None)
        out = f.read(row.id, "output")
        assert out[0] == "job lumi-allreduce on 2 nodes, 16 tasks"
        ranks = sorted(line for line in out if line.startswith("rank "))
        assert len(ranks) == 16
        for rank in range(16):
            assert any(
                line.startswith(f"rank {rank}/16 local {rank % 8} gcd {rank % 8} threads 7 ")
                for line in ranks
            ), ranks
        assert out[-1] == f"allreduce sum {sum(range(16))}"
        assert [p.name for p in workdir.iterdir()] == [out_name]  # the script cleaned up
    finally:
        f.sp.platform.stop()


@pytest.mark.parametrize("backend", ["cli", "rest"])
def test_leonardo_script_runs_at_the_site_of_boost_usr_prod(
    backend: str,
    tmp_path: Path,
    database_url: str,
    machines: tuple[LocalSlurm, dict[str, SiteLayout]],
    workdir: Path,
) -> None:
    rest = frozenset({"leonardo"}) if backend == "rest" else frozenset()
    f = start(tmp_path, database_url, machines, rest=rest)
    try:
        row = f.run(f.submit_script("leonardo_booster_train.sh", workdir))
        # Without its --partition the job would fit the LUMI-like site too, which comes first
        # in the catalogue: boost_usr_prod, an alias of the A100 site's gpu, kept it off.
        assert_ran_at(f, row, machines, "leonardo")
        assert row.warnings is None
        name = f"leo-train-{row.site_job_id}"
        assert (row.output_path, row.error_path) == (
            f"{workdir}/{name}.out",
            f"{workdir}/{name}.err",
        )
        out = f.read(row.id, "output")
        assert sorted(int(line.split()[1].split("/")[0]) for line in out) == list(range(8))
        assert all(" loss 0.03125" in line and "/8 " in line for line in out), out
        assert sorted(f.read(row.id, "error")) == sorted(f"rank {r} done" for r in range(8))
        # SLURM_JOB_NAME is the script's --job-name, not the broker's tagged name
        assert (workdir / "checkpoints" / f"{name}.ckpt").read_text() == "loss=0.03125\n"
    finally:
        f.sp.platform.stop()


def test_marenostrum5_script_without_a_partition_runs_where_80_cores_fit(
    tmp_path: Path,
    database_url: str,
    machines: tuple[LocalSlurm, dict[str, SiteLayout]],
    workdir: Path,
) -> None:
    f = start(tmp_path, database_url, machines)
    try:
        job_id = f.submit_script("mn5_acc_finetune.sh", workdir)
        # The sites before it in the catalogue have 4 GPUs per node too, but 64 and 32
        # cores: only the H100 site has the 4 x 20 the script asks for.
        row = f.run(job_id)
        assert_ran_at(f, row, machines, "mn5")
        # --qos is the site's business: accepted with a warning that says so, not dropped
        assert row.warnings is not None and len(row.warnings) == 1, row.warnings
        assert row.warnings[0].startswith("line 4: --qos=acc_debug accepted but not acted on")
        name = f"finetune_{row.site_job_id}"
        assert (row.output_path, row.error_path) == (
            f"{workdir}/{name}.out",
            f"{workdir}/{name}.err",
        )
        out = f.read(row.id, "output")
        assert out[0] == "shards: 4, cores per shard: 20"
        assert sorted(out[1:]) == [
            f"shard {s} of 4 mean {s * 100 + 49.5} cores 20" for s in range(4)
        ]
        assert f.read(row.id, "error") == []
        cluster, layouts = machines
        site_job_id = str(row.site_job_id)
        shown = slurm(cluster, layouts["mn5"], "scontrol", "show", "job", "-o", site_job_id)
        assert "OverSubscribe=NO" in shown.split() and "NumNodes=1" in shown.split()
    finally:
        f.sp.platform.stop()


def _lumi_script_with(old: str, new: str) -> str:
    text = (SCRIPTS / "lumi_g_allreduce.sh").read_text()
    assert old in text
    return text.replace(old, new)


def test_an_unknown_partition_or_too_many_cores_are_refused_at_submission(
    tmp_path: Path,
    database_url: str,
    machines: tuple[LocalSlurm, dict[str, SiteLayout]],
    workdir: Path,
) -> None:
    f = start(tmp_path, database_url, machines)
    try:
        ctx = f.sp.platform.ctx
        nowhere = _lumi_script_with("--partition=standard-g", "--partition=nowhere")
        with pytest.raises(InvalidInput) as refused:
            submit_job(ctx, f.alice, JobRequest(script=nowhere, workdir=str(workdir)))
        assert refused.value.field == "partition" and "'nowhere'" in str(refused.value)
        assert refused.value.limit == "known partitions: boost_usr_prod, gpu, small-g, standard-g"
        # 8 tasks x 9 cores on a LUMI-G node of 64
        greedy = _lumi_script_with("--cpus-per-task=7", "--cpus-per-task=9")
        with pytest.raises(InvalidInput) as refused:
            submit_job(ctx, f.alice, JobRequest(script=greedy, workdir=str(workdir)))
        lumi = machines[1]["lumi"].name
        assert refused.value.field == "cpus_per_task"
        assert f"8 task(s) x 9 cores = 72 cores per node; {lumi}/gpu has 64" in str(refused.value)
        with ctx.reads() as session:
            assert session.execute(select(JobRow)).first() is None
    finally:
        f.sp.platform.stop()
