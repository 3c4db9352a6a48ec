"""The observation of the fleet the upkeep planner reads, checked with every problem named.

A YAML or JSON document: per provider the minor versions it offers with the end of their
standard support, the newest JupyterHub chart release, and each cluster's control plane, node
pools and chart. Versions are quoted ``1.N`` strings (a YAML number is refused), dates
``YYYY-MM-DD``, charts ``MAJOR.MINOR.PATCH``; unknown keys are refused, so a typo never passes.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from engagements.versions import minor_text, parse_minor

PROVIDERS = ("aws", "gcp", "azure", "jetstream2")
_CHART = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True, order=True)
class Chart:
    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @classmethod
    def parse(cls, text: str) -> Chart | None:
        match = _CHART.fullmatch(text)
        return cls(*(int(part) for part in match.groups())) if match else None


@dataclass(frozen=True)
class NodePool:
    name: str
    minor: int
    upgraded_on: dt.date


@dataclass(frozen=True)
class Cluster:
    name: str
    provider: str
    minor: int
    upgraded_on: dt.date
    node_pools: tuple[NodePool, ...]
    chart: Chart
    canary: bool = False


@dataclass(frozen=True)
class Observation:
    kubernetes: dict[str, dict[int, dt.date]]
    """Per provider: each minor it offers and the end of its standard support."""
    jupyterhub_chart: Chart
    clusters: tuple[Cluster, ...]


class ObservationError(ValueError):
    """An observation with one or more problems, each with its key path."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{path}: {reason}" for path, reason in problems))


class _Loader(yaml.SafeLoader):
    """YAML without implicit timestamps: dates are checked here, so 2026-02-30 is a problem
    with its key path rather than a crash inside the YAML library."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_observation(path: str | Path) -> Observation:
    """Read a YAML or JSON observation; raise :class:`ObservationError` naming every problem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ObservationError([("(file)", f"cannot read it: {exc.strerror}")]) from None
    try:
        data = json.loads(text) if str(path).endswith(".json") else yaml.load(text, _Loader)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        reason = " ".join(str(exc).split())
        raise ObservationError([("(file)", f"cannot parse it: {reason}")]) from None
    return parse_observation(data)


class _Checker:
    """Collects every problem with its key path while reading the document."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []

    def fail(self, path: str, reason: str) -> None:
        self.problems.append((path, reason))

    def mapping(self, data: Any, path: str, required: tuple[str, ...], optional: tuple[str, ...]):
        if not isinstance(data, dict):
            self.fail(path, "expected a mapping")
            return None
        for key in required:
            if key not in data:
                self.fail(_join(path, key), "missing required key")
        for key in data:
            if key not in required + optional:
                self.fail(_join(path, str(key)), "unknown key")
        return data

    def minor(self, value: Any, path: str) -> int | None:
        if isinstance(value, int | float) and not isinstance(value, bool):
            self.fail(
                path, f'{value} is a number; write the version as a quoted string, e.g. "1.31"'
            )
            return None
        minor = parse_minor(value) if isinstance(value, str) else None
        if minor is None:
            self.fail(path, f'{value!r} is not a Kubernetes minor version such as "1.31"')
        return minor

    def date(self, value: Any, path: str) -> dt.date | None:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        if isinstance(value, str) and _DATE.fullmatch(value):
            try:
                return dt.date.fromisoformat(value)
            except ValueError as exc:
                self.fail(path, f"{value!r} is not a possible date: {exc}")
                return None
        self.fail(path, f"{value!r} is not a date (YYYY-MM-DD)")
        return None

    def chart(self, value: Any, path: str) -> Chart | None:
        chart = Chart.parse(value) if isinstance(value, str) else None
        if chart is None:
            self.fail(path, f"{value!r} is not a chart version MAJOR.MINOR.PATCH")
        return chart

    def name(self, value: Any, path: str) -> str | None:
        if not isinstance(value, str) or not value.strip():
            self.fail(path, f"{value!r} is not a name")
            return None
        return value


def _join(path: str, key: str) -> str:
    if not path:
        return key
    return f"{path}.{key}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", key) else f"{path}[{key}]"


def parse_observation(data: Any) -> Observation:
    """Check the whole document and report every problem at once."""
    if not isinstance(data, dict):
        raise ObservationError([("(top level)", "expected a mapping")])
    check = _Checker()
    top = check.mapping(data, "", ("kubernetes", "jupyterhub_chart", "clusters"), ())
    kubernetes = _offered(check, top.get("kubernetes"))
    latest = (
        check.chart(top["jupyterhub_chart"], "jupyterhub_chart")
        if "jupyterhub_chart" in top
        else None
    )
    listed = top.get("kubernetes")
    clusters = _clusters(
        check, top.get("clusters"), set(listed) if isinstance(listed, dict) else None
    )
    if check.problems:
        raise ObservationError(check.problems)
    return Observation(kubernetes or {}, latest or Chart(0, 0, 0), clusters or ())


def _offered(check: _Checker, data: Any) -> dict[str, dict[int, dt.date]] | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        check.fail("kubernetes", "expected a mapping of provider to offered versions")
        return None
    offered: dict[str, dict[int, dt.date]] = {}
    for provider, versions in data.items():
        path = _join("kubernetes", str(provider))
        if provider not in PROVIDERS:
            check.fail(
                path, f"unknown provider {provider!r}; expected one of {', '.join(PROVIDERS)}"
            )
            continue
        if not isinstance(versions, dict) or not versions:
            check.fail(
                path,
                "expected a mapping of each offered minor version to its end of standard support",
            )
            continue
        offered[provider] = {}
        for version, end in versions.items():
            where = _join(path, str(version))
            minor, day = check.minor(version, where), check.date(end, where)
            if minor is not None and day is not None:
                offered[provider][minor] = day
    return offered


def _clusters(check: _Checker, data: Any, listed: set[Any] | None) -> tuple[Cluster, ...] | None:
    """The clusters; ``listed`` are the providers the ``kubernetes`` entry names (a provider
    whose entry is there but broken is reported there, not again for each cluster)."""
    if data is None:
        return None
    if not isinstance(data, list):
        check.fail("clusters", "expected a list of clusters")
        return None
    clusters, seen = [], {}
    for i, item in enumerate(data):
        path = f"clusters[{i}]"
        entry = check.mapping(
            item, path, ("name", "provider", "control_plane", "chart"), ("node_pools", "canary")
        )
        if entry is None:
            continue
        name = check.name(entry["name"], f"{path}.name") if "name" in entry else None
        if name is not None:
            if name in seen:
                check.fail(f"{path}.name", f"duplicate cluster name {name!r} (also {seen[name]})")
            seen.setdefault(name, path)
        provider = entry.get("provider")
        if "provider" in entry and provider not in PROVIDERS:
            check.fail(
                f"{path}.provider",
                f"unknown provider {provider!r}; expected one of {', '.join(PROVIDERS)}",
            )
        elif provider is not None and listed is not None and provider not in listed:
            check.fail(f"{path}.provider", f"provider {provider!r} has no entry under kubernetes")
        control = None
        if "control_plane" in entry:
            control = check.mapping(
                entry["control_plane"], f"{path}.control_plane", ("version", "upgraded_on"), ()
            )
        minor = upgraded = None
        if control is not None:
            if "version" in control:
                minor = check.minor(control["version"], f"{path}.control_plane.version")
            if "upgraded_on" in control:
                upgraded = check.date(control["upgraded_on"], f"{path}.control_plane.upgraded_on")
        pools = _pools(check, entry.get("node_pools") or [], f"{path}.node_pools")
        chart = check.chart(entry["chart"], f"{path}.chart") if "chart" in entry else None
        canary = entry.get("canary", False)
        if not isinstance(canary, bool):
            check.fail(f"{path}.canary", f"{canary!r} is not true or false")
        if None not in (name, minor, upgraded, pools, chart) and provider in PROVIDERS:
            clusters.append(
                Cluster(name, provider, minor, upgraded, pools, chart, canary is True)  # type: ignore[arg-type]
            )
    return tuple(clusters)


def _pools(check: _Checker, data: Any, path: str) -> tuple[NodePool, ...] | None:
    if not isinstance(data, list):
        check.fail(path, "expected a list of node pools")
        return None
    pools, names, ok = [], set(), True
    for i, item in enumerate(data):
        where = f"{path}[{i}]"
        entry = check.mapping(item, where, ("name", "version", "upgraded_on"), ())
        if entry is None or len(entry.keys() & {"name", "version", "upgraded_on"}) < 3:
            ok = False
            continue
        name = check.name(entry["name"], f"{where}.name")
        if name is not None and name in names:
            check.fail(f"{where}.name", f"duplicate node pool name {name!r} in this cluster")
        names.add(name)
        minor = check.minor(entry["version"], f"{where}.version")
        day = check.date(entry["upgraded_on"], f"{where}.upgraded_on")
        if None in (name, minor, day):
            ok = False
        else:
            pools.append(NodePool(name, minor, day))  # type: ignore[arg-type]
    return tuple(pools) if ok else None


def cluster_document(cluster: Cluster) -> dict[str, Any]:
    """A cluster as the observation document writes it (versions as strings, dates ISO)."""
    entry: dict[str, Any] = {
        "name": cluster.name,
        "provider": cluster.provider,
        "control_plane": {
            "version": minor_text(cluster.minor),
            "upgraded_on": cluster.upgraded_on.isoformat(),
        },
        "node_pools": [
            {
                "name": p.name,
                "version": minor_text(p.minor),
                "upgraded_on": p.upgraded_on.isoformat(),
            }
            for p in cluster.node_pools
        ],
        "chart": str(cluster.chart),
    }
    if cluster.canary:
        entry["canary"] = True
    return entry
