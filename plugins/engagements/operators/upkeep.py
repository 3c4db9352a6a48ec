"""Operators of the platform upkeep: observe each cluster, plan, notify, open the issue.

Thin wrappers over :mod:`engagements.upkeep` (the policy, the records) and
:mod:`engagements.tasks.cluster_versions` (where each cluster's versions are read: its
provider when connected, else the fleet file; every step logs the source it used).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

import yaml
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from engagements.hooks import connection_exists
from engagements.operators.costs import run_date
from engagements.store.base import EngagementStatus, upsert_action
from engagements.tasks import EngagementOperator
from engagements.tasks.cluster_versions import (
    Connections,
    NotObservable,
    observe_cluster,
    read_fleet,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from engagements.hooks.infra_repo import DeploymentSettings
    from engagements.upkeep import UpkeepSettings

log = logging.getLogger(__name__)

UPKEEP_STATUSES = frozenset({EngagementStatus.ACTIVE, EngagementStatus.RENEWAL})
"""Engagements under management, whose clusters are kept current (scheduled runs: Active)."""


class _UpkeepOperator(EngagementOperator):
    def __init__(self, *, connections: Connections | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.connections = connections or Connections()

    @cached_property
    def upkeep_settings(self) -> UpkeepSettings:
        from engagements.upkeep import load_upkeep_settings

        return load_upkeep_settings(use_variables=True)

    def deployment_settings(self) -> DeploymentSettings:
        from engagements.hooks.infra_repo import load_deployment_settings

        return load_deployment_settings(use_variables=True)

    def plan_record(self, key: str) -> dict[str, Any]:
        record = self.store.get_action(self.community_id, f"upkeep-plan:{key}")
        if record is None:
            raise AirflowFailException(
                f"no upkeep plan {key!r} is recorded for {self.community_id}"
            )
        return record.detail


class SelectUpkeepOperator(_UpkeepOperator):
    """The clusters of this run: every Active engagement's, or the one named by hand."""

    def __init__(self, *, community_id: str = "{{ params.community_id or '' }}", **kwargs: Any):
        super().__init__(community_id=community_id, **kwargs)

    def execute(self, context: Context) -> list[dict[str, str]]:
        engagements = self.store.list_engagements()
        if self.community_id:
            chosen = [e for e in engagements if e.community_id == self.community_id]
            if not chosen:
                raise AirflowFailException(f"no engagement for {self.community_id!r} in the store")
            if chosen[0].status not in UPKEEP_STATUSES:
                raise AirflowSkipException(
                    f"{self.community_id} is {chosen[0].status.value}: only engagements under "
                    "management (Active, Renewal) have their cluster kept current"
                )
        else:
            chosen = [e for e in engagements if e.status is EngagementStatus.ACTIVE]
        log.info("Clusters to observe: %s", ", ".join(e.community_id for e in chosen) or "none")
        return [{"community_id": e.community_id} for e in chosen]


class ObserveClusterOperator(_UpkeepOperator):
    """One cluster's versions and chart, recorded in the store as its last observation.

    Skips with the reason when neither its provider nor the fleet file can tell.
    """

    def execute(self, context: Context) -> dict[str, Any]:
        from engagements.upkeep.maintenance import (
            OBSERVATION,
            OBSERVATION_KIND,
            upgrades_done,
            with_history,
        )

        _, config = self.engagement()
        today = run_date(context)
        try:
            seen = observe_cluster(
                config, self.upkeep_settings, self.deployment_settings(), self.connections
            )
        except NotObservable as exc:
            raise AirflowSkipException(f"{config.cluster_name} not observed: {exc}") from None
        for what, source in seen["sources"].items():
            log.info("%s versions of %s read from %s", what, config.cluster_name, source)
        cluster = seen["cluster"]
        if "upgraded_on" not in cluster["control_plane"]:  # not from the fleet file
            previous = self.store.get_action(self.community_id, OBSERVATION)
            done = upgrades_done(self.store.list_milestones(self.community_id), cluster["name"])
            cluster = with_history(cluster, previous.detail if previous else None, today, done)
        detail = {"observed_on": today.isoformat(), **seen, "cluster": cluster}
        upsert_action(self.store, self.community_id, OBSERVATION, OBSERVATION_KIND, detail)
        return detail


class ObserveChartReleaseOperator(_UpkeepOperator):
    """The newest release of the JupyterHub chart: GitHub releases, else the fleet file."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(community_id="", **kwargs)

    def execute(self, context: Context) -> dict[str, str]:
        from engagements.hooks.github import GitHubHook
        from engagements.upkeep.maintenance import newest_chart

        repo = self.upkeep_settings.upkeep_chart_repo
        if connection_exists(self.connections.github):
            newest = newest_chart(GitHubHook(self.connections.github).release_tags(repo))
            source = f"GitHub releases of {repo}"
            if newest is None:
                raise AirflowFailException(f"{repo} has no release tagged MAJOR.MINOR.PATCH")
        else:
            fleet = read_fleet(self.upkeep_settings)
            if fleet is None:
                raise AirflowSkipException(
                    f"No {self.connections.github!r} connection to read the releases of {repo},"
                    f" and no fleet file at {self.upkeep_settings.fleet_path}"
                )
            newest = str(fleet.jupyterhub_chart)
            source = (
                f"the fleet file {self.upkeep_settings.fleet_path}"
                f" (no {self.connections.github!r} connection)"
            )
        log.info("Newest JupyterHub chart: %s, from %s", newest, source)
        return {"jupyterhub_chart": newest, "source": source}


class PlanUpkeepOperator(_UpkeepOperator):
    """Plan with the policy (the function ``engagements upkeep plan`` runs) and record it.

    Writes the observation and the plan to ``<artifacts>/upkeep/<date>/`` (``<date>-<community>``
    for a run by hand for one cluster; re-run the plan with ``engagements upkeep plan
    observation.yaml --today <date>``), plans each upgrade's milestones, and returns one entry
    per cluster with work for the per-cluster groups.
    """

    template_fields: Sequence[str] = ("selected", "observations", "release")

    def __init__(self, *, selected: Any, observations: Any, release: Any, **kwargs: Any) -> None:
        super().__init__(community_id="", **kwargs)
        self.selected = selected
        self.observations = observations
        self.release = release

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from engagements.upkeep import (
            ObservationError,
            Policy,
            SettingError,
            parse_observation,
            plan,
        )
        from engagements.upkeep.maintenance import record_plan, targets

        today = run_date(context)
        observations = [o for o in self.observations or [] if o]
        observed = {o["cluster"]["name"] for o in observations}
        missing = [
            s["community_id"] for s in self.selected or [] if s["community_id"] not in observed
        ]
        if missing:
            log.warning("Not observed (see their observe task): %s", ", ".join(missing))
        if not observations:
            log.info("No cluster observed: nothing to plan")
            return []
        if not self.release:
            raise AirflowFailException("The newest JupyterHub chart release is not known")
        for observation in observations:
            sources = observation.get("sources") or {}
            log.info(
                "%s: Kubernetes versions from %s; chart from %s",
                observation["cluster"]["name"],
                sources.get("kubernetes"),
                sources.get("chart"),
            )
        log.info(
            "Newest chart %s from %s", self.release["jupyterhub_chart"], self.release.get("source")
        )
        document = self.document(observations)
        try:
            policy = Policy.from_settings(self.upkeep_settings)
            result = plan(parse_observation(document), today, policy)
        except (ObservationError, SettingError) as exc:
            lines = getattr(exc, "problems", None) or [("setting", str(exc))]
            raise AirflowFailException(
                "Cannot plan:\n" + "\n".join(f"observation: {p}: {r}" for p, r in lines)
            ) from None
        one = (context.get("params") or {}).get("community_id")
        name = f"{today.isoformat()}-{one}" if one else today.isoformat()
        folder = self.settings.artifacts_path / "upkeep" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "observation.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
        (folder / "plan.json").write_text(json.dumps(result, indent=2) + "\n")
        log.info("Plan of %s (%s): %s", today, folder, json.dumps(result))
        actions = {c["name"]: c["actions"] for c in result["clusters"]}
        entries, keys = [], {}
        for number, batch in enumerate(result["batches"], 1):
            for cluster in batch:
                keys[cluster] = targets(actions[cluster])
                detail = record_plan(
                    self.store,
                    cluster,
                    actions[cluster],
                    today=today,
                    batch=number,
                    batches=len(result["batches"]),
                )
                before = result["batches"][number - 2] if number > 1 else []
                entries.append(
                    {
                        "community_id": cluster,
                        "plan": keys[cluster],
                        "after": [[c, keys[c]] for c in before],
                        "kubernetes_milestone": detail["milestones"]["kubernetes"] or "",
                        "chart_milestone": detail["milestones"]["chart"] or "",
                    }
                )
        return entries

    def document(self, observations: list[dict[str, Any]]) -> dict[str, Any]:
        """The observation document: each provider's offers (the earliest end of support where
        two clusters' answers differ), the newest chart, the clusters in name order."""
        kubernetes: dict[str, dict[str, str]] = {}
        for observation in observations:
            for provider, offered in observation["offered"].items():
                merged = kubernetes.setdefault(provider, {})
                for minor, end in offered.items():
                    merged[minor] = min(end, merged.get(minor, end))
        clusters = sorted((o["cluster"] for o in observations), key=lambda c: c["name"])
        return {
            "kubernetes": kubernetes,
            "jupyterhub_chart": self.release["jupyterhub_chart"],
            "clusters": clusters,
        }


class _PlannedUpgradeOperator(_UpkeepOperator):
    template_fields: Sequence[str] = ("community_id", "plan")

    def __init__(self, *, plan: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan = plan


class MaintenanceNoticeOperator(_PlannedUpgradeOperator):
    """Tell the representatives (technical lead in cc) the maintenance window, once per upgrade.

    The window starts ``upkeep_notice_days`` after the day the notice goes out and is recorded
    with the plan before sending, so a retry announces the same window.
    """

    def execute(self, context: Context) -> dict[str, Any]:
        from engagements.upkeep import setting_number
        from engagements.upkeep.maintenance import PLAN_KIND, maintenance_window

        _, config = self.engagement()
        plan = self.plan_record(self.plan)
        key = f"upkeep-notice:{self.plan}"
        sent = self.store.get_action(self.community_id, f"email:{key}") is not None
        today = dt.datetime.now(dt.UTC).date()
        notice = setting_number(self.upkeep_settings, "notice_days", 0)
        window = plan.get("window")
        if window is None or (
            not sent and dt.date.fromisoformat(window[0]) < today + dt.timedelta(days=notice)
        ):
            start, end = maintenance_window(
                today, notice, setting_number(self.upkeep_settings, "window_days", 1)
            )
            window = [start.isoformat(), end.isoformat(), today.isoformat()]
            upsert_action(
                self.store,
                self.community_id,
                f"upkeep-plan:{self.plan}",
                PLAN_KIND,
                {**plan, "window": window},
            )
        email = self.send(
            "upkeep-notice",
            config,
            key=key,
            extra={
                "actions": plan["actions"],
                "window_start": dt.date.fromisoformat(window[0]),
                "window_end": dt.date.fromisoformat(window[1]),
            },
        )
        log.info("Maintenance window of %s: %s to %s", self.community_id, window[0], window[1])
        return {"window": window, "message_id": email.message_id if email else None}


class UpgradeIssueOperator(_PlannedUpgradeOperator):
    """One issue per planned upgrade in the infrastructure repository, found again by its title
    and label and updated; without GitHub the planned issue is recorded and the step skips."""

    def execute(self, context: Context) -> dict[str, Any]:
        from engagements.hooks.github import GitHubHook
        from engagements.infra.layout import Layout
        from engagements.upkeep import Policy
        from engagements.upkeep.maintenance import (
            ISSUE_KIND,
            issue_label,
            issue_title,
            render_issue,
        )

        _, config = self.engagement()
        plan = self.plan_record(self.plan)
        cluster = config.cluster_name
        title, label = issue_title(cluster, plan["actions"]), issue_label(cluster)
        body = render_issue(
            cluster=cluster,
            name=config.name,
            provider=config.cloud.provider.value,
            plan=plan,
            policy=Policy.from_settings(self.upkeep_settings),
            hubs=[(hub.name, hub.domain) for hub in Layout(config).hubs],
        )
        key = f"upkeep-issue:{self.plan}"
        repo_name = self.deployment_settings().infra_repo
        if not repo_name or not connection_exists(self.connections.github):
            detail = {"state": "planned", "title": title, "label": label, "body": body}
            upsert_action(self.store, self.community_id, key, ISSUE_KIND, detail)
            raise AirflowSkipException(
                f"Plan only (no GitHub: engagements_infra_repo and connection "
                f"{self.connections.github!r}); recorded as {key} in the store, to open by hand:"
                f"\n{title} [label {label}]\n\n{body}"
            )
        hook = GitHubHook(self.connections.github)
        repo = hook.repository(repo_name)
        hook.ensure_label(repo, label, color="1d76db", description=f"Platform upkeep of {cluster}")
        issue, created = hook.ensure_issue(repo, title, body, label=label)
        updated = not created and hook.update_issue_body(issue, body)
        detail = {
            "state": "opened",
            "title": title,
            "label": label,
            "repository": repo_name,
            "number": issue.number,
            "url": issue.html_url,
        }
        upsert_action(self.store, self.community_id, key, ISSUE_KIND, detail)
        log.info(
            "%s %s", "Opened" if created else "Updated" if updated else "Found", issue.html_url
        )
        return detail


class UpgradeNeededOperator(_PlannedUpgradeOperator):
    """Whether the plan has this kind of work: skipping it skips the wait on its milestone."""

    template_fields: Sequence[str] = ("community_id", "plan", "milestone")

    def __init__(self, *, kind: str, milestone: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind = kind
        self.milestone = milestone

    def execute(self, context: Context) -> str:
        if not self.milestone:
            raise AirflowSkipException(f"upgrade {self.plan} has no {self.kind} work")
        log.info("Waiting next for %s", self.milestone)
        return self.milestone
