"""Operators of the renewal lifecycle: thin wrappers over :mod:`engagements.renewal`.

The daily scan (``engagement_renewal_scan``) finds the engagements due and starts one decision
run per community (a run of ``engagement_renewal`` with ``community_id`` in its conf); that run
opens the renewal, asks BD for the decision and acts on it. Branching is kept out of mapped
tasks on purpose: a branch inside a mapped task group cannot skip its not-yet-expanded
downstream tasks, so both paths would run.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import HITLBranchOperator
from airflow.sdk import Param
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from engagements.operators.hitl import AskAgainMixin
from engagements.renewal import Decision
from engagements.tasks import (
    COMMUNITY_FROM_PARAMS,
    SMTP_CONN_ID,
    EngagementMixin,
    EngagementOperator,
    first_try,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from engagements.config import CommunityConfig
    from engagements.renewal import RenewalStart
    from engagements.store.base import ActionRecord

log = logging.getLogger(__name__)

DECISION_XCOM = "decision"


def clock_now() -> dt.datetime:
    """The time now; tests and the fan-out benchmark set it to a day of their choosing."""
    return dt.datetime.now(dt.UTC)


class DueRenewalsOperator(EngagementOperator):
    """List the engagements due for renewal as the arguments of one decision run each.

    One pass over the engagements and one over the renewal actions; the decision milestones
    are planned here (10 a request on Airtable), and each run's conf carries the engagement
    as read, so that its ``open_renewal`` reads nothing on its first try.
    """

    template_fields = ()

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from engagements.renewal import decision_run_id, due_for_renewal, plan_decisions

        due = due_for_renewal(self.store, clock_now().date())
        for item in due:
            log.info("%s ends %s; renewal not started", item.community_id, item.contract_end)
        if not due:
            log.info("No engagement is due for renewal")
            return []
        plan_decisions(self.store, due)
        return [
            {
                "conf": {
                    "community_id": item.community_id,
                    "contract_end": item.contract_end.isoformat(),
                    SCANNED: item.engagement.to_json() if item.engagement else None,
                },
                "trigger_run_id": decision_run_id(item.community_id, item.contract_end),
            }
            for item in due
        ]


SCANNED = "engagement"
"""Key, in a decision run's conf, of the engagement as the daily scan read it."""


class OpenRenewalOperator(EngagementOperator):
    """Open the renewal conversation: status Renewal, decision milestone, email to BD once.

    A run started by the daily scan carries the contract end it was started for and the
    engagement as read then: on its first try it reads nothing more (two writes). Started by
    hand, or on a retry, it reads the engagement and its actions. If the contract was decided
    or renewed by the time a scan's run starts, there is nothing to ask.
    """

    def __init__(self, *, decision_task_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.decision_task_id = decision_task_id

    def execute(self, context: Context) -> dict[str, str]:
        from engagements.renewal import (
            RenewalRefused,
            decision_deadline,
            open_renewal,
            renewal_email_key,
        )

        params = context["params"]
        start = self.renewal_start(context)
        self.skip_if_already_decided(params.get("contract_end"), start)
        now = clock_now()

        def send(config: CommunityConfig, end: dt.date) -> ActionRecord:
            deadline = decision_deadline(end, now)
            return self.send_unrecorded(
                "renewal-opened",
                config,
                key=renewal_email_key(end),
                extra={
                    "opened_on": now.date(),
                    "deadline": (deadline - dt.timedelta(microseconds=1)).date(),
                    "decision_link": self._decision_link(context),
                },
            )

        try:
            _, end = open_renewal(self.store, start, now.date(), send=send)
        except RenewalRefused as exc:
            raise AirflowFailException(f"{exc}; nothing was sent") from None
        return {"community_id": self.community_id, "contract_end": end.isoformat()}

    def renewal_start(self, context: Context) -> RenewalStart:
        """The engagement the scan read (first try of a scan's run), or the store's now."""
        from engagements.renewal import RenewalStart, read_renewal_start
        from engagements.store.base import Engagement

        scanned = context["params"].get(SCANNED)
        if scanned and first_try(context):
            engagement = Engagement.from_json(scanned)
            if engagement.community_id == self.community_id:
                return RenewalStart(engagement, planned=True)
        return read_renewal_start(self.store, self.community_id)

    def skip_if_already_decided(self, scanned_end: str | None, start: RenewalStart) -> None:
        from engagements.renewal import contract_end, decided

        if not scanned_end:
            return  # started by hand: a person may decide again (a late renewal)
        end = dt.date.fromisoformat(scanned_end)
        current = contract_end(start.engagement)
        decision = decided(start.recorded, end)
        if current != end or decision is not None:
            raise AirflowSkipException(
                f"the contract of {self.community_id} ending {end} was already decided "
                f"({decision.value if decision else f'it now ends {current}'}); nothing to ask"
            )

    def _decision_link(self, context: Context) -> str:
        return decision_link(context, self.decision_task_id)


def decision_link(context: Context, task_id: str) -> str:
    """The Required actions page of this run's decision form, when the UI address is set."""
    from airflow.sdk import conf

    base = (conf.get("api", "base_url", fallback="") or "").rstrip("/")
    if not base:
        return ""
    dag_id, run_id = context["dag"].dag_id, context["run_id"]
    return f"{base}/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/required_actions"


class RenewalDecisionOperator(AskAgainMixin, EngagementMixin, HITLBranchOperator):
    """BD's decision: renewed (with the new dates) or not. No default: silence is not consent.

    The answer is due by the end of the contract (at least a week after the form opens). When
    that passes without an answer, nothing is decided for anyone: BD is reminded, and the form
    keeps waiting a week more, again and again. Only a person's answer renews the engagement or
    starts its decommissioning; a decision recorded elsewhere meanwhile (the contract end moved)
    closes the form unanswered.
    """

    template_fields = (*HITLBranchOperator.template_fields, "community_id")

    def __init__(
        self,
        *,
        opened_task_id: str,
        renewed_task_id: str,
        not_renewed_task_id: str,
        community_id: str = COMMUNITY_FROM_PARAMS,
        smtp_conn_id: str = SMTP_CONN_ID,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("subject", "Renewal decision for {{ params['community_id'] }}")
        date = {"type": ["null", "string"], "format": "date"}
        kwargs["params"] = {  # the form's fields only, not the DAG's params
            "new_end": Param(None, **date, description="Renewed: the new contract end."),
            "new_start": Param(
                None, **date, description="Renewed: the new start (default: the day after)."
            ),
            "note": Param("", type=["null", "string"], description="For the record."),
        }
        super().__init__(
            options=[Decision.RENEWED.value, Decision.NOT_RENEWED.value],
            options_mapping={
                Decision.RENEWED.value: renewed_task_id,
                Decision.NOT_RENEWED.value: not_renewed_task_id,
            },
            **kwargs,
        )
        self.community_id = community_id
        self.smtp_conn_id = smtp_conn_id
        self.opened_task_id = opened_task_id

    def execute(self, context: Context):
        _, config = self.engagement()
        self.prepare_form(config, clock_now())
        return super().execute(context)

    def prepare_form(self, config: CommunityConfig, now: dt.datetime) -> None:
        """The form's text and its deadline, from the engagement as it is now."""
        from engagements.renewal import decision_deadline

        deadline = decision_deadline(config.contract.end, now)
        self.response_timeout = deadline - now
        reps = ", ".join(f"{r.name} <{r.email}>" for r in config.representatives)
        self.body = (
            f"**{config.name}** (`{config.community_id}`): the contract runs "
            f"{config.contract.start} to **{config.contract.end}**.\n\n"
            f"Representatives: {reps}.\n\n"
            "- **Renewed**: fill in `new_end` (and `new_start` if it is not the day after the "
            "current end). The engagement stays Active with the new dates.\n"
            "- **Not renewed**: decommissioning starts: notices to the community, backup of "
            "home directories, then an approval before anything is removed.\n\n"
            f"Please answer by {deadline:%Y-%m-%d %H:%M} UTC. Without an answer nothing is "
            "decided: BD is reminded then and every week after, and this form keeps waiting."
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        opened = context["ti"].xcom_pull(task_ids=self.opened_task_id) or {}
        decided_end = opened.get("contract_end")
        if not decided_end:
            raise AirflowFailException(
                f"{self.opened_task_id} left no contract end; clear it, then this task"
            )
        if event.get("error_type") == "timeout":
            self.remind(context, dt.date.fromisoformat(decided_end))
            return self.execute(context)  # waits again, for a week more
        # The base class checks the chosen option and the form; branching is done here.
        result = self.checked_answer(context, event)
        try:
            decision = self._decision(result, dt.date.fromisoformat(decided_end))
        except ValueError as exc:
            self.ask_again(context, str(exc))
        log.info("Renewal of %s: %s", self.community_id, decision)
        # Pushed before branching: skipping the other branch ends the task (no return value).
        context["ti"].xcom_push(key=DECISION_XCOM, value=decision)
        return self.do_branch(context, self.options_mapping[decision["decision"]])

    def remind(self, context: Context, end: dt.date) -> None:
        """No answer by the deadline: remind BD once today, unless it was decided elsewhere.

        A renewal recorded by other means (the CLI, the store) moved the contract end: then
        the form has nothing left to ask and the task skips, deciding nothing.
        """
        from engagements.hooks.smtp import EmailDeliveryError
        from engagements.renewal import Decision, decided, decision_deadline, decision_key

        _, config = self.engagement()
        keys = (decision_key(end, d) for d in Decision)
        decision = decided({k for k in keys if self.store.get_action(self.community_id, k)}, end)
        if decision is not None or config.contract.end != end:
            raise AirflowSkipException(
                f"the renewal of {self.community_id}'s contract ending {end} was decided "
                f"meanwhile ({decision.value if decision else f'it now ends {config.contract.end}'}"
                "); this form closes unanswered and decides nothing"
            )
        now = clock_now()
        next_reminder = decision_deadline(end, now).date()
        try:
            self.send(
                "renewal-reminder",
                config,
                key=f"renewal-reminder:{end.isoformat()}:{now.date().isoformat()}",
                extra={
                    "deadline": now.date(),
                    "next_reminder": next_reminder,
                    "decision_link": decision_link(context, self.task_id),
                },
            )
        except EmailDeliveryError as exc:
            log.warning("The reminder could not be sent (%s); the next one is tried", exc)
        log.warning(
            "No renewal decision for %s (contract end %s); BD reminded, waiting until %s",
            self.community_id,
            end,
            next_reminder,
        )

    def _decision(self, result: dict[str, Any], decided_end: dt.date) -> dict[str, Any]:
        choice = Decision(result["chosen_options"][0])
        answer = result.get("params_input") or {}
        who = (result.get("responded_by_user") or {}).get("name") or "unknown"
        decision = {
            "decision": choice.value,
            "decided_end": decided_end.isoformat(),
            "decided_by": who,
            "reason": (answer.get("note") or "").strip() or "not renewed",
        }
        if choice is Decision.NOT_RENEWED:
            return decision
        try:
            new_end = dt.date.fromisoformat(answer.get("new_end") or "")
            new_start = answer.get("new_start")
            new_start = dt.date.fromisoformat(new_start) if new_start else None
        except ValueError:
            new_end = None
        if new_end is None or new_end <= decided_end:
            raise ValueError(
                f"Renewed needs new_end, a date after the current end {decided_end} (got "
                f"{answer.get('new_end')!r}); nothing was changed"
            )
        return decision | {
            "new_end": new_end.isoformat(),
            "new_start": new_start.isoformat() if new_start else None,
            "reason": (answer.get("note") or "").strip(),
        }


class _DecisionOperator(EngagementOperator):
    def __init__(self, *, decision_task_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.decision_task_id = decision_task_id

    def decision(self, context: Context) -> dict[str, Any]:
        decision = context["ti"].xcom_pull(task_ids=self.decision_task_id, key=DECISION_XCOM)
        if not decision:
            raise AirflowFailException(
                f"{self.decision_task_id} recorded no decision (was it marked success instead of "
                "answered?); clear it and answer the form"
            )
        return decision


class ApplyRenewalOperator(_DecisionOperator):
    """Store the new contract dates and make the engagement Active again."""

    def execute(self, context: Context) -> dict[str, str]:
        from engagements.config import ConfigError
        from engagements.renewal import RenewalRefused, apply_renewal

        decision = self.decision(context)
        new_start = decision.get("new_start")
        try:
            engagement = apply_renewal(
                self.store,
                self.community_id,
                decided_end=dt.date.fromisoformat(decision["decided_end"]),
                new_end=dt.date.fromisoformat(decision["new_end"]),
                new_start=dt.date.fromisoformat(new_start) if new_start else None,
                decided_by=decision["decided_by"],
                note=decision.get("reason") or "",
            )
        except (RenewalRefused, ConfigError) as exc:
            raise AirflowFailException(f"{exc}\nNothing was changed.") from None
        contract = engagement.config["contract"]
        status = engagement.status.value
        return {"status": status, "start": contract["start"], "end": contract["end"]}


class HandOverOperator(_DecisionOperator):
    """Mark the engagement Decommissioning; return the decommission run's conf."""

    def execute(self, context: Context) -> dict[str, str]:
        from engagements.renewal import RenewalRefused, decommission_run_id, hand_over

        decision = self.decision(context)
        decided_end = dt.date.fromisoformat(decision["decided_end"])
        try:
            conf = hand_over(
                self.store,
                self.community_id,
                decided_end=decided_end,
                decided_by=decision["decided_by"],
                reason=decision["reason"],
            )
        except RenewalRefused as exc:
            raise AirflowFailException(str(exc)) from None
        context["ti"].xcom_push(
            key="run_id", value=decommission_run_id(self.community_id, decided_end)
        )
        return conf
