"""Human-in-the-loop forms: technical decisions and the rollout meeting's outcome.

Both are ``HITLEntryOperator`` forms answered on the run's "Required actions" page (or
``PATCH .../hitlDetails`` over REST). The form's defaults are filled in when the task runs,
from the engagement in the store, so that the person only changes what the meeting changed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import HITLEntryOperator
from airflow.sdk import Param
from airflow.sdk.definitions.param import ParamsDict
from airflow.sdk.exceptions import AirflowFailException

from engagements.operators.engagement import COMMUNITY_FROM_PARAMS, EngagementMixin
from engagements.store.base import upsert_action

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

DECISION_KEYS: tuple[str, ...] = (
    "cloud.provider",
    "cloud.region",
    "cloud.zone",
    "cloud.account",
    "cloud.billing",
    "cloud.gpu",
    "hubs.community.auth",
    "hubs.community.allowed_teams",
    "hubs.community.dask_gateway",
    "hubs.workshop.enabled",
    "hubs.workshop.auth",
    "hubs.binder.enabled",
    "hubs.binder.authenticated",
    "github_org",
    "branding.logo_url",
    "website",
    "branding.funded_by",
)
"""The runbook's technical decisions, as keys of the community config."""


def _decision_params(defaults: dict[str, Any] | None = None) -> dict[str, Param]:
    from engagements.params import param_specs

    specs = param_specs()
    params = {}
    for key in DECISION_KEYS:
        spec = {k: v for k, v in specs[key].items() if k != "section"}
        spec["section"] = "Technical decisions"
        if defaults is not None:
            spec["default"] = defaults[key]
        params[key] = Param(**spec)
    return params


def _current_values(config_dict: dict[str, Any]) -> dict[str, Any]:
    from engagements.params import flatten_config

    flat = flatten_config(config_dict)
    return {key: flat.get(key) for key in DECISION_KEYS}


class TechnicalDecisionsOperator(EngagementMixin, HITLEntryOperator):
    """Collect the technical meeting's decisions; write them to the store for later steps."""

    template_fields = (*HITLEntryOperator.template_fields, "community_id")

    def __init__(self, *, community_id: str = COMMUNITY_FROM_PARAMS, **kwargs: Any) -> None:
        kwargs.setdefault("subject", "Technical decisions for {{ params['community_id'] }}")
        kwargs["params"] = _decision_params()
        super().__init__(**kwargs)
        self.community_id = community_id
        self.smtp_conn_id = "smtp_default"

    def execute(self, context: Context):
        _, config = self.engagement()
        current = _current_values(config.to_dict())
        self.params = ParamsDict(_decision_params(current))
        self.body = (
            f"Record what the initial technical meeting decided for **{config.name}**. "
            "Each field starts at the value in the engagement record; change only what was "
            "decided differently. Admin users are the representatives' GitHub ids: "
            f"{', '.join(config.admin_users)}."
        )
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        from engagements.config import ConfigError

        result = super().execute_complete(context, event)
        decisions = {k: result["params_input"].get(k) for k in DECISION_KEYS}
        _engagement, config = self.engagement()
        try:
            config.with_decisions(decisions)
        except ConfigError as exc:
            raise AirflowFailException(
                f"The technical decisions are not valid: {exc}\n"
                "Nothing was stored; clear this task to answer the form again."
            ) from None
        self.store.update_engagement(self.community_id, decisions=decisions)
        detail = {
            "decisions": decisions,
            "responded_by": (result.get("responded_by_user") or {}).get("name"),
            "responded_at": str(result.get("responded_at")),
        }
        upsert_action(self.store, self.community_id, "technical-decisions", "decision", detail)
        log.info("Technical decisions recorded for %s: %s", self.community_id, decisions)
        return decisions


class RolloutOutcomeOperator(EngagementMixin, HITLEntryOperator):
    """Collect what the rollout meeting taught: notes, workflows, configuration requests."""

    template_fields = (*HITLEntryOperator.template_fields, "community_id")

    def __init__(self, *, community_id: str = COMMUNITY_FROM_PARAMS, **kwargs: Any) -> None:
        kwargs.setdefault("subject", "Rollout meeting outcome for {{ params['community_id'] }}")
        kwargs.setdefault(
            "body",
            "What did the rollout meeting validate or change? Each additional configuration "
            "requirement (one per line) becomes a follow-up issue and the deck is regenerated.",
        )
        kwargs["params"] = {
            "notes": Param(
                "", type="string", format="multiline", description="What the team learned."
            ),
            "workflows": Param(
                [], type="array", items={"type": "string"}, description="Sample workflows."
            ),
            "requirements": Param(
                [],
                type="array",
                items={"type": "string"},
                description="Additional configuration requirements, one per line.",
            ),
        }
        super().__init__(**kwargs)
        self.community_id = community_id
        self.smtp_conn_id = "smtp_default"

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        result = super().execute_complete(context, event)
        answer = result["params_input"]
        detail = {
            "notes": answer.get("notes") or "",
            "workflows": [w.strip() for w in answer.get("workflows") or [] if w.strip()],
            "requirements": [r.strip() for r in answer.get("requirements") or [] if r.strip()],
            "responded_by": (result.get("responded_by_user") or {}).get("name"),
        }
        upsert_action(self.store, self.community_id, "rollout-outcome", "meeting", detail)
        return detail
