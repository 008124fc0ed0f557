from __future__ import annotations

from pathlib import Path

import pytest

from aifactories.catalogue.loader import load_catalogue, load_default_catalogue
from aifactories.domain.errors import CatalogueError


def test_default_catalogue_is_the_federation() -> None:
    catalogue = load_default_catalogue()
    assert len(catalogue.sites) == 19
    assert {s.id for s in catalogue.operational_sites} == {
        "bsc-aif",
        "it4lia",
        "lumi-aif",
        "meluxina-ai",
        "brain-plus-plus",
        "jaif",
        "slaif",
        "czai",
    }
    jaif = catalogue.partition("jaif/booster")
    assert jaif is not None and (jaif.gpu_model, jaif.total_gpus) == ("GH200", 24_000)
    assert all(site.sources for site in catalogue.sites)
    assert all(not site.partitions for site in catalogue.sites if not site.operational)
    assert catalogue.gpu_models == ("A100", "GH200", "H100", "H200", "MI250X")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sites: []", "sites: List should have at least 1 item"),
        ("- a\n- b", "a catalogue is a mapping"),
        (
            "sites: [{id: x, name: X, country: Germany, supercomputer: S, status: planned}]",
            "sites[0] (x).country",
        ),
        (
            "sites: [{id: x, name: X, country: DE, supercomputer: S, status: operational,"
            " partitions: [{name: p, gpu_model: A100, gpu_memory_gb: 40, gpus_per_node: 4,"
            " nodes: 0}]}]",
            "sites[0] (x).partitions[0] (p).nodes",
        ),
        (
            "sites: [{id: x, name: X, country: DE, supercomputer: S, status: operational}]",
            "operational but has no partitions",
        ),
        (
            "sites: [{id: x, name: X, country: DE, supercomputer: S, status: maybe}]",
            "sites[0] (x).status",
        ),
        (
            "sites: [{id: x, name: X, country: DE, supercomputer: S, status: planned},"
            " {id: x, name: Y, country: DE, supercomputer: S, status: planned}]",
            "site ids must be unique, repeated: x",
        ),
        (
            "sites: [{id: x, name: X, country: DE, supercomputer: S, status: planned,"
            " colour: red}]",
            "sites[0] (x).colour",
        ),
        ("sites: [ {", "not valid YAML"),
    ],
)
def test_bad_catalogue_names_file_and_entry(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(CatalogueError) as error:
        load_catalogue(path)
    assert str(path) in error.value.message
    assert expected in error.value.message


def test_missing_catalogue_file(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="cannot read the catalogue file"):
        load_catalogue(tmp_path / "nope.yaml")
