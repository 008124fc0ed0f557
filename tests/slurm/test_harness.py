"""The harness itself: sites are independent clusters with fake GPUs and their own state."""

from __future__ import annotations

import subprocess

from aifactories.localslurm import LocalSlurm, SiteLayout


def _run(cluster: LocalSlurm, layout: SiteLayout, *args: str) -> str:
    out = subprocess.run(
        list(args), env=cluster.env(layout), capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_each_site_is_its_own_cluster_with_fake_gpus(
    slurm_cluster: LocalSlurm, slurm_sites: list[SiteLayout]
) -> None:
    names = set()
    for layout in slurm_sites:
        nodes = _run(slurm_cluster, layout, "sinfo", "-h", "-N", "-o", "%N %G %t").split("\n")
        rows = [row.split() for row in nodes if row]
        assert {r[0] for r in rows} == set(layout.node_names())
        assert all(r[1] == "gpu:a100:4" and r[2] == "idle" for r in rows)
        names.add(_run(slurm_cluster, layout, "scontrol", "show", "config").count(layout.name))
    assert len(slurm_sites) == 3


def test_a_gpu_job_sees_its_devices(
    slurm_cluster: LocalSlurm, slurm_sites: list[SiteLayout], tmp_path: object
) -> None:
    layout = slurm_sites[0]
    job = _run(
        slurm_cluster,
        layout,
        "sbatch",
        "--parsable",
        "--wait",
        "--gres=gpu:a100:2",
        "-o",
        "/dev/null",
        "--wrap",
        'test "$CUDA_VISIBLE_DEVICES" = 0,1 && test "$SLURM_CLUSTER_NAME" = site1',
    ).strip()
    assert job.startswith("1000")  # FirstJobId tells the site: 100001.. is site1
    state = _run(slurm_cluster, layout, "squeue", "-h", "-t", "all", "-j", job, "-o", "%T")
    assert state.strip() == "COMPLETED"
