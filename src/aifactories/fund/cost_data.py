"""Read and check the cost model's data files, and lay them over each other.

A cost model file has up to five sections, each optional::

    defaults:      {pue: FIGURE, commissioned: DATE_FIGURE}
    accelerators:  {GPU_MODEL: {capital_eur, kw, life_years, operating_share}}
    partitions:    {SITE/PARTITION: {capital_eur, commissioned, life_years, accelerator_kw, pue,
                                     operating_eur_per_year, electricity_eur_per_mwh,
                                     carbon_g_per_kwh}}
    electricity:   {COUNTRY: FIGURE}      # EUR/MWh; EU27 is the EU average
    carbon:        {COUNTRY: FIGURE}      # g CO2/kWh

where FIGURE is ``{value: 1.2, source: "..."}`` or ``{value: 1.2, assumption: "why"}`` (and
optionally ``period: 2024-S2``). Files are laid in order; a later file replaces the figures it
names and keeps the others (a user's file may change one partition's PUE and nothing else).
Errors name the file, the entry and the field, and say what is expected.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from aifactories.domain.errors import InvalidInput
from aifactories.fund.cost_figures import DateFigure, Figure


class _Loader(yaml.SafeLoader):
    """Safe YAML that also reads 5e8 and 1.0e6 as numbers (YAML 1.2), which YAML 1.1 reads
    as text for want of a dot and a sign; quoted text stays text and is refused."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?([0-9][0-9_]*)?\.?[0-9]+[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load_yaml(text: str) -> object:
    return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects


EMBEDDED_FILES = ("costs.yaml", "electricity_prices.yaml", "carbon_intensity.yaml")
# Stripped first: a source of blanks is no source.
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=2000)]


class _Sourced(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: Text | None = None
    assumption: Text | None = None
    # as in funding.yaml: H official or two independent sources agree, M one reputable
    # secondary source, L one weak source (kept for want of a better one)
    confidence: Literal["H", "M", "L"] | None = None

    @model_validator(mode="after")
    def _has_basis(self) -> _Sourced:
        if not self.source and not self.assumption:
            raise ValueError("give a 'source' (where the figure comes from) or an 'assumption'")
        return self


class _Figure(_Sourced):
    """A number with its basis; subclasses bound the value to what makes sense."""

    value: float
    period: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=4, max_length=40)] | None
    ) = None

    @field_validator("value", mode="before")
    @classmethod
    def _a_number(cls, value: object) -> object:
        # Strict: YAML reads yes/on/true as a boolean, which pydantic would take for 1.0, and
        # a quoted "1.5" or an exponent without a dot (5e8) as text, which it would parse.
        if isinstance(value, bool):
            raise ValueError(
                f"value must be a number, got {value} (YAML reads yes/no/on/off as true/false)"
            )
        if isinstance(value, str):
            raise ValueError(
                f"value must be a number, got the text {value[:40]!r}: write the number "
                "without quotes"
            )
        if not isinstance(value, int | float):
            raise ValueError(f"value must be a number, got a {type(value).__name__}")
        return value

    @field_validator("period", mode="before")
    @classmethod
    def _year_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value  # YAML reads 2023 as a number

    low: ClassVar[float] = 0.0
    high: ClassVar[float] = 1e12
    low_open: ClassVar[bool] = False  # the value must be above ``low``, not equal to it

    @model_validator(mode="after")
    def _in_range(self) -> _Figure:
        kind = type(self)
        below = self.value <= kind.low if kind.low_open else self.value < kind.low
        if not math.isfinite(self.value) or below or self.value > kind.high:
            opening = "(" if kind.low_open else "["
            raise ValueError(
                f"value must be a number in {opening}{kind.low:g}, {kind.high:g}], "
                f"got {self.value:g}"
            )
        return self

    def figure(self) -> Figure:
        return Figure(self.value, self.source, self.assumption, self.period, self.confidence)


# The bounds are what a real AI factory can have, so that a typo (a life of 1e-9 years, a
# capital of EUR 1e15) is refused with its field rather than priced at infinity.


class _Euros(_Figure):  # a partition's capital: at most EUR 100 bn
    low_open, high = True, 1e11


class _AcceleratorEuros(_Figure):  # one accelerator with its share of the system
    low_open, high = True, 5e6


class _YearlyEuros(_Figure):  # a partition's operating cost a year
    high = 1e10


class _Kilowatts(_Figure):  # per accelerator, its node's share included
    low, high = 0.01, 20.0


class _Years(_Figure):  # a depreciation life
    low, high = 0.5, 30.0


class _Share(_Figure):  # yearly operating cost over capital
    high = 1.0


class _Pue(_Figure):
    low, high = 1.0, 3.0


class _Price(_Figure):  # EUR/MWh
    high = 10_000.0


class _Carbon(_Figure):  # g CO2/kWh
    high = 2_000.0


class _DateFigure(_Sourced):
    value: date

    def figure(self) -> DateFigure:
        return DateFigure(self.value, self.source, self.assumption, self.confidence)


class _Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pue: _Pue | None = None
    commissioned: _DateFigure | None = None


class _Accelerator(BaseModel):
    model_config = ConfigDict(extra="forbid")

    capital_eur: _AcceleratorEuros | None = None
    kw: _Kilowatts | None = None
    life_years: _Years | None = None
    operating_share: _Share | None = None


class _Partition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    capital_eur: _Euros | None = None
    commissioned: _DateFigure | None = None
    life_years: _Years | None = None
    accelerator_kw: _Kilowatts | None = None
    pue: _Pue | None = None
    operating_eur_per_year: _YearlyEuros | None = None
    electricity_eur_per_mwh: _Price | None = None
    carbon_g_per_kwh: _Carbon | None = None


Country = Annotated[str, Field(pattern=r"^([A-Z]{2}|EU27)$")]
PartitionKey = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}/[a-z0-9][a-z0-9-]{0,62}$")]
ModelKey = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._+-]{0,39}$")]


class _CostFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    defaults: _Defaults = _Defaults()
    accelerators: dict[ModelKey, _Accelerator] = {}
    partitions: dict[PartitionKey, _Partition] = {}
    electricity: dict[Country, _Price] = {}
    carbon: dict[Country, _Carbon] = {}


@dataclass
class CostData:
    """The files' figures laid over each other; ``origin`` says which file gave each entry."""

    defaults: dict[str, Figure | DateFigure] = field(default_factory=dict)
    accelerators: dict[str, dict[str, Figure]] = field(default_factory=dict)
    partitions: dict[str, dict[str, Figure | DateFigure]] = field(default_factory=dict)
    electricity: dict[str, Figure] = field(default_factory=dict)
    carbon: dict[str, Figure] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)  # "accelerators.H100" -> file
    files: list[str] = field(default_factory=list)


def _figures(entry: BaseModel) -> dict[str, Figure | DateFigure]:
    out: dict[str, Figure | DateFigure] = {}
    for name in type(entry).model_fields:
        value = getattr(entry, name)
        if isinstance(value, _Figure | _DateFigure):
            out[name] = value.figure()
    return out


def lay(data: CostData, parsed: _CostFile, source: str) -> None:
    """Lay one file's figures over ``data``: field by field within an entry."""
    data.files.append(source)
    data.defaults.update(_figures(parsed.defaults))
    for model, accelerator in parsed.accelerators.items():
        fields = _figures(accelerator)
        data.accelerators.setdefault(model, {}).update(fields)  # type: ignore[arg-type]
        data.origin[f"accelerators.{model}"] = source
    for key, partition in parsed.partitions.items():
        data.partitions.setdefault(key, {}).update(_figures(partition))
        data.origin[f"partitions.{key}"] = source
    for country, price in parsed.electricity.items():
        data.electricity[country] = price.figure()
    for country, carbon in parsed.carbon.items():
        data.carbon[country] = carbon.figure()


def _location(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc]
    return ".".join(parts) or "(top level)"


def parse_cost_file(data: object, source: str) -> _CostFile:
    if not isinstance(data, dict):
        raise InvalidInput(
            source,
            "a cost model file is a mapping with sections defaults, accelerators, "
            "partitions, electricity and carbon (see docs/fund.md)",
        )
    for table in ("electricity", "carbon"):
        section = data.get(table)
        if isinstance(section, dict) and False in section:
            # YAML 1.1 reads an unquoted NO (Norway) as false
            section["NO"] = section.pop(False)
    try:
        return _CostFile.model_validate(data)
    except ValidationError as exc:
        problems = [f"{_location(tuple(e['loc']))}: {_message(e)}" for e in exc.errors()]
        if len(problems) == 1:
            raise InvalidInput(
                f"{source}: {problems[0].split(': ', 1)[0]}", problems[0].split(": ", 1)[1]
            ) from None
        raise InvalidInput(
            source,
            f"{len(problems)} problems:\n" + "\n".join(f"  {p}" for p in problems),
        ) from None


def _message(error: Any) -> str:
    msg = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return "unknown field (misspelt?); see docs/fund.md for the fields of each section"
    if error["type"] == "string_too_short":
        return f"{msg} (blanks around it do not count): name the page, document or reason"
    if error["type"] == "string_pattern_mismatch":
        return (
            f"{error.get('input')!r} is not a valid key here: countries are ISO codes (ES) or "
            "EU27, partitions site/partition (jaif/booster)"
        )
    return msg


def read_cost_file(path: Path) -> _CostFile:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(str(path), f"cannot read the cost model file ({exc.strerror})") from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise InvalidInput(str(path), f"not valid YAML: {exc}") from None
    return parse_cost_file(data, str(path))


def embedded_cost_data() -> CostData:
    """The packaged files, laid in order."""
    data = CostData()
    for name in EMBEDDED_FILES:
        text = resources.files("aifactories.fund").joinpath("data", name).read_text("utf-8")
        source = f"embedded {name}"
        lay(data, parse_cost_file(load_yaml(text), source), source)
    return data
