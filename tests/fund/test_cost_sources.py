"""Where the cost model's figures come from: a figure may say how far its source can be
trusted (confidence H, M or L, as in funding.yaml), the loader keeps it and shows it; the
embedded data cite weak pages only with confidence L, and the electricity prices cite
Eurostat's table itself (issue 15's review: capital figures from grokipedia.com, blogen.wiki,
snapost.net and reelwarp.info, prices from an unnamed GitHub fact sheet)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aifactories.catalogue.loader import load_default_catalogue
from aifactories.domain.errors import InvalidInput
from aifactories.fund.cost_model import DateFigure, Figure, load_cost_model
from aifactories.services.fund.costs import view_of

WEAK = ("grokipedia.com", "blogen.wiki", "snapost.net", "reelwarp.info", "medium.com")


def _every_figure() -> list[tuple[str, Figure | DateFigure]]:
    model = load_cost_model(load_default_catalogue())
    out: list[tuple[str, Figure | DateFigure]] = []
    for pid, cost in model.partitions.items():
        out += [(f"partitions.{pid}.{name}", f) for name, f in cost.figures().items()]
    for gpu, acc in model.accelerators.items():
        for name in ("capital_eur", "kw", "life_years", "operating_share"):
            out.append((f"accelerators.{gpu}.{name}", getattr(acc, name)))
    out += [(f"electricity.{c}", f) for c, f in model.electricity_prices.items()]
    return out


def test_a_figure_from_a_weak_page_says_so() -> None:
    weak = [(where, f) for where, f in _every_figure() if any(w in (f.source or "") for w in WEAK)]
    assert weak, "the LUMI figures still rest on one weak page"
    # L; or M where a second, better page is cited beside it (LUMI's commissioning month)
    unrated = [
        where
        for where, f in weak
        if not (
            f.confidence == "L" or (f.confidence == "M" and (f.source or "").count("https://") > 1)
        )
    ]
    assert not unrated, f"cited from a weak page without confidence L: {unrated}"


def test_the_retired_weak_sources_are_gone() -> None:
    cited = " ".join(f.source or "" for _, f in _every_figure())
    for gone in ("snapost.net", "reelwarp.info", "medium.com", "grokipedia.com/page/jupiter"):
        assert gone not in cited


def test_the_electricity_prices_cite_eurostats_table() -> None:
    model = load_cost_model(load_default_catalogue())
    for country, price in model.electricity_prices.items():
        if price.assumption and not price.source:
            continue  # NO, CH, IS, TR: the EU average, an assumption
        assert price.source and "Eurostat" in price.source, country
        assert "GitHub" not in price.source, country
        assert price.confidence in {"H", "M"}, country
    assert "databrowser/view/nrg_pc_205" in (model.electricity_prices["DE"].source or "")


def test_a_user_file_may_rate_a_figure_and_the_rating_is_shown(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        "partitions:\n  lumi-aif/lumi-g:\n"
        '    pue: {value: 1.1, source: "our meter, 2025", confidence: H}\n',
        encoding="utf-8",
    )
    cost = load_cost_model(load_default_catalogue(), path).partition("lumi-aif/lumi-g")
    assert cost.pue.confidence == "H"
    assert cost.pue.basis == "our meter, 2025; confidence H"
    assert cost.capital_eur.confidence == "L"  # the embedded rating of LUMI's EUR 145 m
    shown = {f.name: f for f in view_of(cost).figures}
    assert shown["pue"].confidence == "H" and shown["capital_eur"].confidence == "L"


def test_a_rating_other_than_h_m_or_l_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        'partitions:\n  lumi-aif/lumi-g:\n    pue: {value: 1.1, source: "abc", confidence: X}\n',
        encoding="utf-8",
    )
    with pytest.raises(InvalidInput, match=r"partitions\.lumi-aif/lumi-g\.pue\.confidence"):
        load_cost_model(load_default_catalogue(), path)


def test_derived_figures_keep_the_rating_of_what_they_come_from() -> None:
    model = load_cost_model(load_default_catalogue())
    # meluxina's capital: 800 GPUs x the A100's capital, itself from Leonardo's EUR 240 m (M)
    capital = model.partition("meluxina-ai/gpu").capital_eur
    assert capital.assumption and "800 GPUs x EUR 14,760 per A100" in capital.assumption
    assert capital.confidence == "M"
