"""The cost model: its formulas on figures chosen so every result is computed by hand, the
embedded data (every partition priced, every figure sourced or assumed), a user's file laid
over the embedded ones (argument and AIFACTORIES_COST_MODEL), and clear errors for bad files."""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import pytest

from aifactories.catalogue.loader import Catalogue, load_default_catalogue, parse_catalogue
from aifactories.domain.errors import InvalidInput
from aifactories.fund.cost_model import (
    ENV_VAR,
    HOURS_PER_YEAR,
    DateFigure,
    Figure,
    load_cost_model,
)

# One site, 10 nodes x 4 GPUs = 40 GPUs: 40 x 8,766 h = 350,640 available GPU-hours a year.
AVAILABLE = 40 * 8766


def _catalogue(gpu_model: str = "H100", carbon: float | None = 250.0) -> Catalogue:
    site = {
        "id": "test",
        "name": "Test factory",
        "country": "ES",
        "supercomputer": "Test",
        "status": "operational",
        "partitions": [
            {
                "name": "gpu",
                "gpu_model": gpu_model,
                "gpu_memory_gb": 80,
                "gpus_per_node": 4,
                "nodes": 10,
            }
        ],
    }
    if carbon is not None:
        site["carbon_g_per_kwh"] = carbon
    return parse_catalogue({"sites": [site]}, "test catalogue")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "costs.yaml"
    path.write_text(text, encoding="utf-8")
    return path


ROUND_FIGURES = """
partitions:
  test/gpu:
    capital_eur: {value: 3506400, source: "a test contract"}
    life_years: {value: 5, source: "a test plan"}
    accelerator_kw: {value: 0.5, source: "a test data sheet"}
    pue: {value: 1.2, source: "a test measurement"}
    operating_eur_per_year: {value: 350640, assumption: "a round test figure"}
    commissioned: {value: 2024-03-01, source: "a test inauguration"}
electricity:
  ES: {value: 200, period: 2025-S2, source: "a test tariff"}
"""


def test_the_formulas_on_round_figures(tmp_path: Path) -> None:
    cost = load_cost_model(_catalogue(), _write(tmp_path, ROUND_FIGURES)).partition("test/gpu")
    assert cost.gpus == 40 and cost.country == "ES" and cost.site_id == "test"
    # 0.5 kW x 1.2 = 0.6 kWh; x EUR 200/MWh / 1000 = EUR 0.12
    assert cost.kwh_per_gpu_hour == pytest.approx(0.6)
    assert cost.energy_eur_per_gpu_hour == pytest.approx(0.12)
    # EUR 3,506,400 / 5 years / 350,640 GPU-hours = EUR 2.00
    assert cost.capital_eur_per_gpu_hour == pytest.approx(2.0)
    # EUR 350,640 a year / 350,640 GPU-hours = EUR 1.00
    assert cost.operating_eur_per_gpu_hour == pytest.approx(1.0)
    assert cost.eur_per_gpu_hour == pytest.approx(3.12)
    # half busy: the fixed EUR 3.00 falls on half the hours
    assert cost.eur_per_used_gpu_hour(0.5) == pytest.approx(0.12 + 6.0)
    # 0.6 kWh x 250 g/kWh (the catalogue's own figure) = 150 g
    assert cost.kg_co2_per_gpu_hour == pytest.approx(0.15)
    assert "site test carbon_g_per_kwh" in (cost.carbon_g_per_kwh.source or "")
    assert cost.commissioned == date(2024, 3, 1)
    assert cost.decommissioned == date(2029, 3, 1)
    assert cost.electricity_eur_per_mwh == Figure(200.0, "a test tariff", None, "2025-S2")


def test_utilisation_outside_zero_to_one_is_refused(tmp_path: Path) -> None:
    cost = load_cost_model(_catalogue(), _write(tmp_path, ROUND_FIGURES)).partition("test/gpu")
    with pytest.raises(InvalidInput, match="utilisation"):
        cost.eur_per_used_gpu_hour(0)


def test_figures_not_given_are_derived_from_the_model_defaults(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
accelerators:
  H100:
    capital_eur: {value: 30000, source: "a test price"}
    kw: {value: 1.0, source: "a test data sheet"}
    life_years: {value: 4, assumption: "test"}
    operating_share: {value: 0.1, assumption: "test"}
defaults:
  pue: {value: 1.5, assumption: "test default"}
""",
    )
    cost = load_cost_model(_catalogue(), path).partition("test/gpu")
    assert cost.capital_eur.value == 40 * 30000
    assert "40 GPUs x EUR 30,000 per H100" in (cost.capital_eur.assumption or "")
    assert cost.operating_eur_per_year.value == pytest.approx(0.1 * 40 * 30000)
    assert cost.life_years.value == 4 and cost.pue.value == 1.5
    # EUR 1,200,000 / 4 / 350,640 + 10% of it / 350,640, and 1 kW x 1.5 x ES's price
    capital = 1_200_000 / 4 / AVAILABLE
    operating = 120_000 / AVAILABLE
    energy = 1.5 * cost.electricity_eur_per_mwh.value / 1000
    assert cost.eur_per_gpu_hour == pytest.approx(capital + operating + energy)
    for figure in cost.figures().values():
        assert figure.source or figure.assumption


def test_every_catalogue_partition_has_a_cost_with_every_figure_explained() -> None:
    catalogue = load_default_catalogue()
    model = load_cost_model(catalogue)
    ids = {p.id for s in catalogue.sites for p in s.partitions}
    assert ids and set(model.partitions) == ids
    for pid in ids:
        cost = model.partition(pid)
        assert math.isfinite(cost.eur_per_gpu_hour) and cost.eur_per_gpu_hour > 0
        assert 0 < cost.energy_eur_per_gpu_hour < cost.eur_per_gpu_hour
        for name, figure in cost.figures().items():
            assert figure.source or figure.assumption, f"{pid}.{name} has no basis"
            assert figure.basis, f"{pid}.{name}"
            if isinstance(figure, DateFigure):
                assert date(2015, 1, 1) < figure.value < date(2035, 1, 1)


def test_every_accelerator_figure_is_explained() -> None:
    model = load_cost_model(load_default_catalogue())
    wanted = {"A100", "H100", "H200", "GH200", "GB200", "GB300", "MI250X", "MI300A", "B200"}
    assert wanted <= set(model.accelerators)
    for accelerator in model.accelerators.values():
        for figure in (
            accelerator.capital_eur,
            accelerator.kw,
            accelerator.life_years,
            accelerator.operating_share,
        ):
            assert figure.value > 0 and (figure.source or figure.assumption)


def test_the_country_tables_cover_the_catalogue_and_the_candidate_countries() -> None:
    catalogue = load_default_catalogue()
    model = load_cost_model(catalogue)
    eu27 = "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK"
    countries = {s.country for s in catalogue.sites} | set(eu27.split()) | {"NO", "CH", "IS", "TR"}
    for country in countries:
        for table in (model.electricity_prices, model.carbon_intensities):
            figure = table[country]  # in the file itself, not the fallback
            assert figure.value > 0 and (figure.source or figure.assumption), country
    # Greece: Eurostat writes EL, the catalogue GR
    assert model.electricity("EL") == model.electricity("GR")


def test_a_country_without_figures_gets_the_eu_average_marked_as_assumption() -> None:
    model = load_cost_model(load_default_catalogue())
    price = model.electricity("XK")
    assert price.value == model.electricity_prices["EU27"].value
    assert "no electricity price for XK" in (price.assumption or "")
    assert "no carbon intensity for XK" in (model.carbon("XK").assumption or "")


def test_new_capacity_is_priced_from_the_model_defaults() -> None:
    model = load_cost_model(load_default_catalogue())
    gb200 = model.accelerator("gb200")  # the model's name in any case
    cost = model.new_partition("giga-es/gb200", "ES", "GB200", 100_000, date(2027, 1, 1))
    capital = gb200.capital_eur.value / gb200.life_years.value / HOURS_PER_YEAR
    operating = gb200.capital_eur.value * gb200.operating_share.value / HOURS_PER_YEAR
    energy = gb200.kw.value * model.default_pue.value * model.electricity("ES").value / 1000
    assert cost.eur_per_gpu_hour == pytest.approx(capital + operating + energy)
    assert cost.commissioned == date(2027, 1, 1)
    with pytest.raises(InvalidInput, match="no cost for GPU model 'Z9'"):
        model.new_partition("x/y", "ES", "Z9", 10, date(2027, 1, 1))
    with pytest.raises(InvalidInput, match="no cost for partition 'x/y'"):
        model.partition("x/y")


def test_a_user_file_changes_only_what_it_names(tmp_path: Path) -> None:
    catalogue = load_default_catalogue()
    embedded = load_cost_model(catalogue).partition("lumi-aif/lumi-g")
    path = _write(
        tmp_path,
        'partitions:\n  lumi-aif/lumi-g:\n    pue: {value: 1.1, source: "our meter"}\n'
        'electricity:\n  NO: {value: 50, source: "our contract"}\n',
    )
    changed = load_cost_model(catalogue, path)
    lumi = changed.partition("lumi-aif/lumi-g")
    assert lumi.pue == Figure(1.1, "our meter")
    assert lumi.capital_eur == embedded.capital_eur  # kept
    assert changed.electricity("NO").value == 50  # an unquoted NO is Norway, not false
    assert str(path) in changed.files


def test_the_environment_variable_points_at_the_user_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, ROUND_FIGURES)
    monkeypatch.setenv(ENV_VAR, str(path))
    assert load_cost_model(_catalogue()).partition("test/gpu").eur_per_gpu_hour == pytest.approx(
        3.12
    )
    other = tmp_path / "other.yaml"
    other.write_text(ROUND_FIGURES.replace("value: 200,", "value: 100,"), encoding="utf-8")
    # an explicit path wins over the variable
    cost = load_cost_model(_catalogue(), other).partition("test/gpu")
    assert cost.energy_eur_per_gpu_hour == pytest.approx(0.06)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "partitions:\n  test/gpu:\n    pue: {value: 1.3}\n",
            "partitions.test/gpu.pue: give a 'source'",
        ),
        (
            'partitions:\n  test/gpu:\n    pue: {value: 0.8, source: "x y z"}\n',
            "partitions.test/gpu.pue: value must be a number in [1, 3], got 0.8",
        ),
        (
            'partitions:\n  test/gpu:\n    capex: {value: 1, source: "x y z"}\n',
            "partitions.test/gpu.capex: unknown field",
        ),
        (
            'partitions:\n  test/gpu:\n    pue: {value: many, source: "x y z"}\n',
            "partitions.test/gpu.pue.value",
        ),
        (
            'electricity:\n  Spain: {value: 100, source: "x y z"}\n',
            "'Spain' is not a valid key here",
        ),
        (
            'partitions:\n  other/gpu:\n    pue: {value: 1.3, source: "x y z"}\n',
            "partitions.other/gpu: no such partition in the catalogue",
        ),
        ("partitions: [1, 2", "not valid YAML"),
        ("- a list", "a cost model file is a mapping"),
    ],
)
def test_a_bad_file_is_refused_naming_file_entry_and_field(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(InvalidInput) as caught:
        load_cost_model(_catalogue(), path)
    assert str(path) in caught.value.message
    assert expected in caught.value.message


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read the cost model file"):
        load_cost_model(_catalogue(), tmp_path / "nowhere.yaml")


def test_a_partition_of_an_unknown_model_needs_its_own_figures(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as caught:
        load_cost_model(_catalogue(gpu_model="X1"))
    assert "partitions.test/gpu.capital_eur" in caught.value.message
    assert "add X1 under 'accelerators'" in caught.value.message
    # with all of its own figures it needs no model defaults
    own = ROUND_FIGURES
    assert load_cost_model(_catalogue(gpu_model="X1"), _write(tmp_path, own)).partition("test/gpu")


def test_an_incomplete_new_model_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, 'accelerators:\n  X1:\n    kw: {value: 1, source: "x y z"}\n')
    with pytest.raises(InvalidInput, match=r"accelerators\.X1: missing capital_eur, life_years"):
        load_cost_model(_catalogue(), path)


def test_the_table_in_the_docs_is_what_the_code_computes() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "fund.md").read_text(encoding="utf-8")
    model = load_cost_model(load_default_catalogue())
    for pid, cost in model.partitions.items():
        row = next((line for line in docs.splitlines() if line.startswith(f"| {pid} |")), None)
        assert row is not None, f"docs/fund.md has no row for {pid}"
        assert f"**{cost.eur_per_gpu_hour:.2f}**" in row, f"{pid}: regenerate the table"
        assert f"| {cost.energy_eur_per_gpu_hour:.3f} |" in row, pid
