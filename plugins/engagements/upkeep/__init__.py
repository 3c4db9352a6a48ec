"""Platform upkeep: keep every community's cluster and hub on supported versions.

Pure functions, no Airflow. :mod:`.observation` reads and checks an observation of the fleet,
:mod:`.policy` plans the upgrades it calls for (``engagements upkeep plan FILE`` and the DAG's
plan step run the same :func:`plan`), :mod:`.settings` holds the policy's numbers and the
lifecycle's other settings, :mod:`.maintenance` the records and texts of acting on a plan.
"""

from __future__ import annotations

from engagements.upkeep.observation import (
    PROVIDERS,
    Chart,
    Cluster,
    NodePool,
    Observation,
    ObservationError,
    cluster_document,
    load_observation,
    parse_observation,
)
from engagements.upkeep.policy import batches, cluster_actions, control_plane_reasons, plan
from engagements.upkeep.settings import (
    Policy,
    SettingError,
    UpkeepSettings,
    load_upkeep_settings,
    setting_number,
)

__all__ = [
    "PROVIDERS",
    "Chart",
    "Cluster",
    "NodePool",
    "Observation",
    "ObservationError",
    "Policy",
    "SettingError",
    "UpkeepSettings",
    "batches",
    "cluster_actions",
    "cluster_document",
    "control_plane_reasons",
    "load_observation",
    "load_upkeep_settings",
    "parse_observation",
    "plan",
    "setting_number",
]
