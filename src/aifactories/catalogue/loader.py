"""Load and validate a site catalogue file into domain :class:`~aifactories.domain.sites.Site`s.

Errors name the file and the entry (``sites[3] (jaif).partitions[0].nodes``) and say what
is expected, so a site operator can fix their own catalogue without reading code.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aifactories.domain.errors import CatalogueError
from aifactories.domain.ids import PartitionId, SiteId
from aifactories.domain.sites import ExecutorConfig, Partition, Site, SiteStatus
from aifactories.domain.units import slurm_seconds

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]


class _PartitionEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Slug
    gpu_model: Annotated[str, Field(min_length=1, max_length=40)]
    gpu_memory_gb: Annotated[int, Field(gt=0, le=4096)]
    gpus_per_node: Annotated[int, Field(gt=0, le=64)]
    nodes: Annotated[int, Field(gt=0, le=1_000_000)]
    billing_weight: Annotated[float, Field(gt=0, le=100)] = 1.0
    aliases: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")]] = []
    cpus_per_node: Annotated[int | None, Field(gt=0, le=100_000)] = None
    mem_per_node_gb: Annotated[int | None, Field(gt=0, le=1_000_000)] = None
    max_time: Annotated[str | None, Field(description="Slurm time, e.g. 2-00:00:00")] = None

    @field_validator("max_time")
    @classmethod
    def _slurm_time(cls, value: str | None) -> str | None:
        if value is not None:
            slurm_seconds(value)  # a ValueError names what is wrong
        return value


class _ExecutorEntry(BaseModel):
    """``kind`` plus the back-end's own options (checked when the executor is built)."""

    model_config = ConfigDict(extra="allow")

    kind: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,40}$")]

    @model_validator(mode="after")
    def _scalar_options(self) -> _ExecutorEntry:
        for key, value in (self.model_extra or {}).items():
            if not isinstance(value, str | int | float | bool):
                raise ValueError(f"executor option {key!r} must be a string, number or boolean")
        return self

    def options(self) -> tuple[tuple[str, str | int | float | bool], ...]:
        return tuple(sorted((self.model_extra or {}).items()))


class _SiteEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Slug
    name: Annotated[str, Field(min_length=1)]
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    supercomputer: Annotated[str, Field(min_length=1)]
    status: SiteStatus
    carbon_g_per_kwh: Annotated[float, Field(ge=0)] | None = None
    partitions: list[_PartitionEntry] = []
    sources: list[str] = []
    executor: _ExecutorEntry | None = None

    @field_validator("partitions")
    @classmethod
    def _unique_partition_names(cls, value: list[_PartitionEntry]) -> list[_PartitionEntry]:
        names = [p.name for p in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"partition names must be unique, repeated: {', '.join(duplicates)}")
        return value


class _CatalogueFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = 1
    sites: Annotated[list[_SiteEntry], Field(min_length=1)]


@dataclass(frozen=True)
class Catalogue:
    """The federation's sites, in file order, with lookups."""

    sites: tuple[Site, ...]
    source: str

    @cached_property
    def _by_id(self) -> dict[SiteId, Site]:
        return {site.id: site for site in self.sites}

    @cached_property
    def _partitions(self) -> dict[PartitionId, Partition]:
        return {p.id: p for site in self.sites for p in site.partitions}

    def site(self, site_id: str) -> Site | None:
        return self._by_id.get(SiteId(site_id))

    def partition(self, partition_id: str) -> Partition | None:
        return self._partitions.get(PartitionId(partition_id))

    @property
    def operational_sites(self) -> tuple[Site, ...]:
        return tuple(site for site in self.sites if site.operational)

    @property
    def operational_partitions(self) -> tuple[Partition, ...]:
        return tuple(p for site in self.operational_sites for p in site.partitions)

    @property
    def gpu_models(self) -> tuple[str, ...]:
        """The GPU models jobs may ask for (operational partitions only), sorted."""
        return tuple(sorted({p.gpu_model for p in self.operational_partitions}))


def _location(loc: tuple[int | str, ...], data: dict[str, Any]) -> str:
    parts: list[str] = []
    node: Any = data
    for key in loc:
        if isinstance(key, int):
            label = f"[{key}]"
            if isinstance(node, list) and key < len(node) and isinstance(node[key], dict):
                ident = node[key].get("id") or node[key].get("name")
                label += f" ({ident})" if ident else ""
            parts.append(label)
        else:
            parts.append(f".{key}" if parts else str(key))
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            node = None
    return "".join(parts)


def parse_catalogue(data: object, source: str) -> Catalogue:
    """Validate already-parsed YAML/JSON data; ``source`` names it in error messages."""
    if not isinstance(data, dict):
        raise CatalogueError(f"{source}: a catalogue is a mapping with a 'sites' list")
    try:
        parsed = _CatalogueFile.model_validate(data)
    except ValidationError as exc:
        problems = [f"  {_location(tuple(err['loc']), data)}: {err['msg']}" for err in exc.errors()]
        raise CatalogueError(
            f"{source}: invalid catalogue ({len(problems)} problem(s)):\n" + "\n".join(problems)
        ) from None
    ids = [s.id for s in parsed.sites]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise CatalogueError(f"{source}: site ids must be unique, repeated: {', '.join(repeated)}")
    sites = tuple(
        Site(
            id=SiteId(entry.id),
            name=entry.name,
            country=entry.country,
            supercomputer=entry.supercomputer,
            status=entry.status,
            partitions=tuple(
                Partition(
                    site_id=SiteId(entry.id),
                    name=p.name,
                    gpu_model=p.gpu_model,
                    gpu_memory_gb=p.gpu_memory_gb,
                    nodes=p.nodes,
                    gpus_per_node=p.gpus_per_node,
                    billing_weight=p.billing_weight,
                    aliases=tuple(p.aliases),
                    cpus_per_node=p.cpus_per_node,
                    mem_per_node_gb=p.mem_per_node_gb,
                    max_time_limit_s=None if p.max_time is None else slurm_seconds(p.max_time),
                )
                for p in entry.partitions
            ),
            carbon_g_per_kwh=entry.carbon_g_per_kwh,
            sources=tuple(entry.sources),
            executor=None
            if entry.executor is None
            else ExecutorConfig(entry.executor.kind, entry.executor.options()),
        )
        for entry in parsed.sites
    )
    for site in sites:
        if site.operational and not site.partitions:
            raise CatalogueError(
                f"{source}: site {site.id} is operational but has no partitions; "
                "add its GPU partitions or mark it planned"
            )
    return Catalogue(sites=sites, source=source)


def load_catalogue(path: Path) -> Catalogue:
    """Read and validate a catalogue file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogueError(f"{path}: cannot read the catalogue file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogueError(f"{path}: not valid YAML: {exc}") from None
    return parse_catalogue(data, str(path))


def load_default_catalogue() -> Catalogue:
    """The embedded default catalogue shipped with the package."""
    text = resources.files("aifactories.catalogue").joinpath("catalogue.yaml").read_text("utf-8")
    return parse_catalogue(yaml.safe_load(text), "embedded catalogue")
