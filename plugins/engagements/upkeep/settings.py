"""Settings of the upkeep lifecycle, and the policy's numbers they hold.

Resolved like :mod:`engagements.settings`: the Variable ``engagements_<name>``, else the
environment variable ``ENGAGEMENTS_<NAME>``, else the default here; read when a task runs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path

from engagements.settings import PROJECT_ROOT, resolve_settings


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
    upkeep_canary_clusters: str = ""
    """Clusters upgraded first, as the canary batch (comma-separated names)."""

    @property
    def fleet_path(self) -> Path:
        home = os.environ.get("AIRFLOW_HOME", str(PROJECT_ROOT / ".airflow"))
        return Path(self.upkeep_fleet_file or Path(home) / "fleet.yaml")

    @property
    def canaries(self) -> frozenset[str]:
        return frozenset(n.strip() for n in self.upkeep_canary_clusters.split(",") if n.strip())

    def offered(self, provider: str) -> dict[str, str]:
        """What ``upkeep_kubernetes_versions`` says ``provider`` offers (minor -> end date)."""
        if not self.upkeep_kubernetes_versions.strip():
            return {}
        try:
            data = json.loads(self.upkeep_kubernetes_versions)
        except json.JSONDecodeError as exc:
            raise SettingError(
                f"engagements_upkeep_kubernetes_versions is not JSON: {exc}"
            ) from None
        versions = data.get(provider) if isinstance(data, dict) else None
        if versions is not None and not isinstance(versions, dict):
            raise SettingError(
                f"engagements_upkeep_kubernetes_versions: {provider} must map each minor to the"
                " end of its standard support"
            )
        return {str(k): str(v) for k, v in (versions or {}).items()}


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
