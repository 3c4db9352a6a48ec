"""Human-in-the-loop forms: technical decisions and the rollout meeting's outcome.

Both are ``HITLEntryOperator`` forms answered on the run's "Required actions" page (or
``PATCH .../hitlDetails`` over REST). The form's defaults are filled in when the task runs,
from the engagement in the store, so that the person only changes what the meeting changed.

Every rule a field can carry is in its Param (enums, patterns, formats), so the page refuses a
bad value, and the API server refuses what the page would (including an answer that leaves a
field out, and the rules across fields: :mod:`engagements.middleware.conf_check`). A rule that
still breaks once the answer arrives never fails the run: the form opens again
(:class:`AskAgainMixin`) and the task's log says why.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.providers.standard.operators.hitl import HITLEntryOperator, HITLOperator
from airflow.sdk import Param
from airflow.sdk.definitions.param import ParamsDict
from airflow.sdk.exceptions import ParamValidationError

from engagements.store.base import upsert_action
from engagements.tasks import COMMUNITY_FROM_PARAMS, SMTP_CONN_ID, EngagementMixin

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)

DECISION_KEYS: tuple[str, ...] = (
    "cloud.provider",
    "cloud.region",
    "cloud.zone",
    "cloud.account",
    "cloud.tenant_id",
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


class AskAgainMixin:
    """A form whose answer breaks a rule asks again instead of failing the task (and the
    run after it): the answer is cleared, the form opens again with its fields as they were,
    and the reason is logged on the task, where the person finds it."""

    task_id: str

    def checked_answer(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """The answer after the form's own checks (options, every field, each Param)."""
        try:
            return HITLOperator.execute_complete(self, context, event)  # type: ignore[arg-type]
        except (ValueError, ParamValidationError) as exc:
            self.ask_again(context, str(exc))

    def ask_again(self, context: Context, reason: str) -> NoReturn:
        log.error(
            "The answer to %s was not accepted: %s\nNothing was stored. The form is open "
            "again on the Required actions page: answer it again.",
            self.task_id,
            reason,
        )
        self.execute(context)  # type: ignore[attr-defined]  # writes the form again and waits
        raise AssertionError("a form's execute waits for its answer")  # pragma: no cover


def decision_params(defaults: dict[str, Any] | None = None) -> dict[str, Param]:
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


def current_values(config_dict: dict[str, Any]) -> dict[str, Any]:
    from engagements.params import flatten_config

    flat = flatten_config(config_dict)
    return {key: flat.get(key) for key in DECISION_KEYS}


class TechnicalDecisionsOperator(AskAgainMixin, EngagementMixin, HITLEntryOperator):
    """Collect the technical meeting's decisions; write them to the store for later steps."""

    template_fields = (*HITLEntryOperator.template_fields, "community_id")

    def __init__(
        self,
        *,
        community_id: str = COMMUNITY_FROM_PARAMS,
        smtp_conn_id: str = SMTP_CONN_ID,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("subject", "Technical decisions for {{ params['community_id'] }}")
        kwargs["params"] = decision_params()
        super().__init__(**kwargs)
        self.community_id = community_id
        self.smtp_conn_id = smtp_conn_id

    def execute(self, context: Context):
        _, config = self.engagement()
        current = current_values(config.to_dict())
        self.params = ParamsDict(decision_params(current))
        self.body = (
            f"Record what the initial technical meeting decided for **{config.name}**. "
            "Each field starts at the value in the engagement record; change only what was "
            "decided differently. Admin users are the representatives' GitHub ids: "
            f"{', '.join(config.admin_users)}."
        )
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        from engagements.config import ConfigError

        result = self.checked_answer(context, event)
        decisions = {k: result["params_input"].get(k) for k in DECISION_KEYS}
        _engagement, config = self.engagement()
        try:
            config.with_decisions(decisions)
        except ConfigError as exc:
            self.ask_again(context, f"the technical decisions are not valid: {exc}")
        self.store.update_engagement(self.community_id, decisions=decisions)
        detail = {
            "decisions": decisions,
            "responded_by": (result.get("responded_by_user") or {}).get("name"),
            "responded_at": str(result.get("responded_at")),
        }
        upsert_action(self.store, self.community_id, "technical-decisions", "decision", detail)
        log.info("Technical decisions recorded for %s: %s", self.community_id, decisions)
        return decisions


class RolloutOutcomeOperator(AskAgainMixin, EngagementMixin, HITLEntryOperator):
    """Collect what the rollout meeting taught: notes, workflows, configuration requests."""

    template_fields = (*HITLEntryOperator.template_fields, "community_id")

    def __init__(
        self,
        *,
        community_id: str = COMMUNITY_FROM_PARAMS,
        smtp_conn_id: str = SMTP_CONN_ID,
        **kwargs: Any,
    ) -> None:
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
        self.smtp_conn_id = smtp_conn_id

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        result = self.checked_answer(context, event)
        answer = result["params_input"]
        detail = {
            "notes": answer.get("notes") or "",
            "workflows": [w.strip() for w in answer.get("workflows") or [] if w.strip()],
            "requirements": [r.strip() for r in answer.get("requirements") or [] if r.strip()],
            "responded_by": (result.get("responded_by_user") or {}).get("name"),
        }
        upsert_action(self.store, self.community_id, "rollout-outcome", "meeting", detail)
        return detail
