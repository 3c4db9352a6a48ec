"""Operators of the onboarding lifecycle: thin wrappers over :mod:`engagements.onboarding`.

Every operator takes the community id (templated, from the run's params by default), reads
the engagement from the store when it runs, and records what it did in the store. Nothing
touches the store, a Connection or a Variable before ``execute``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseBranchOperator, BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from engagements.store.base import upsert_action

if TYPE_CHECKING:
    from email.message import EmailMessage

    from airflow.sdk import Context

    from engagements.config import CommunityConfig
    from engagements.settings import Settings
    from engagements.store.base import ActionRecord, Engagement, EngagementStore

log = logging.getLogger(__name__)

COMMUNITY_FROM_PARAMS = "{{ params['community_id'] }}"
SMTP_CONN_ID = "smtp_default"
"""The connection every email of the lifecycles goes through, forms' reminders included."""


class EngagementMixin:
    """Store, settings and email delivery, built lazily when the task runs."""

    community_id: str
    smtp_conn_id: str = SMTP_CONN_ID

    @cached_property
    def store(self) -> EngagementStore:
        from engagements.store import get_store

        return get_store()

    @cached_property
    def settings(self) -> Settings:
        from engagements.settings import load_settings

        return load_settings(use_variables=True)

    def engagement(self) -> tuple[Engagement, CommunityConfig]:
        from engagements.onboarding import effective_config, load_engagement

        engagement = load_engagement(self.store, self.community_id)
        return engagement, effective_config(engagement)

    def deliver(self, message: EmailMessage) -> None:
        from engagements.hooks.smtp import EngagementSmtpHook

        EngagementSmtpHook(smtp_conn_id=self.smtp_conn_id).send_message(message)

    def send(self, kind: str, config: CommunityConfig, **kwargs: Any):
        from engagements.messages.emails import EmailKind
        from engagements.onboarding import send_once

        return send_once(self.store, config, self.settings, EmailKind(kind), self.deliver, **kwargs)

    def send_unrecorded(self, kind: str, config: CommunityConfig, **kwargs: Any) -> ActionRecord:
        """Send an email the caller knows is not sent yet; return the action recording it,
        for the caller to write with its other actions in one request."""
        from engagements.messages.emails import EmailKind
        from engagements.onboarding import deliver_email

        _, action = deliver_email(config, self.settings, EmailKind(kind), self.deliver, **kwargs)
        return action


def first_try(context: Context) -> bool:
    """Whether this is the task's first try: a retry or a cleared task reads the store again
    instead of trusting what a scan read for it before."""
    return getattr(context.get("ti"), "try_number", 1) <= 1


def note_on_run(context: Context, text: str) -> None:
    """Say ``text`` in the task log and on the run's note (written when the run finishes, by
    :mod:`engagements.listeners`: a task cannot set its run's note itself)."""
    from engagements.listeners import RUN_NOTE_XCOM

    log.warning("%s", text)
    context["ti"].xcom_push(key=RUN_NOTE_XCOM, value=text)


class _EngagementOperator(EngagementMixin, BaseOperator):
    template_fields: Sequence[str] = ("community_id",)

    def __init__(
        self,
        *,
        community_id: str = COMMUNITY_FROM_PARAMS,
        smtp_conn_id: str = SMTP_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.community_id = community_id
        self.smtp_conn_id = smtp_conn_id


def dagrun_state(ti: Any, dag_id: str, run_id: str) -> str | None:
    """The state of another run of ``dag_id``, or None when Airflow has no such run.

    Only "not found" means no run: any other failure to read the state (the API server
    unreachable, an error answer) fails the task, so that a guard built on it never lets a
    second run through on an error.
    """
    try:
        state = ti.get_dagrun_state(dag_id=dag_id, run_id=run_id)
    except Exception as exc:
        if is_not_found(exc):  # deleted from Airflow's history: no longer active
            return None
        raise RuntimeError(
            f"cannot tell whether run {run_id!r} of {dag_id} is still going: {exc}. Nothing "
            "was stored; the task is retried, or clear it once Airflow answers."
        ) from exc
    return str(getattr(state, "value", state))


def is_not_found(exc: Exception) -> bool:
    """Whether the execution API answered 404.

    A worker's supervisor relays the answer as an ``AirflowRuntimeError`` (``API_SERVER_ERROR``
    with the status code); a task run in-process (``dag.test``) gets the client's
    ``ServerResponseError`` itself.
    """
    from airflow.sdk.exceptions import ErrorType

    error = getattr(exc, "error", None)
    if error is not None:
        detail = getattr(error, "detail", None)
        return (
            getattr(error, "error", None) is ErrorType.API_SERVER_ERROR
            and isinstance(detail, dict)
            and detail.get("status_code") == 404
        )
    return getattr(getattr(exc, "response", None), "status_code", None) == 404


class RegisterEngagementOperator(_EngagementOperator):
    """Validate the run's config, claim the engagement for this run, plan its milestones."""

    template_fields: Sequence[str] = ()

    def execute(self, context: Context) -> dict[str, Any]:
        from engagements.config import ConfigError
        from engagements.onboarding import OnboardingRefused, register
        from engagements.params import config_from_params

        try:
            config = config_from_params(dict(context["params"]))
        except ConfigError as exc:
            raise AirflowFailException(f"{exc}\nNothing was sent or stored.") from None
        dag_id = context["dag"].dag_id
        ti = context["ti"]

        def run_state(run_id: str) -> str | None:
            return dagrun_state(ti, dag_id, run_id)

        try:
            register(self.store, config, run_id=context["run_id"], run_state=run_state)
        except OnboardingRefused as exc:
            raise AirflowFailException(str(exc)) from None
        log.info(
            "Registered %s (%s) for run %s", config.community_id, config.name, context["run_id"]
        )
        return {"community_id": config.community_id, "hub_urls": config.hub_urls}


class SignOffCheckOperator(_EngagementOperator):
    """Fail with the list of every unmet BD sign-off item, after emailing it to BD once."""

    def execute(self, context: Context) -> None:
        from engagements.onboarding import problems_key, signoff_problems

        engagement, config = self.engagement()
        problems = signoff_problems(config, engagement)
        if not problems:
            log.info("BD sign-off complete for %s", config.community_id)
            return
        self.send(
            "signoff-problems", config, key=problems_key(problems), extra={"problems": problems}
        )
        raise AirflowFailException(
            f"BD sign-off is not complete for {config.community_id}; BD was emailed this list:\n"
            + "\n".join(f"  - {p}" for p in problems)
            + "\nFix the engagement record, then clear this task."
        )


class TierRouteOperator(EngagementMixin, BaseBranchOperator):
    """Continue onboarding for Advanced Tier, or take the premium-tier branch."""

    template_fields: Sequence[str] = ("community_id",)

    def __init__(
        self,
        *,
        advanced_task_id: str,
        premium_task_id: str,
        community_id: str = COMMUNITY_FROM_PARAMS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.community_id = community_id
        self.advanced_task_id = advanced_task_id
        self.premium_task_id = premium_task_id

    def choose_branch(self, context: Context) -> str:
        from engagements.onboarding import premium_reason

        _, config = self.engagement()
        reason = premium_reason(config)
        if reason:
            log.warning("%s is not Advanced Tier: %s", config.community_id, reason)
            return self.premium_task_id
        return self.advanced_task_id


class PremiumTierOperator(_EngagementOperator):
    """Notify BD that the engagement belongs to Premium Tier; nothing is deployed."""

    def execute(self, context: Context) -> str:
        from engagements.onboarding import premium_reason, set_status
        from engagements.store.base import EngagementStatus

        _, config = self.engagement()
        reason = premium_reason(config) or "routed to Premium Tier"
        self.send("premium-tier", config, extra={"reason": reason})
        set_status(self.store, config.community_id, EngagementStatus.PREMIUM_REFERRAL)
        log.warning(
            "Onboarding of %s ends here: %s. Nothing was deployed.", config.community_id, reason
        )
        return reason


class SetStatusOperator(_EngagementOperator):
    def __init__(self, *, status: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.status = status

    def execute(self, context: Context) -> str:
        from engagements.onboarding import set_status
        from engagements.store.base import EngagementStatus

        set_status(self.store, self.community_id, EngagementStatus(self.status))
        return self.status


class EngagementEmailOperator(_EngagementOperator):
    """Send one of the runbook's emails exactly once per engagement."""

    def __init__(self, *, kind: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind = kind

    def execute(self, context: Context) -> str | None:
        import datetime as dt

        from engagements.messages.emails import EmailKind
        from engagements.onboarding import OnboardingRefused, email_extra

        _, config = self.engagement()
        today = dt.datetime.now(dt.UTC).date()
        try:
            extra = email_extra(self.store, config, EmailKind(self.kind), today)
        except OnboardingRefused as exc:
            raise AirflowFailException(str(exc)) from None
        sent = self.send(self.kind, config, extra=extra)
        return sent.message_id if sent else None


class BuildRolloutDeckOperator(_EngagementOperator):
    """Write the rollout deck (pptx and Markdown); version 2 adds what the meeting taught."""

    def __init__(self, *, version: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.version = version

    def execute(self, context: Context) -> dict[str, str]:
        from engagements.deployment import deployment_status
        from engagements.messages.deck import build_deck

        engagement, config = self.engagement()
        learned = deployment = None
        if self.version > 1:  # after the deployment: what the store shows deployed, and not
            outcome = self.store.get_action(config.community_id, "rollout-outcome")
            learned = (
                outcome.detail if outcome else {"notes": "", "requirements": [], "workflows": []}
            )
            deployment = deployment_status(self.store, config.community_id, config.hub_urls)
        files = build_deck(
            config,
            self.settings,
            out_dir=self.settings.artifacts_path / config.community_id,
            version=self.version,
            learned=learned,
            decisions=engagement.decisions or None,
            deployment=deployment,
        )
        detail = {"pptx": str(files.pptx), "markdown": str(files.markdown), "version": self.version}
        key = f"deck:v{self.version}"
        upsert_action(self.store, config.community_id, key, "document", detail)
        log.info("Rollout deck v%s: %s and %s", self.version, files.pptx, files.markdown)
        return detail


class RecordFollowUpsOperator(_EngagementOperator):
    """One follow-up record per additional configuration requirement from the rollout meeting."""

    def execute(self, context: Context) -> list[str]:
        from engagements.onboarding import record_follow_ups

        outcome = self.store.get_action(self.community_id, "rollout-outcome")
        if outcome is None:  # the form was marked success instead of answered
            raise AirflowSkipException(
                f"skipped: no rollout meeting outcome is recorded for {self.community_id} (was "
                "rollout_outcome marked success instead of answered?), so no requirement is "
                "known; clear rollout_outcome to answer it"
            )
        requirements = list(outcome.detail.get("requirements", []))
        keys = record_follow_ups(self.store, self.community_id, requirements)
        log.info("%d follow-up issue(s) recorded for %s", len(keys), self.community_id)
        return keys


class PlanTrainingOperator(_EngagementOperator):
    """The eight training sessions as milestones with proposed dates."""

    def execute(self, context: Context) -> list[list[str | None]]:
        from engagements.onboarding import plan_training

        _, config = self.engagement()
        planned = plan_training(self.store, config)
        for key, due in planned:
            log.info("Training %s proposed for %s", key, due)
        return [[key, due.isoformat() if due else None] for key, due in planned]
