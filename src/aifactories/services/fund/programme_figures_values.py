"""The programme's figures as values: one dataclass per family, and
:class:`ProgrammeFigures` with the long table (:meth:`ProgrammeFigures.rows`) that the CSV,
Parquet and API carry. Computed by :mod:`aifactories.services.fund.programme_figures`."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Measure:
    """One row of the long table."""

    family: str
    key: str  # "total", or "dimension=value": "kind=startup", "partition=lumi-aif/lumi-g"
    metric: str
    value: float
    unit: str


@dataclass(frozen=True, slots=True)
class HoursAndEuros:
    dimension: str  # "total", a DIMENSIONS name, or "site"
    key: str
    gpu_hours: float
    eur: float


@dataclass(frozen=True, slots=True)
class Utilisation:
    partition_id: str
    gpus: int
    available_gpu_hours: float  # GPUs x hours of the period
    programme_gpu_hours: float  # the programme's share of it
    used_gpu_hours: float  # physical GPU-hours the programme's jobs used
    utilisation: float  # used / available, in [0, 1]
    of_programme_share: float  # used / programme's share


@dataclass(frozen=True, slots=True)
class Delays:
    mode: str
    stage: str  # one of STAGES
    count: int
    median_days: float
    p90_days: float


@dataclass(frozen=True, slots=True)
class Waits:
    mode: str
    count: int
    mean_h: float
    median_h: float
    p90_h: float


@dataclass(frozen=True, slots=True)
class Energy:
    site_id: str  # or "total"
    gpu_hours: float  # physical
    kwh: float
    kg_co2: float


@dataclass(frozen=True, slots=True)
class CapacityShare:
    site_id: str
    gpus: int
    share: float  # the programme's
    programme_gpu_hours: float
    hosting_gpu_hours: float
    used_gpu_hours: float  # physical, by the programme
    basis: str  # the source of the share, or the assumption and its reason


@dataclass
class ProgrammeFigures:
    start: float
    end: float
    as_of: float
    granted: list[HoursAndEuros]
    used: list[HoursAndEuros]
    utilisation: list[Utilisation]
    time_to_access: list[Delays]
    waits: list[Waits]
    energy: list[Energy]
    capacity_shares: list[CapacityShare]
    notes: list[str] = field(default_factory=list)

    def rows(self) -> list[Measure]:
        """Every figure as one long table: family, key, metric, value, unit."""
        out: list[Measure] = []
        for family, table in (("granted", self.granted), ("used", self.used)):
            for r in table:
                key = "total" if r.dimension == "total" else f"{r.dimension}={r.key}"
                out.append(Measure(family, key, "gpu_hours", r.gpu_hours, "GPU-h"))
                out.append(Measure(family, key, "eur", r.eur, "EUR"))
        for u in self.utilisation:
            key = f"partition={u.partition_id}"
            out.append(Measure("utilisation", key, "used_gpu_hours", u.used_gpu_hours, "GPU-h"))
            out.append(
                Measure("utilisation", key, "available_gpu_hours", u.available_gpu_hours, "GPU-h")
            )
            out.append(Measure("utilisation", key, "utilisation", u.utilisation, "ratio"))
            out.append(
                Measure("utilisation", key, "of_programme_share", u.of_programme_share, "ratio")
            )
        for d in self.time_to_access:
            key = f"mode={d.mode}"
            out.append(Measure("time_to_access", key, f"{d.stage}_count", d.count, "proposals"))
            out.append(Measure("time_to_access", key, f"{d.stage}_median", d.median_days, "days"))
            out.append(Measure("time_to_access", key, f"{d.stage}_p90", d.p90_days, "days"))
        for w in self.waits:
            key = "total" if w.mode == "total" else f"mode={w.mode}"
            out.append(Measure("wait", key, "jobs", w.count, "jobs"))
            out.append(Measure("wait", key, "mean", w.mean_h, "hours"))
            out.append(Measure("wait", key, "median", w.median_h, "hours"))
            out.append(Measure("wait", key, "p90", w.p90_h, "hours"))
        for e in self.energy:
            key = "total" if e.site_id == "total" else f"site={e.site_id}"
            out.append(Measure("energy", key, "gpu_hours", e.gpu_hours, "GPU-h"))
            out.append(Measure("energy", key, "energy", e.kwh, "kWh"))
            out.append(Measure("energy", key, "carbon", e.kg_co2, "kg CO2"))
        for c in self.capacity_shares:
            key = f"site={c.site_id}"
            out.append(Measure("capacity_share", key, "programme_share", c.share, "ratio"))
            out.append(
                Measure(
                    "capacity_share", key, "programme_gpu_hours", c.programme_gpu_hours, "GPU-h"
                )
            )
            out.append(
                Measure("capacity_share", key, "hosting_gpu_hours", c.hosting_gpu_hours, "GPU-h")
            )
            out.append(Measure("capacity_share", key, "used_gpu_hours", c.used_gpu_hours, "GPU-h"))
        return out
