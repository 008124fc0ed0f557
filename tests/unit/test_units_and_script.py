from __future__ import annotations

import pytest

from aifactories.domain.errors import InvalidInput, MalformedScript
from aifactories.domain.jobs import JobSpec, Shape, shape_on
from aifactories.domain.units import format_duration, parse_time_limit, reservation_gpu_seconds
from aifactories.services.jobs.job_script import parse_script


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30", 1800),
        ("30:15", 1815),
        ("2:00:00", 7200),
        ("1-0", 86400),
        ("1-2:30", 95400),
        ("1-02:30:05", 95405),
        (" 10 ", 600),
    ],
)
def test_slurm_time_formats(text: str, seconds: int) -> None:
    assert parse_time_limit(text) == seconds


@pytest.mark.parametrize("text", ["", "two hours", "1:2:3:4", "-5", "1-", "1h"])
def test_bad_times_name_the_field(text: str) -> None:
    with pytest.raises(InvalidInput) as error:
        parse_time_limit(text, field="time_limit")
    assert error.value.field == "time_limit" and "HH:MM:SS" in error.value.message


def test_format_duration() -> None:
    assert format_duration(95405) == "1-02:30:05"
    assert format_duration(59.6) == "00:01:00"


def test_reservation_rounds_up() -> None:
    assert reservation_gpu_seconds(3, 100, 2.2) == 660
    assert reservation_gpu_seconds(1, 1, 0.33) == 1


@pytest.mark.parametrize(
    ("gpus", "nodes", "per_node", "count", "expected"),
    [
        (4, None, 4, 10, Shape(1, 4, exclusive=False)),
        (6, None, 4, 10, Shape(2, 4, exclusive=True)),  # whole nodes for a multi-node job
        (8, 2, 4, 10, Shape(2, 4, exclusive=True)),
        (8, 2, 8, 10, Shape(2, 8, exclusive=True)),
        (2, 1, 4, 10, Shape(1, 2, exclusive=False)),
        (6, 4, 4, 10, None),  # uneven
        (12, 1, 4, 10, None),  # too many per node
        (48, None, 4, 10, None),  # more nodes than the partition has
    ],
)
def test_shapes(
    gpus: int, nodes: int | None, per_node: int, count: int, expected: Shape | None
) -> None:
    spec = JobSpec(gpus=gpus, nodes=nodes, time_limit_s=60)
    assert shape_on(spec, per_node, count) == expected


def test_script_directives() -> None:
    d = parse_script(
        "#!/bin/bash\n#SBATCH -J train -t 1:00:00\n#SBATCH --gres=gpu:h100:4 -N 2\n"
        "#SBATCH --output=x.out --mem=100G\n# a comment\n\n#AIF --countries=de,fi\n"
        "#AIF --min-gpu-memory=80G --runtime=30\nsrun python t.py\n#SBATCH --gpus=99\n"
    )
    assert (d.name, d.time_limit_s, d.gpu_model, d.gpus_per_node, d.nodes) == (
        "train",
        3600,
        "h100",
        4,
        2,
    )
    assert d.countries == ["DE", "FI"] and d.min_gpu_memory_gb == 80 and d.runtime_s == 1800
    assert d.gpus is None  # directives after the first command are not read, as in sbatch
    assert d.output == "x.out" and d.mem_mb == 100 * 1024  # honoured now, not dropped


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("", "empty"),
        ("#SBATCH --gpus=lots\n", "line 1: --gpus wants a whole number"),
        ("#!/bin/sh\n#SBATCH --nodes=2-4\n", "line 2: --nodes=2-4"),
        ("#SBATCH --gres=gpu:a:b:4\n", "write gpu:N"),
        ("#SBATCH --frobnicate\n", "unsupported option --frobnicate"),
        ("#SBATCH --time=soon\n", "line 1 --time"),
        ("#SBATCH --job-name 'unclosed\n", "line 1: cannot read"),
    ],
)
def test_malformed_scripts_name_the_line(script: str, message: str) -> None:
    with pytest.raises((MalformedScript, InvalidInput)) as error:
        parse_script(script)
    assert message in error.value.message


def test_memory_per_node_and_per_gpu_are_mutually_exclusive_as_in_sbatch() -> None:
    from aifactories.services.jobs.job_script import parse_directives

    with pytest.raises(MalformedScript) as refused:
        parse_directives("#!/bin/sh\n#SBATCH --mem=64G\n", ["--mem-per-gpu=16G"])
    assert refused.value.field == "mem" and "mutually" not in refused.value.message
    assert parse_directives(None, ["--mem=64G"]).mem_mb == 65536
