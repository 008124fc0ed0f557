"""A trace's own machine: an SWF log's header, the Alibaba node list; chosen by ``sites: auto``
(the default, when the trace describes one), insisted on by ``sites: trace``, and said."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from aifactories.catalogue.loader import Catalogue, parse_catalogue
from aifactories.cli.main import app
from aifactories.domain.errors import InvalidInput
from aifactories.services.twin.scenario import sites_of
from aifactories.twin.scenario import Overrides, ScenarioSpec, default_scenario, with_overrides
from aifactories.twin.trace_sites import SWF_MODEL, trace_machine
from aifactories.twin.traces import TraceError
from tests.twin.traces.support import Write

HEADER = "; Computer: Toy\n; Installation: Lab\n; MaxNodes: 4\n; MaxProcs: 16\n;\n"
JOB = "1 0 -1 5 4 -1 -1 -1 -1 -1 1 3 1 -1 -1 -1 -1 -1\n"
CONFIGURED = parse_catalogue(
    yaml.safe_load("""
sites:
  - {id: conf, name: C, country: DE, supercomputer: C, status: operational,
     partitions: [{name: p, gpu_model: A100, gpu_memory_gb: 40, gpus_per_node: 4, nodes: 1}]}
"""),
    "configured",
)


def _configured() -> Catalogue:
    return CONFIGURED


def _resolve(path: Path | None, fmt: str = "swf", sites: str | None = None) -> tuple[str, str]:
    given = Overrides(trace=path, trace_format=fmt if path else None, sites=sites)
    catalogue, said = sites_of(with_overrides(default_scenario(), given), _configured)
    return catalogue.sites[0].id, said


def test_swf_header_is_one_site_of_its_nodes_and_processors(write: Write) -> None:
    machine = trace_machine(write("toy.swf", HEADER + JOB), "swf")
    assert machine is not None
    (site,) = machine.catalogue.sites
    (partition,) = site.partitions
    assert (site.id, site.name, site.country) == ("toy", "Toy (Lab)", "XX")
    assert (partition.nodes, partition.gpus_per_node, partition.gpu_model) == (4, 4, SWF_MODEL)
    assert "4 nodes x 4 processors" in machine.description


def test_swf_header_without_nodes_makes_each_processor_a_node(tmp_path: Path) -> None:
    path = tmp_path / "p.swf.gz"
    path.write_bytes(gzip.compress(("; MaxProcs: 8\n" + JOB).encode()))
    machine = trace_machine(path, "swf")
    assert machine is not None
    (partition,) = machine.catalogue.sites[0].partitions
    assert (partition.nodes, partition.gpus_per_node) == (8, 1)


def test_swf_header_that_cannot_divide_names_the_line(write: Write) -> None:
    with pytest.raises(TraceError, match="MaxProcs") as caught:
        trace_machine(write("bad.swf", "; MaxNodes: 3\n; MaxProcs: 16\n" + JOB), "swf")
    assert caught.value.line == 2


def test_default_sites_are_the_traces_machine_else_the_catalogue(write: Write) -> None:
    assert ScenarioSpec().sites == "auto"
    swf = write("toy.swf", HEADER + JOB)
    machine = trace_machine(swf, "swf")
    assert machine is not None and _resolve(swf) == ("toy", machine.description)
    # A header without a machine, and the generator: the platform's catalogue, and it says so.
    bare = write("bare.swf", "; Version: 2.2\n" + JOB)
    said = "the platform's catalogue (the workload describes no machine)"
    assert _resolve(bare) == ("conf", said)
    assert _resolve(None)[0] == "conf"
    # Named sites are used as named, a trace or not.
    assert _resolve(swf, sites="catalogue") == ("conf", "the platform's catalogue")


def test_sites_trace_refuses_a_trace_without_a_machine(write: Write) -> None:
    assert _resolve(write("toy.swf", HEADER + JOB), sites="trace")[0] == "toy"
    with pytest.raises(InvalidInput, match="does not describe its machine") as caught:
        _resolve(write("bare.swf", "; Version: 2.2\n" + JOB), sites="trace")
    assert caught.value.field == "sites" and caught.value.limit


def test_alibaba_machine_is_its_node_list_by_model(write: Write, tmp_path: Path) -> None:
    pods = write("openb_pod_list_gpuspec33.csv", "name\n")
    write(
        "openb_node_list_gpu_node.csv",
        "sn,cpu_milli,memory_mib,gpu,model\n"
        "n0,1,1,8,G2\nn1,1,1,8,G2\nn2,1,1,2,T4\nn3,1,1,4,V100M32\nn4,1,1,0,\n",
    )
    machine = trace_machine(pods, "alibaba")
    assert machine is not None
    (site,) = machine.catalogue.sites
    assert [(p.name, p.gpu_model, p.nodes, p.gpus_per_node) for p in site.partitions] == [
        ("g2-8gpu", "G2", 2, 8),
        ("t4-2gpu", "T4", 1, 2),
        ("v100m32-4gpu", "V100M32", 1, 4),
    ]
    assert {p.gpu_memory_gb for p in site.partitions} == {16, 32}  # G2: the stated placeholder
    (tmp_path / "elsewhere").mkdir()
    assert trace_machine(write("elsewhere/pods.csv", "name\n"), "alibaba") is None


def test_formats_that_do_not_describe_a_cluster_have_no_machine(write: Write) -> None:
    assert trace_machine(write("philly.csv", "x\n"), "philly") is None


def test_the_console_says_which_machine_and_what_the_reader_kept(
    write: Write, tmp_path: Path
) -> None:
    swf = write("toy.swf", HEADER + JOB + "2 1 -1 0 4 -1 -1 -1 -1 -1 1 3 1 -1 -1 -1 -1 -1\n")
    env = {"AIFACTORIES_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"}
    args = ["simulate", "--trace", str(swf), "--format", "swf", "--policy", "fifo"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "out")], env=env)
    assert result.exit_code == 0, result.output
    assert "workload: toy.swf: 2 jobs, 0 skipped; zero runtime (kept): 1" in result.output
    assert "sites: the trace's own machine: Toy (Lab), 4 nodes x 4 processors" in result.output
    assert "fifo: no job carries a constraint" in result.output
