"""``aif sites --costs``: each partition's cost per GPU-hour in parts, and the figures behind it
with their sources (``GET /fund/costs``). Rich is imported only through render's table()."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aifactories.cli import render

if TYPE_CHECKING:
    from rich.table import Table

_FIGURE_UNITS = {
    "capital_eur": "EUR",
    "life_years": "years",
    "accelerator_kw": "kW",
    "pue": "",
    "electricity_eur_per_mwh": "EUR/MWh",
    "carbon_g_per_kwh": "g CO2/kWh",
    "operating_eur_per_year": "EUR/year",
}


def costs_table(costs: list[dict[str, Any]]) -> Table:
    """One row per partition: the full cost of a GPU-hour and its parts."""
    t = table_with_caption()
    numbers = (
        "GPUs",
        "EUR/GPU-h",
        "energy",
        "capital",
        "operating",
        "kWh/GPU-h",
        "kg CO2/GPU-h",
    )
    for column in ("partition", "country", "GPU model", *numbers):
        t.add_column(column, justify="right" if column in numbers else "left")
    for c in costs:
        t.add_row(
            c["partition_id"],
            c["country"],
            c["gpu_model"],
            f"{c['gpus']:,}",
            f"{c['eur_per_gpu_hour']:.3f}",
            f"{c['energy_eur_per_gpu_hour']:.3f}",
            f"{c['capital_eur_per_gpu_hour']:.3f}",
            f"{c['operating_eur_per_gpu_hour']:.3f}",
            f"{c['kwh_per_gpu_hour']:.3f}",
            f"{c['kg_co2_per_gpu_hour']:.3f}",
        )
    return t


def table_with_caption() -> Table:
    return render.table(
        "Cost of a GPU-hour per partition (EUR)",
        caption="per available GPU-hour: capital / life / (GPUs x 8,766 h), operating likewise, "
        "energy = kW x PUE x EUR/MWh / 1000; sources below",
    )


def figure_value(figure: dict[str, Any]) -> str:
    value = figure["value"]
    if isinstance(value, str):
        return value  # a date
    unit = _FIGURE_UNITS.get(figure["name"], "")
    shown = f"{value:,.0f}" if abs(value) >= 1000 else f"{value:g}"
    return f"{shown} {unit}".strip()


def sources_table(costs: list[dict[str, Any]]) -> Table:
    """Every input figure of every partition with its source or assumption."""
    t = render.table("Where each figure comes from", show_lines=True)
    for column in ("partition", "figure", "value", "source or assumption"):
        t.add_column(column, justify="right" if column == "value" else "left")
    for c in costs:
        for f in c["figures"]:
            basis = [f["source"]] if f["source"] else []
            if f["assumption"]:
                basis.append(f"[italic]assumption:[/italic] {f['assumption']}")
            if f.get("period"):
                basis.append(f"({f['period']})")
            if f.get("confidence"):  # an older server sends none
                basis.append(f"(confidence {f['confidence']})")
            t.add_row(c["partition_id"], f["name"], figure_value(f), " ".join(basis))
    return t
