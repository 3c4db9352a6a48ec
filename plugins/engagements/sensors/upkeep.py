"""Waits of the platform upkeep: the previous batch, and the upgraded cluster's health."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout

from engagements.store.base import upsert_action
from engagements.tasks import EngagementSensor

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

HEALTH_MODES = ("auto", "always", "never")


class PreviousBatchSensor(EngagementSensor):
    """Wait until every cluster of the batch before this cluster's is upgraded and healthy.

    ``after`` lists the previous batch as ``[community id, targets]`` pairs (empty for the
    first batch, which passes at once); each must have its ``upkeep-result:<targets>`` recorded
    as verified by its own ``verify`` step.
    """

    template_fields: Sequence[str] = ("community_id", "after")
    ui_color = "#fde9c4"

    def __init__(self, *, after: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.after = after

    def poke(self, context: Context) -> bool:
        from engagements.upkeep.maintenance import pending_clusters

        after = [(community_id, key) for community_id, key in self.after or []]
        pending = pending_clusters(self.store, after)
        if pending:
            log.info("Waiting for the previous batch: %s not verified yet", ", ".join(pending))
            return False
        log.info(
            "Previous batch upgraded and healthy: %s", ", ".join(c for c, _ in after) or "none"
        )
        return True


class UpgradeVerifiedSensor(EngagementSensor):
    """After the milestones: the versions reached and every hub healthy, then the result.

    Observes the cluster as the observe step does (provider, else the fleet file) until each
    action of the plan shows done, and checks each hub's ``/hub/health`` (setting
    ``upkeep_health_url``). ``hub_health`` decides as for deployments: ``always``, ``never``,
    or ``auto``: check unless the versions came from the fleet file (plan only, nothing is
    deployed). Records ``upkeep-result:<targets>``: ``verified`` with what was seen, or
    ``failed`` with the last check when it times out.
    """

    template_fields: Sequence[str] = ("community_id", "plan")
    ui_color = "#e3f1d4"

    def __init__(
        self,
        *,
        plan: str,
        request_timeout: float = 10.0,
        timeout: float | dt.timedelta = dt.timedelta(days=7),
        **kwargs: Any,
    ) -> None:
        super().__init__(timeout=timeout, **kwargs)
        self.plan = plan
        self.request_timeout = request_timeout
        self.last_check: dict[str, Any] = {}

    def execute(self, context: Context) -> Any:
        try:
            return super().execute(context)
        except AirflowSensorTimeout as exc:
            self.record({"state": "failed", **self.last_check})
            raise AirflowSensorTimeout(f"{exc} Last check: {self.last_check}") from None

    def record(self, detail: dict[str, Any]) -> None:
        from engagements.upkeep.maintenance import RESULT_KIND

        detail = {**detail, "checked_at": dt.datetime.now(dt.UTC).isoformat()}
        upsert_action(
            self.store, self.community_id, f"upkeep-result:{self.plan}", RESULT_KIND, detail
        )

    def poke(self, context: Context) -> PokeReturnValue | bool:
        from engagements.hooks.infra_repo import load_deployment_settings
        from engagements.infra.layout import Layout
        from engagements.tasks.cluster_versions import Connections, observe_cluster
        from engagements.upkeep import load_upkeep_settings
        from engagements.upkeep.maintenance import VERIFIED, unmet

        plan = self.store.get_action(self.community_id, f"upkeep-plan:{self.plan}")
        if plan is None:
            raise AirflowFailException(f"no upkeep plan {self.plan!r} for {self.community_id}")
        _, config = self.engagement()
        settings = load_upkeep_settings(use_variables=True)
        deployment = load_deployment_settings(use_variables=True)
        seen = observe_cluster(config, settings, deployment, Connections())
        missing = unmet(plan.detail["actions"], seen["cluster"])
        hubs = self.hub_health(
            Layout(config).hubs, deployment.hub_health, settings.upkeep_health_url, seen
        )
        unhealthy = {hub: answer for hub, answer in hubs.items() if answer != "healthy"}
        self.last_check = {"versions": seen["cluster"], "sources": seen["sources"], "hubs": hubs}
        if missing or (unhealthy and "not checked" not in unhealthy):
            log.info(
                "Upgrade %s of %s not verified yet: %s",
                self.plan,
                self.community_id,
                "; ".join(missing + [f"{hub}: {answer}" for hub, answer in unhealthy.items()]),
            )
            return False
        detail = {"state": VERIFIED, **self.last_check}
        self.record(detail)
        log.info("Upgrade %s of %s verified: %s", self.plan, self.community_id, detail)
        return PokeReturnValue(is_done=True, xcom_value=detail)

    def hub_health(
        self, hubs: Sequence[Any], mode: str, url: str, seen: dict[str, Any]
    ) -> dict[str, str]:
        """Hub name -> ``healthy`` or what it answered; ``{"not checked": why}`` when not."""
        from engagements.sensors.hubs import check_hub

        mode = mode.strip().lower()
        if mode not in HEALTH_MODES:
            raise AirflowFailException(
                f"engagements_hub_health is {mode!r}; use one of {', '.join(HEALTH_MODES)}"
            )
        from_fleet = seen["sources"]["kubernetes"].startswith("the fleet file")
        if mode == "never" or (mode == "auto" and from_fleet):
            why = (
                "engagements_hub_health is never"
                if mode == "never"
                else "the versions come from the fleet file (plan only: nothing is deployed)"
            )
            return {"not checked": why}
        answers = {}
        for hub in hubs:
            ok, answer = check_hub(url.format(domain=hub.domain), self.request_timeout)
            answers[hub.name] = "healthy" if ok else answer
        return answers
