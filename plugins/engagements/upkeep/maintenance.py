"""Platform upkeep after the plan: the store's records, the issue, the maintenance window.

Pure functions over the store protocol and plain data; no Airflow. The upkeep DAG observes
each cluster, plans with :func:`engagements.upkeep.plan`, then acts per cluster with these.
A cluster is named after its community, so the community id keys every record.

Store records (Actions table), per community:

- ``upkeep-observation`` (kind ``upkeep_observation``): the cluster's last observation: its
  entry of the observation document (each version and the day it was last upgraded), the
  versions its provider offers, where each was read, and when;
- ``upkeep-plan:<targets>`` (kind ``upkeep_plan``): a planned upgrade, e.g.
  ``upkeep-plan:1.32+chart-4.3.3``: its actions, milestones, batch and maintenance window;
- ``upkeep-issue:<targets>`` (kind ``upkeep_issue``): its issue, ``planned`` (no GitHub) or
  ``opened`` (repository, number, URL);
- ``email:upkeep-notice:<targets>``: the maintenance notice, sent once;
- ``upkeep-result:<targets>`` (kind ``upkeep_result``): the check after the upgrade:
  ``verified`` (versions reached and hubs healthy) or ``failed``, with what was seen.

Milestones: ``upgraded_<cluster>_<minor>`` for the Kubernetes work (control plane and node
pools) and ``upgraded_<cluster>_chart-<version>`` for the chart; the Kubernetes one is due on
the day standard support ends when that is why it is planned (overdue: support is emailed).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from engagements.messages.emails import template_environment
from engagements.milestones import UPGRADED, upgrade_milestone
from engagements.store.base import EngagementStore, MilestoneRecord, upsert_action
from engagements.upkeep.observation import Chart
from engagements.upkeep.settings import Policy
from engagements.versions import parse_minor

OBSERVATION = "upkeep-observation"
OBSERVATION_KIND = "upkeep_observation"
PLAN_KIND = "upkeep_plan"
ISSUE_KIND = "upkeep_issue"
RESULT_KIND = "upkeep_result"
VERIFIED = "verified"
KUBERNETES_KINDS = ("control_plane", "node_pool")


def kubernetes_target(actions: Iterable[Mapping[str, Any]]) -> str | None:
    """The Kubernetes minor the cluster ends on after its actions (None: no Kubernetes work)."""
    minors = [a["to"] for a in actions if a["kind"] in KUBERNETES_KINDS]
    return max(minors, key=lambda m: parse_minor(m) or 0) if minors else None


def chart_target(actions: Iterable[Mapping[str, Any]]) -> str | None:
    return next((a["to"] for a in actions if a["kind"] == "chart"), None)


def targets(actions: list[dict[str, Any]]) -> str:
    """What a planned upgrade moves to, e.g. ``1.32+chart-4.3.3``: the key of its records."""
    kubernetes, chart = kubernetes_target(actions), chart_target(actions)
    return "+".join([*([kubernetes] if kubernetes else []), *([f"chart-{chart}"] if chart else [])])


def upgrade_milestones(cluster: str, actions: list[dict[str, Any]]) -> dict[str, str | None]:
    """The milestones an engineer records: ``kubernetes`` and ``chart`` (None: no such work)."""
    kubernetes, chart = kubernetes_target(actions), chart_target(actions)
    return {
        "kubernetes": upgrade_milestone(cluster, kubernetes) if kubernetes else None,
        "chart": upgrade_milestone(cluster, f"chart-{chart}") if chart else None,
    }


def kubernetes_due(actions: Iterable[Mapping[str, Any]]) -> dt.date | None:
    dues = [a["due"] for a in actions if a["kind"] in KUBERNETES_KINDS and a.get("due")]
    return dt.date.fromisoformat(min(dues)) if dues else None


def record_plan(
    store: EngagementStore,
    community_id: str,
    actions: list[dict[str, Any]],
    *,
    today: dt.date,
    batch: int,
    batches: int,
) -> dict[str, Any]:
    """Plan the upgrade's milestones and record its actions (a re-run replaces the record but
    keeps the window a notice already announced)."""
    milestones = upgrade_milestones(community_id, actions)
    for kind, milestone in milestones.items():
        if milestone is not None:
            store.plan_milestone(
                community_id, milestone, kubernetes_due(actions) if kind == "kubernetes" else None
            )
    key = f"upkeep-plan:{targets(actions)}"
    before = store.get_action(community_id, key)
    detail = {
        "planned_on": today.isoformat(),
        "actions": actions,
        "milestones": milestones,
        "batch": batch,
        "batches": batches,
        "window": (before.detail.get("window") if before else None),
    }
    upsert_action(store, community_id, key, PLAN_KIND, detail)
    return detail


# Observations kept from one run to the next.


def with_history(
    observed: dict[str, Any],
    previous: Mapping[str, Any] | None,
    today: dt.date,
    done_on: Mapping[str, dt.date],
) -> dict[str, Any]:
    """The cluster's entry of the observation document, each ``since`` turned ``upgraded_on``.

    ``observed`` has each version and, where the provider tells, ``since`` (a date it has run
    since at the latest: EKS creation times, the oldest node of a pool). A version unchanged
    since ``previous`` (the last recorded observation) keeps its day; a new one takes the day
    its ``upgraded_*`` milestone was recorded (``done_on``, by minor), else its ``since`` if
    that is later than the previous observation, else today.
    """
    before = (previous or {}).get("cluster") or {}
    seen_on = (previous or {}).get("observed_on")

    def upgraded_on(current: Mapping[str, Any], earlier: Mapping[str, Any] | None) -> str:
        version = current["version"]
        if earlier and earlier.get("version") == version:
            return earlier["upgraded_on"]
        if version in done_on:
            return done_on[version].isoformat()
        since = current.get("since")
        if since and (seen_on is None or since > seen_on):
            return since
        return today.isoformat()

    pools_before = {p["name"]: p for p in before.get("node_pools", [])}
    entry = {
        "name": observed["name"],
        "provider": observed["provider"],
        "control_plane": {
            "version": observed["control_plane"]["version"],
            "upgraded_on": upgraded_on(observed["control_plane"], before.get("control_plane")),
        },
        "node_pools": [
            {
                "name": pool["name"],
                "version": pool["version"],
                "upgraded_on": upgraded_on(pool, pools_before.get(pool["name"])),
            }
            for pool in observed["node_pools"]
        ],
        "chart": observed["chart"],
    }
    if observed.get("canary"):
        entry["canary"] = True
    return entry


def upgrades_done(milestones: Iterable[MilestoneRecord], cluster: str) -> dict[str, dt.date]:
    """Kubernetes minor -> the day its ``upgraded_<cluster>_<minor>`` milestone was recorded."""
    done = {}
    prefix = f"{UPGRADED.prefix}{cluster}_"
    for record in milestones:
        minor = record.milestone.removeprefix(prefix)
        if record.milestone.startswith(prefix) and record.done_at and parse_minor(minor):
            done[minor] = record.done_at.date()
    return done


def jupyterhub_pin(chart_yaml: str) -> str | None:
    """The ``jupyterhub`` dependency's version in a Chart.yaml (basehub's pins it)."""
    data = yaml.safe_load(chart_yaml) or {}
    for dependency in data.get("dependencies") or []:
        if isinstance(dependency, dict) and dependency.get("name") == "jupyterhub":
            return str(dependency.get("version"))
    return None


def newest_chart(tags: Iterable[str]) -> str | None:
    """The highest ``MAJOR.MINOR.PATCH`` among release tags (``v`` prefix allowed)."""
    charts = [c for c in (Chart.parse(t.removeprefix("v")) for t in tags) if c is not None]
    return str(max(charts)) if charts else None


def oldest_chart(versions: Iterable[str]) -> str | None:
    """The cluster's chart: the oldest its hubs run (versions that are not semantic ignored)."""
    charts = [c for c in (Chart.parse(v) for v in versions) if c is not None]
    return str(min(charts)) if charts else None


# Acting on a plan.


def maintenance_window(
    sent_on: dt.date, notice_days: int, window_days: int
) -> tuple[dt.date, dt.date]:
    """The window a notice sent on ``sent_on`` announces: ``notice_days`` ahead at least."""
    start = sent_on + dt.timedelta(days=notice_days)
    return start, start + dt.timedelta(days=max(1, window_days) - 1)


def describe(action: Mapping[str, Any]) -> str:
    what = {
        "control_plane": "Control plane",
        "node_pool": f"Node pool `{action.get('pool')}`",
        "chart": "JupyterHub chart (basehub's `jupyterhub` dependency)",
    }[action["kind"]]
    major = ", a major upgrade: read the chart's changelog" if action.get("major") else ""
    return f"{what}: {action['from']} → {action['to']}{major}"


def explain(action: Mapping[str, Any], policy: Policy) -> list[str]:
    """Each reason of an action in words, with the policy's numbers."""
    pool = action["kind"] == "node_pool"
    texts = {
        "outside-window": f"older than the {policy.supported_minors} newest minors the provider"
        " offers",
        "end-of-support": f"its standard support ends on {action.get('due')} (within"
        f" {policy.end_of_support_days} days, or already ended)",
        "cadence": f"last upgraded more than {policy.node_pool_cadence_days} days ago and behind"
        " the control plane's target"
        if pool
        else f"last upgraded more than {policy.control_plane_cadence_days} days ago and a newer"
        " minor is offered",
        "skew": f"{policy.node_pool_skew_minors} or more minors behind the control plane's target"
        f" (at least {policy.node_pool_first_minors} behind the current control plane: before it)",
        "chart-behind": "older than the newest release of the JupyterHub chart",
    }
    return [f"`{reason}`: {texts[reason]}" for reason in action["reasons"]]


def issue_title(cluster: str, actions: list[dict[str, Any]]) -> str:
    """Stable for one planned upgrade: a re-run finds the issue by it (and its label)."""
    kubernetes, chart = kubernetes_target(actions), chart_target(actions)
    parts = [*([f"Kubernetes {kubernetes}"] if kubernetes else [])]
    parts += [f"JupyterHub chart {chart}"] if chart else []
    return f"Platform upkeep: upgrade {cluster} to {' and '.join(parts)}"


def issue_label(cluster: str) -> str:
    return f"upkeep:{cluster}"


def render_issue(
    *,
    cluster: str,
    name: str,
    provider: str,
    plan: Mapping[str, Any],
    policy: Policy,
    hubs: list[tuple[str, str]],
) -> str:
    """The issue body: the ordered checklist with each action's reasons and due date."""
    return (
        template_environment()
        .get_template("upkeep/issue.md.j2")
        .render(
            cluster=cluster,
            name=name,
            provider=provider,
            plan=plan,
            actions=[
                {"text": describe(a), "reasons": explain(a, policy), "due": a.get("due")}
                for a in plan["actions"]
            ],
            window=plan.get("window"),
            hubs=hubs,
        )
    )


def unmet(actions: Iterable[Mapping[str, Any]], entry: Mapping[str, Any]) -> list[str]:
    """What the observed cluster does not show done yet; empty when every action is.

    A node pool that no longer exists counts as done: new pools are rolled out and the old
    ones removed rather than upgraded in place.
    """
    pools = {p["name"]: p["version"] for p in entry.get("node_pools", [])}
    missing = []
    for action in actions:
        to = action["to"]
        if action["kind"] == "control_plane":
            now = entry["control_plane"]["version"]
            if (parse_minor(now) or 0) < (parse_minor(to) or 0):
                missing.append(f"control plane at {now}, not yet {to}")
        elif action["kind"] == "node_pool":
            now = pools.get(action["pool"])
            if now is not None and (parse_minor(now) or 0) < (parse_minor(to) or 0):
                missing.append(f"node pool {action['pool']} at {now}, not yet {to}")
        elif (Chart.parse(entry["chart"]) or Chart(0, 0, 0)) < (Chart.parse(to) or Chart(0, 0, 0)):
            missing.append(f"chart at {entry['chart']}, not yet {to}")
    return missing


def pending_clusters(store: EngagementStore, after: Iterable[tuple[str, str]]) -> list[str]:
    """Clusters of ``(community id, targets)`` whose upgrade is not verified yet."""
    pending = []
    for community_id, key in after:
        result = store.get_action(community_id, f"upkeep-result:{key}")
        if result is None or result.detail.get("state") != VERIFIED:
            pending.append(f"{community_id} ({key})")
    return pending
