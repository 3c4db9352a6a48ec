"""The upkeep policy: which upgrades each cluster needs, in which order and batch.

Pure: ``engagements upkeep plan FILE`` and the upkeep DAG's plan step call the same
:func:`plan`. Every number is a :class:`~engagements.upkeep.settings.Policy` setting.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from engagements.upkeep.observation import Chart, Cluster, NodePool, Observation
from engagements.upkeep.settings import Policy
from engagements.versions import minor_text


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
