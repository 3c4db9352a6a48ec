"""A cluster's versions now: through its provider's hook when connected, else the fleet file.

Kubernetes versions come from EKS (``aws_default``), GKE (``google_cloud_default``) or the
cluster's own API server (``kubernetes_<cluster>``, Azure and Jetstream2, whose offered
versions are a setting); the JupyterHub chart from the infrastructure repository when it holds
basehub's Chart.yaml. Without them, the fleet file (the embedded default) answers, and the
source of each answer is returned so that every step can say where it read what.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml
from airflow.sdk.exceptions import AirflowFailException

from engagements.hooks import connection_exists

if TYPE_CHECKING:
    from engagements.config import CommunityConfig
    from engagements.hooks.infra_repo import DeploymentSettings
    from engagements.upkeep import Observation, UpkeepSettings

log = logging.getLogger(__name__)

BASEHUB_CHART = "helm-charts/basehub/Chart.yaml"
"""Where the infrastructure repository pins the JupyterHub chart every hub runs."""


class NotObservable(RuntimeError):
    """Neither the provider nor the fleet file can tell this cluster's versions."""


@dataclass(frozen=True)
class Connections:
    aws: str = "aws_default"
    gcp: str = "google_cloud_default"
    github: str = "github_default"

    @staticmethod
    def kubernetes(cluster: str) -> str:
        return f"kubernetes_{cluster}"


def read_fleet(settings: UpkeepSettings) -> Observation | None:
    """The fleet file, checked like any observation; None when there is none."""
    from engagements.upkeep import ObservationError, load_observation

    path = settings.fleet_path
    if not path.exists():
        return None
    try:
        return load_observation(path)
    except ObservationError as exc:
        raise AirflowFailException(
            f"The fleet file {path} is not a valid observation:\n"
            + "\n".join(f"{path}: {where}: {reason}" for where, reason in exc.problems)
        ) from None


def _from_fleet(fleet: Observation | None, settings: UpkeepSettings, cluster: str, why: str):
    from engagements.upkeep import cluster_document

    entry = next((c for c in fleet.clusters if c.name == cluster), None) if fleet else None
    if entry is None:
        raise NotObservable(
            f"{why}, and the fleet file {settings.fleet_path} has no cluster {cluster}"
        )
    return cluster_document(entry), fleet.kubernetes[entry.provider]  # type: ignore[union-attr]


def observe_kubernetes(
    config: CommunityConfig,
    settings: UpkeepSettings,
    fleet: Observation | None,
    conns: Connections,
) -> tuple[dict[str, Any], dict[str, str], str]:
    """(the cluster's versions, what its provider offers, where both were read)."""
    from engagements.versions import minor_text

    cluster, provider = config.cluster_name, config.cloud.provider.value
    if provider == "aws" and connection_exists(conns.aws):
        from engagements.hooks.eks import EksVersionsHook

        hook = EksVersionsHook(aws_conn_id=conns.aws, region_name=config.cloud.region)
        versions, offered = hook.cluster_versions(cluster), hook.offered_versions()
        source = f"EKS cluster {cluster} in {config.cloud.region} (connection {conns.aws})"
    elif provider == "gcp" and connection_exists(conns.gcp):
        from engagements.hooks.gke import GkeVersionsHook

        location = config.cloud.zone or config.cloud.region
        hook = GkeVersionsHook(gcp_conn_id=conns.gcp, location=location)
        versions = hook.cluster_versions(cluster, project_id=config.cloud.account)
        dates = settings.offered("gcp")
        own = versions["control_plane"].pop("end_of_support", None)
        if own:  # GKE's own word for the cluster's minor, offered to new clusters or not
            dates[versions["control_plane"]["version"]] = own
        minors = hook.offered_minors(project_id=config.cloud.account)
        offered = {m: dates[m] for m in minors if m in dates}
        if own:
            offered[versions["control_plane"]["version"]] = own
        undated = [m for m in minors if m not in dates]
        if undated:
            log.warning(
                "GKE offers %s without an end of standard support known here: left out of the"
                " plan; add them to engagements_upkeep_kubernetes_versions under gcp",
                ", ".join(undated),
            )
        source = (
            f"GKE cluster {cluster} in {config.cloud.account}/{location} (connection {conns.gcp})"
        )
    elif provider in ("azure", "jetstream2") and connection_exists(conns.kubernetes(cluster)):
        from engagements.hooks.kubernetes import ClusterVersionsHook

        conn_id = conns.kubernetes(cluster)
        offered = settings.offered(provider)
        if not offered:
            raise NotObservable(
                f"engagements_upkeep_kubernetes_versions names no versions {provider} offers"
            )
        versions = ClusterVersionsHook(conn_id=conn_id).cluster_versions()
        source = f"the Kubernetes API of {cluster} (connection {conn_id}); offered versions from"
        source += " engagements_upkeep_kubernetes_versions"
    else:
        conn_id = {"aws": conns.aws, "gcp": conns.gcp}.get(provider, conns.kubernetes(cluster))
        entry, minors = _from_fleet(fleet, settings, cluster, f"no {conn_id!r} connection")
        offered = {minor_text(m): day.isoformat() for m, day in minors.items()}
        return entry, offered, f"the fleet file {settings.fleet_path} (no {conn_id!r} connection)"
    observed = {"name": cluster, "provider": provider, **versions}
    return observed, offered, source


def observe_chart(
    config: CommunityConfig,
    settings: UpkeepSettings,
    deployment: DeploymentSettings,
    fleet: Observation | None,
    conns: Connections,
) -> tuple[str, str]:
    """(the JupyterHub chart the cluster's hubs run, where it was read)."""
    from engagements.hooks.infra_repo import get_infra_repository
    from engagements.upkeep.maintenance import jupyterhub_pin, oldest_chart

    cluster = config.cluster_name
    repo = get_infra_repository(deployment, github_conn_id=conns.github)
    where = deployment.infra_repo or str(deployment.local_repo_path)
    basehub = repo.read_file(BASEHUB_CHART)
    if basehub is None:
        entry, _ = _from_fleet(
            fleet,
            settings,
            cluster,
            f"the infrastructure repository {where} has no {BASEHUB_CHART}",
        )
        return entry[
            "chart"
        ], f"the fleet file {settings.fleet_path} ({where} has no {BASEHUB_CHART})"
    pins = [jupyterhub_pin(basehub)]
    cluster_yaml = repo.read_file(f"config/clusters/{cluster}/cluster.yaml")
    for hub in (yaml.safe_load(cluster_yaml or "") or {}).get("hubs") or []:
        if hub.get("chart_override"):
            override = repo.read_file(f"config/clusters/{cluster}/{hub['chart_override']}")
            pins.append(jupyterhub_pin(override or ""))
    chart = oldest_chart(p for p in pins if p)
    if chart is None:
        raise NotObservable(f"{BASEHUB_CHART} in {where} pins no jupyterhub chart version")
    return chart, f"{BASEHUB_CHART} and config/clusters/{cluster}/cluster.yaml in {where}"


def observe_cluster(
    config: CommunityConfig,
    settings: UpkeepSettings,
    deployment: DeploymentSettings,
    conns: Connections,
) -> dict[str, Any]:
    """The cluster now: ``cluster`` (versions, ``since`` or, from the fleet file,
    ``upgraded_on``), ``offered`` and ``sources``; :class:`NotObservable` when nothing can tell."""
    fleet = read_fleet(settings)
    cluster, offered, k8s_source = observe_kubernetes(config, settings, fleet, conns)
    chart, chart_source = observe_chart(config, settings, deployment, fleet, conns)
    cluster["chart"] = chart
    if config.cluster_name in settings.canaries:
        cluster["canary"] = True
    return {
        "cluster": cluster,
        "offered": {config.cloud.provider.value: offered},
        "sources": {"kubernetes": k8s_source, "chart": chart_source},
    }
