"""Platform upkeep policy: which Kubernetes and JupyterHub chart upgrades each cluster needs.

Pure functions, no Airflow: ``engagements upkeep plan FILE`` and the upkeep DAG's plan step
call the same :func:`plan`. Its input is an observation of the fleet (what each provider
offers, the newest chart release, each cluster's versions), as a YAML or JSON document; its
output the plan document: each cluster's ordered actions with their reasons and due dates, and
the batches the work is done in (canaries first). Every number of the policy is a setting
(:class:`UpkeepSettings`, Variables ``engagements_upkeep_<name>``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from engagements.settings import resolve_settings

PROVIDERS = ("aws", "gcp", "azure", "jetstream2")
_MINOR = re.compile(r"1\.(0|[1-9]\d*)")
_CHART = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class UpkeepSettings:
    """Settings of the upkeep lifecycle, resolved like :mod:`engagements.settings`.

    The first seven are the policy (:class:`Policy`); the others say how the DAG observes and
    acts. Each comes from the Variable ``engagements_<name>``, else ``ENGAGEMENTS_<NAME>``.
    """

    upkeep_supported_minors: str = "3"
    """Control planes stay within this many newest minors their provider offers."""
    upkeep_end_of_support_days: str = "90"
    """Upgrade when the control plane's minor leaves standard support within these days."""
    upkeep_control_plane_cadence_days: str = "183"
    """Upgrade a control plane not upgraded for longer than this, when a newer minor exists."""
    upkeep_node_pool_skew_minors: str = "2"
    """Upgrade a node pool this many minors (or more) behind its control plane's target."""
    upkeep_node_pool_cadence_days: str = "365"
    """Upgrade a node pool not upgraded for longer than this, when it is behind the target."""
    upkeep_node_pool_first_minors: str = "3"
    """A pool this many minors behind the current control plane is upgraded before it."""
    upkeep_batch_size: str = "5"
    """Clusters per batch after the canary batch."""
    upkeep_notice_days: str = "7"
    """The maintenance window starts at least this many days after the notice."""
    upkeep_window_days: str = "7"
    """How many days the maintenance window lasts."""
    upkeep_fleet_file: str = ""
    """The observation used without connections; empty means $AIRFLOW_HOME/fleet.yaml."""
    upkeep_kubernetes_versions: str = ""
    """JSON: per provider, each offered minor and its end of standard support, e.g.
    ``{"azure": {"1.32": "2026-03-31"}}``: Azure and Jetstream2 have no API for it here; for
    GCP it dates the minors GKE offers beyond the clusters' own."""
    upkeep_chart_repo: str = "jupyterhub/zero-to-jupyterhub-k8s"
    """GitHub repository whose releases are the JupyterHub Helm chart's."""
    upkeep_health_url: str = "https://{domain}/hub/health"
    """Each hub's health check after an upgrade; ``{domain}`` is its JupyterHub domain."""


def load_upkeep_settings(*, use_variables: bool = False) -> UpkeepSettings:
    return resolve_settings(UpkeepSettings, use_variables=use_variables)


class SettingError(ValueError):
    """A setting that cannot be used; the message names it."""


@dataclass(frozen=True)
class Policy:
    """The numbers of the policy (see :func:`plan`); defaults as the runbook's upkeep asks."""

    supported_minors: int = 3
    end_of_support_days: int = 90
    control_plane_cadence_days: int = 183
    node_pool_skew_minors: int = 2
    node_pool_cadence_days: int = 365
    node_pool_first_minors: int = 3
    batch_size: int = 5

    @classmethod
    def from_settings(cls, settings: UpkeepSettings) -> Policy:
        return cls(
            **{
                f.name: setting_number(settings, f.name, 0 if f.name.endswith("_days") else 1)
                for f in fields(cls)
            }
        )


def setting_number(settings: UpkeepSettings, name: str, lowest: int) -> int:
    """The whole number of setting ``upkeep_<name>``, at least ``lowest``."""
    text = str(getattr(settings, f"upkeep_{name}")).strip()
    if not text.isdigit() or int(text) < lowest:
        raise SettingError(
            f"engagements_upkeep_{name}: {text!r} is not a whole number of at least {lowest}"
        )
    return int(text)


# The observation document.


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


def minor_text(minor: int) -> str:
    """``31`` as the version ``1.31``: minors are compared as numbers, 1.9 before 1.10."""
    return f"1.{minor}"


def parse_minor(text: str) -> int | None:
    """The minor of a ``1.N`` string, or None when it is not one."""
    match = _MINOR.fullmatch(text)
    return int(match[1]) if match else None


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
    clusters = _clusters(check, top.get("clusters"), kubernetes)
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


def _clusters(
    check: _Checker, data: Any, kubernetes: dict[str, dict[int, dt.date]] | None
) -> tuple[Cluster, ...] | None:
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
        elif provider is not None and kubernetes is not None and provider not in kubernetes:
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
        pools = _pools(check, entry.get("node_pools", []), f"{path}.node_pools")
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


# The policy.


def plan(observation: Observation, today: dt.date, policy: Policy | None = None) -> dict[str, Any]:
    """The plan document: every cluster in input order with its actions, then the batches.

    Rules (numbers from ``policy``): a control plane is upgraded one minor when its minor is
    older than the ``supported_minors`` newest its provider offers (``outside-window``), when
    its minor's standard support ends within ``end_of_support_days`` or has ended
    (``end-of-support``; ``due`` is that day), or when it was last upgraded more than
    ``control_plane_cadence_days`` ago and a newer minor is offered (``cadence``). Node pools
    follow the control plane's target: ``skew`` at ``node_pool_skew_minors`` behind, ``cadence``
    after ``node_pool_cadence_days`` when behind at all; a pool ``node_pool_first_minors``
    behind the current control plane goes first, to the current version. Then the chart, when
    older than the newest release (``chart-behind``).
    """
    policy = policy or Policy()
    clusters, due = [], []
    for cluster in observation.clusters:
        actions = cluster_actions(
            cluster,
            observation.kubernetes[cluster.provider],
            observation.jupyterhub_chart,
            today,
            policy,
        )
        clusters.append({"name": cluster.name, "actions": actions})
        if actions:
            due.append(cluster)
    return {
        "today": today.isoformat(),
        "clusters": clusters,
        "batches": batches(due, policy.batch_size),
    }


def control_plane_reasons(
    cluster: Cluster, offered: dict[int, dt.date], today: dt.date, policy: Policy
) -> tuple[list[str], dt.date | None]:
    """Why the control plane is upgraded (sorted; empty: it is not), and by when."""
    minors = sorted(offered)
    reasons, due = [], None
    if cluster.minor < minors[-policy.supported_minors :][0]:
        reasons.append("outside-window")
    end = offered.get(cluster.minor)
    if end is not None and (end - today).days < policy.end_of_support_days:
        reasons.append("end-of-support")
        due = end
    idle = (today - cluster.upgraded_on).days
    if idle > policy.control_plane_cadence_days and minors[-1] > cluster.minor:
        reasons.append("cadence")
    return sorted(reasons), due


def cluster_actions(
    cluster: Cluster,
    offered: dict[int, dt.date],
    latest: Chart,
    today: dt.date,
    policy: Policy,
) -> list[dict[str, Any]]:
    """The cluster's actions in the order to do them (see :func:`plan`)."""
    reasons, due = control_plane_reasons(cluster, offered, today, policy)
    upgraded = bool(reasons)
    target = cluster.minor + 1 if upgraded else cluster.minor
    first, after = [], []
    for pool in cluster.node_pools:
        behind = target - pool.minor
        idle = (today - pool.upgraded_on).days > policy.node_pool_cadence_days and behind > 0
        if upgraded and cluster.minor - pool.minor >= policy.node_pool_first_minors:
            first.append(
                _pool_action(pool, cluster.minor, ["skew", *(["cadence"] if idle else [])])
            )
            continue
        why = (["skew"] if behind >= policy.node_pool_skew_minors else []) + (
            ["cadence"] if idle else []
        )
        if why:
            after.append(_pool_action(pool, target, why))
    actions = first
    if upgraded:
        actions.append(
            {
                "kind": "control_plane",
                "from": minor_text(cluster.minor),
                "to": minor_text(target),
                "reasons": reasons,
                "due": due.isoformat() if due else None,
            }
        )
    actions += after
    if cluster.chart < latest:
        actions.append(
            {
                "kind": "chart",
                "from": str(cluster.chart),
                "to": str(latest),
                "reasons": ["chart-behind"],
                "major": cluster.chart.major != latest.major,
                "due": None,
            }
        )
    return actions


def _pool_action(pool: NodePool, to: int, reasons: list[str]) -> dict[str, Any]:
    return {
        "kind": "node_pool",
        "pool": pool.name,
        "from": minor_text(pool.minor),
        "to": minor_text(to),
        "reasons": sorted(reasons),
        "due": None,
    }


def batches(clusters: list[Cluster], size: int) -> list[list[str]]:
    """Canaries first as one batch, then the others in batches of ``size``; names sorted."""
    if size < 1:
        raise ValueError(f"a batch holds at least 1 cluster, not {size}")
    canaries = sorted(c.name for c in clusters if c.canary)
    others = sorted(c.name for c in clusters if not c.canary)
    rest = [others[i : i + size] for i in range(0, len(others), size)]
    return [canaries, *rest] if canaries else rest
