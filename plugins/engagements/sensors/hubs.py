"""Waiting until every hub of the community answers JupyterHub's health check."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout, AirflowSkipException

from engagements.deployment import HUBS_HEALTHY, INFRA_HUBS_PR
from engagements.store.base import upsert_action
from engagements.tasks import EngagementSensor, recorded_change

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

HEALTH_URL = "https://{domain}/hub/health"
MODES = ("auto", "always", "never")


def check_hub(url: str, timeout: float) -> tuple[bool, str]:
    """One health check: healthy only on HTTP 200; otherwise what the hub answered."""
    import requests  # here, not at import: DAG parsing should not pay for it

    try:
        response = requests.get(url, timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        return False, f"{type(exc).__name__}: {exc}"
    return response.status_code == 200, f"HTTP {response.status_code} {response.reason}".strip()


class HubHealthSensor(EngagementSensor):
    """Poll ``/hub/health`` of each hub in the proposed change until all answer 200.

    The hubs (name and domain) are those ``open_hubs_pull_request`` recorded from cluster.yaml. The
    setting ``hub_health`` decides whether to check: ``always``, ``never``, or ``auto`` (the
    default): check when the change went to GitHub, where CI deploys it, and skip with the
    reason when it is a local branch, which nothing deploys (plan only). On timeout the failure
    lists each unhealthy hub with its last answer.
    """

    template_fields: Sequence[str] = ("community_id",)
    ui_color = "#e3f1d4"

    def __init__(
        self,
        *,
        health_url: str = HEALTH_URL,
        request_timeout: float = 10.0,
        timeout: float | dt.timedelta = dt.timedelta(days=3),
        **kwargs: Any,
    ) -> None:
        super().__init__(timeout=timeout, **kwargs)
        self.health_url = health_url
        self.request_timeout = request_timeout
        self.last_checks: dict[str, tuple[str, str]] = {}

    def execute(self, context: Context) -> Any:
        try:
            return super().execute(context)
        except AirflowSensorTimeout as exc:
            report = "; ".join(
                f"{hub} ({url}): {answer}" for hub, (url, answer) in self.last_checks.items()
            )
            raise AirflowSensorTimeout(f"{exc} Not healthy at the last check: {report}") from None

    def poke(self, context: Context) -> PokeReturnValue | bool:
        from engagements.hooks.infra_repo import load_deployment_settings

        settings = load_deployment_settings(use_variables=True)
        change = recorded_change(self.store, self.community_id, INFRA_HUBS_PR)
        hubs: dict[str, str] = change.get("hubs") or {}
        mode = settings.hub_health.strip().lower()
        if mode not in MODES:
            raise AirflowFailException(
                f"engagements_hub_health is {settings.hub_health!r}; use one of {', '.join(MODES)}"
            )
        if mode == "never" or (mode == "auto" and change.get("kind") == "local_branch"):
            why = (
                "engagements_hub_health is never"
                if mode == "never"
                else "the change is a branch of the local git repository, which nothing deploys"
                " (plan only); set engagements_hub_health=always to check anyway"
            )
            raise AirflowSkipException(
                f"Hub health not checked: {why}. Hubs: "
                + ", ".join(f"{name} (https://{domain})" for name, domain in hubs.items())
            )
        healthy = {}
        self.last_checks = {}
        for name, domain in hubs.items():
            url = self.health_url.format(domain=domain)
            ok, answer = check_hub(url, self.request_timeout)
            if ok:
                healthy[name] = url
            else:
                self.last_checks[name] = (url, answer)
        if self.last_checks:
            log.info(
                "%d of %d hub(s) healthy; waiting for %s",
                len(healthy),
                len(hubs),
                "; ".join(f"{hub}: {answer}" for hub, (_, answer) in self.last_checks.items()),
            )
            return False
        log.info("All %d hub(s) healthy: %s", len(hubs), ", ".join(healthy))
        upsert_action(self.store, self.community_id, HUBS_HEALTHY, "health_check", healthy)
        return PokeReturnValue(is_done=True, xcom_value=healthy)
