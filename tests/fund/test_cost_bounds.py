"""A cost model file cannot make costs absurd: each figure within what a real AI factory can
have, numbers only as numbers (no YAML booleans, no quoted text), sources that are more than
blanks, and no partition or GPU model whose derived cost per GPU-hour is not finite or above
EUR 1,000 (the reviewer's files of issue 15: a life of 1e-310 years priced LUMI-G at inf)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aifactories.catalogue.loader import Catalogue, parse_catalogue
from aifactories.domain.errors import InvalidInput
from aifactories.fund.cost_model import load_cost_model


def _catalogue(nodes: int = 10) -> Catalogue:
    site = {
        "id": "test",
        "name": "Test factory",
        "country": "ES",
        "supercomputer": "Test",
        "status": "operational",
        "carbon_g_per_kwh": 250.0,
        "partitions": [
            {
                "name": "gpu",
                "gpu_model": "H100",
                "gpu_memory_gb": 80,
                "gpus_per_node": 4,
                "nodes": nodes,
            }
        ],
    }
    return parse_catalogue({"sites": [site]}, "test catalogue")


def _refused(tmp_path: Path, text: str, catalogue: Catalogue | None = None) -> str:
    path = tmp_path / "mine.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInput) as caught:
        load_cost_model(catalogue or _catalogue(), path)
    assert str(path) in caught.value.message  # the file is named
    return caught.value.message


def _partition(field: str, value: str, source: str = '"our books"') -> str:
    return f"partitions:\n  test/gpu:\n    {field}: {{value: {value}, source: {source}}}\n"


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("life_years", "1.0e-310", "life_years: value must be a number in [0.5, 30]"),
        ("life_years", "0.1", "life_years: value must be a number in [0.5, 30]"),
        ("life_years", ".inf", "life_years: value must be a number in [0.5, 30]"),
        ("accelerator_kw", "0.001", "accelerator_kw: value must be a number in [0.01, 20]"),
        ("accelerator_kw", "1.0e6", "accelerator_kw: value must be a number in [0.01, 20]"),
        ("pue", "3.5", "pue: value must be a number in [1, 3]"),
        ("pue", ".nan", "pue: value must be a number in [1, 3]"),
        ("capital_eur", "-5", "capital_eur: value must be a number in (0,"),
        ("capital_eur", "1.0e15", "capital_eur: value must be a number in (0,"),
        ("electricity_eur_per_mwh", "-1", "electricity_eur_per_mwh: value must be a number in [0,"),
        ("electricity_eur_per_mwh", ".inf", "electricity_eur_per_mwh: value must be a number"),
        ("operating_eur_per_year", "-1", "operating_eur_per_year: value must be a number in [0,"),
        ("operating_eur_per_year", ".inf", "operating_eur_per_year: value must be a number"),
    ],
)
def test_figures_outside_realistic_bounds_are_refused(
    tmp_path: Path, field: str, value: str, expected: str
) -> None:
    assert expected in _refused(tmp_path, _partition(field, value))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", "value must be a number, got True"),
        ("yes", "value must be a number, got True"),
        ("on", "value must be a number, got True"),
        ('"1.5"', "value must be a number, got the text '1.5'"),
        ("[1.2, 1.3]", "value must be a number, got a list"),
    ],
)
def test_values_are_numbers_not_booleans_or_text(tmp_path: Path, value: str, expected: str) -> None:
    message = _refused(tmp_path, _partition("pue", value))
    assert "partitions.test/gpu.pue.value" in message and expected in message


@pytest.mark.parametrize("text", ["1e-310", "5e8", "1.0e6", "-2E3"])
def test_exponents_without_a_dot_or_sign_are_numbers(tmp_path: Path, text: str) -> None:
    # YAML 1.1 reads them as text; the cost model reads them as numbers (and bounds them)
    assert "value must be a number in [1, 3], got" in _refused(tmp_path, _partition("pue", text))


@pytest.mark.parametrize("blank", ['"   "', '"  a "', '""'])
def test_a_source_of_blanks_is_no_source(tmp_path: Path, blank: str) -> None:
    message = _refused(tmp_path, _partition("pue", "1.1", blank))
    assert "partitions.test/gpu.pue.source" in message
    assert "blanks around it do not count" in message


def test_texts_are_stripped(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(_partition("pue", "1.1", '"  our meter  "'), encoding="utf-8")
    assert load_cost_model(_catalogue(), path).partition("test/gpu").pue.source == "our meter"


def test_an_implausible_partition_cost_is_refused_naming_partition_and_file(tmp_path: Path) -> None:
    # every figure within its bounds, but EUR 90 bn over 4 GPUs and a year: EUR 2.6 m a GPU-hour
    text = (
        "partitions:\n  test/gpu:\n"
        '    capital_eur: {value: 9.0e10, source: "our books"}\n'
        '    life_years: {value: 1, source: "our books"}\n'
    )
    message = _refused(tmp_path, text, _catalogue(nodes=1))
    assert "partitions.test/gpu" in message
    assert "above the EUR 1,000" in message and "check capital_eur, life_years" in message


def test_an_implausible_gpu_model_default_is_refused(tmp_path: Path) -> None:
    text = (
        "accelerators:\n  H100:\n"
        '    capital_eur: {value: 4.9e6, source: "our books"}\n'
        '    life_years: {value: 0.5, source: "our books"}\n'
    )
    message = _refused(tmp_path, text)
    assert "accelerators.H100" in message and "above the EUR 1,000" in message


def test_operating_share_is_at_most_the_capital_a_year(tmp_path: Path) -> None:
    text = 'accelerators:\n  H100:\n    operating_share: {value: 2.0, source: "abc"}\n'
    assert "operating_share: value must be a number in [0, 1]" in _refused(tmp_path, text)
