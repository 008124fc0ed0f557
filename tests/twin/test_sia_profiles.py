"""A Pollux or Sia workload with its profiles named in the scenario: the jobs priced by them,
the speed matrix per application from them, and the trace's own cluster as the sites."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from aifactories.catalogue.loader import Catalogue, parse_catalogue
from aifactories.domain.errors import InvalidInput
from aifactories.services.twin.scenario import resolved
from aifactories.services.twin.simulate import prepare, simulate
from aifactories.twin.scenario import read_scenario, validate_spec
from aifactories.twin.trace_clusters_dl import dl_cluster
from aifactories.twin.traces._profiles import class_speeds
from tests.twin.traces.support import SHARED_TRACES

SIA = SHARED_TRACES / "sia-hetero"
POLLUX = SHARED_TRACES / "philly-pollux" / "pollux-workloads"
pytestmark = pytest.mark.skipif(not SIA.is_dir(), reason="shared traces absent")


def _no_catalogue() -> Catalogue:
    raise AssertionError("the trace brings its own cluster; the catalogue is not read")


def _pollux_cluster() -> Catalogue:
    cluster = dl_cluster("pollux")
    assert cluster is not None
    return parse_catalogue({"version": 1, "sites": [cluster[0]]}, "test")


def _scenario(folder: Path, trace: dict[str, object], policies: list[str]) -> Path:
    path = folder / "scenario.yaml"
    data = {"policies": policies, "workload": {"trace": trace}}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_a_sia_scenario_names_its_profiles_and_runs_on_sia_s_cluster(tmp_path: Path) -> None:
    # Both paths relative to the scenario file: a folder with the scenario can be moved.
    workload = SIA / "workloads" / "saturn" / "workload-1.csv"  # 22 jobs of 10 or 14 GPUs
    trace = {
        "path": str(Path("..") / workload.relative_to(SIA.parent)),
        "format": "sia",
        "profiles": str(Path("..") / "sia-hetero" / "profiles"),
    }
    folder = tmp_path / "study"
    (folder).mkdir()
    (tmp_path / "sia-hetero").symlink_to(SIA)
    prepared = prepare(read_scenario(_scenario(folder, trace, ["fifo"])), _no_catalogue)
    partitions = {p.gpu_model: p.total_gpus for p in prepared.catalogue.sites[0].partitions}
    assert partitions == {"T4": 24, "RTX2080Ti": 24, "A100-40GB": 16}
    assert len(prepared.trace.jobs) == 160
    # The speed matrix per application from the same profiles: the runtimes' own GPU (the
    # Pollux T4 profile) is 1.0, the A100 runs cifar10 faster as measured.
    matrix = prepared.setups[0].speed_by_class
    assert matrix["cifar10"]["T4"] == 1.0 and matrix["cifar10"]["A100-40GB"] > 2
    runs, _ = simulate(prepared)
    # Every job runs: a gang of 10 GPUs is packed on the nodes it gets (the profile's packing
    # on 4-GPU nodes, 3 nodes, divides neither 4- nor 8-GPU nodes evenly).
    assert all(r.end_s is not None for r in runs[0].results)
    by_id = {job.job_id: job for job in prepared.trace.jobs}
    on_a100 = [r for r in runs[0].results if r.gpu_model == "A100-40GB" and r.end_s]
    assert on_a100, "FIFO fills the A100s too"
    for result in on_a100:
        job = by_id[result.job_id]
        speed = matrix[job.workload_class or ""]["A100-40GB"]
        assert result.runtime_s == pytest.approx(job.runtime_s / speed)


def test_the_resolved_scenario_keeps_the_profiles_relative_to_its_folder(tmp_path: Path) -> None:
    trace = {
        "path": str(POLLUX / "workload-6.csv"),
        "format": "pollux",
        "limit": 5,
        "profiles": str(SIA / "profiles"),
    }
    scenario = read_scenario(_scenario(tmp_path, trace, ["tiresias_las"]))
    prepared = prepare(scenario, _no_catalogue)
    assert prepared.catalogue.sites[0].partitions[0].total_gpus == 64  # Pollux: 16 x 4 T4
    out = tmp_path / "run"
    spec = resolved(scenario, prepared.catalogue, prepared.trace_sha256, out)
    written = spec.workload.trace
    assert written is not None and written.profiles is not None
    assert not Path(written.profiles).is_absolute()
    assert (out / written.profiles).resolve() == (SIA / "profiles").resolve()


def test_profiles_with_another_format_or_missing_say_so(tmp_path: Path) -> None:
    philly = {"path": str(SHARED_TRACES / "philly-pollux" / "philly.csv"), "format": "philly"}
    with pytest.raises(InvalidInput, match="only the pollux and sia formats use profiles"):
        given = {**philly, "limit": 3, "profiles": "x"}
        prepare(read_scenario(_scenario(tmp_path, given, ["fifo"])), _pollux_cluster)
    lost = {"path": str(POLLUX / "workload-1.csv"), "format": "pollux", "profiles": "nowhere"}
    with pytest.raises(InvalidInput, match=r"nowhere"):
        prepare(read_scenario(_scenario(tmp_path, lost, ["fifo"])), _no_catalogue)
    with pytest.raises(InvalidInput, match="gpu_profile"):
        validate_spec({"workload": {"trace": {**lost, "gpu_profile": "h100"}}}, "test")


def test_the_speed_matrix_is_relative_to_the_runtimes_profile() -> None:
    pollux = class_speeds(SIA / "profiles")
    assert set(pollux) == {"bert", "cifar10", "deepspeech2", "imagenet", "ncf", "yolov3"}
    assert all(row["T4"] == 1.0 for row in pollux.values())
    # Priced on the A100 instead: its own model is 1.0, the T4 slower for every application.
    a100 = class_speeds(SIA / "profiles", "dgx-ext")
    assert all(row["A100-40GB"] == 1.0 and row["T4"] < 1.0 for row in a100.values())
