"""Operators of the quarterly check-in: thin wrappers over :mod:`engagements.checkin`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import HITLEntryOperator
from airflow.sdk import Param
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from engagements.operators.costs import CostSourceMixin, read_roster, run_date
from engagements.operators.hitl import AskAgainMixin
from engagements.tasks import (
    SMTP_CONN_ID,
    EngagementMixin,
    EngagementOperator,
    first_try,
    note_on_run,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from engagements.checkin import Quarter
    from engagements.store.base import CommunityRecords

log = logging.getLogger(__name__)


class SelectCheckinOperator(EngagementOperator):
    """Which Active engagements are due a check-in this quarter: the fan-out's input.

    Reads each table once for all communities (one paginated pass), plans the meeting
    milestones that are missing (10 a request on Airtable), and hands each mapped check-in
    what it needs of its community (``records``), so that it reads nothing itself.

    An Active community whose engagement started less than a month ago is skipped, as is a
    community named by hand whose engagement is not Active: each with its reason and the rule
    (:data:`engagements.checkin.CHECKIN_RULE`) in the task log, on the run's note and in the
    ``skipped`` XCom. With nobody due, the task itself ends skipped, saying why.
    """

    template_fields: Sequence[str] = ("community_id", "quarter")

    def __init__(
        self,
        *,
        community_id: str = "{{ params.community_id or '' }}",
        quarter: str = "{{ params.quarter or '' }}",
        **kwargs: Any,
    ) -> None:
        super().__init__(community_id=community_id, **kwargs)
        self.quarter = quarter

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from engagements.checkin import (
            CHECKIN_RULE,
            Quarter,
            checkin_due,
            for_checkin,
            select_for_checkin,
        )
        from engagements.milestones import CHECKIN_HELD
        from engagements.store.base import EngagementStatus, by_community

        today = run_date(context)
        try:
            quarter = Quarter.parse(self.quarter) if self.quarter else Quarter.of(today)
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from None
        roster = read_roster(self.store, self.settings, self.community_id or None)
        engagements = [e for e, _ in roster.engagements]
        if not self.community_id:  # a scheduled run is about the Active ones only
            engagements = [e for e in engagements if e.status is EngagementStatus.ACTIVE]
        due, skipped = select_for_checkin(engagements, today)
        skipped |= roster.broken
        configs = {e.community_id: c for e, c in roster.engagements}
        context["ti"].xcom_push(key="skipped", value=skipped)
        if skipped:
            note_on_run(
                context,
                "".join(
                    f"No {quarter} check-in for {community_id}: {reason}.\n"
                    for community_id, reason in sorted(skipped.items())
                )
                + f"Rule: {CHECKIN_RULE}.",
            )
        if not due:
            raise AirflowSkipException(
                f"no {quarter} check-in: "
                + (
                    "; ".join(f"{c}: {r}" for c, r in sorted(skipped.items()))
                    or "no Active engagement"
                )
                + f" (rule: {CHECKIN_RULE})"
            )
        log.info("%s check-in for %d engagement(s): %s", quarter, len(due), ", ".join(due))
        whose = self.community_id or None
        records = by_community(
            (e for e in engagements if e.community_id in due),
            self.store.list_actions(whose),
            self.store.list_milestones(whose),
        )
        milestone = CHECKIN_HELD.key(str(quarter))
        missing = [c for c in due if records[c].milestone(milestone) is None]
        if missing:
            self.store.plan_milestones((c, milestone, checkin_due(quarter)) for c in missing)
        return [
            {
                "community_id": community_id,
                "quarter": str(quarter),
                "milestone": milestone,
                "shared_account": roster.is_shared(configs[community_id]),
                "records": for_checkin(records[community_id], quarter).to_json(),
            }
            for community_id in due
        ]


class CheckinReportOperator(CostSourceMixin, EngagementOperator):
    """Build and write the check-in report, then send the invitation once.

    One task because the invitation carries the report's figures: a retry rebuilds both rather
    than passing the report through XCom. Its writes are one request (the report's record and
    the invitation's). On its first try it uses the ``records`` that ``select_engagements``
    read for it; a retry, or a task without them, reads its community's records (and plans
    the meeting milestone if it is missing).
    """

    template_fields: Sequence[str] = ("community_id", "quarter", "shared_account", "records")

    def __init__(
        self,
        *,
        quarter: str,
        shared_account: bool = False,
        records: dict[str, Any] | None = None,
        aws_conn_id: str = "aws_default",
        gcp_conn_id: str = "google_cloud_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.quarter = quarter
        self.shared_account = shared_account
        self.records = records
        self.aws_conn_id = aws_conn_id
        self.gcp_conn_id = gcp_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from engagements.checkin import (
            Quarter,
            build_report,
            invitation_key,
            report_key,
            write_report,
        )
        from engagements.costs import NoCostSource
        from engagements.milestones import CHECKIN_HELD
        from engagements.onboarding import effective_config
        from engagements.store.base import ActionRecord, utc_now

        quarter = Quarter.parse(self.quarter)
        known = self.read_records(context, quarter)
        config = effective_config(known.engagement)
        milestone = CHECKIN_HELD.key(str(quarter))
        reviewed = quarter.previous()
        try:
            query, costs = self.fetch_costs(
                config,
                reviewed.previous().months + reviewed.months,
                shared=bool(self.shared_account),
                actions=known.actions,
            )
            source, note = query.describe(), None
        except NoCostSource as exc:
            log.warning("No cost source is configured for %s: %s", config.community_id, exc)
            costs, source, note = None, None, f"no cost source is configured: {exc}"
        report = build_report(
            config,
            quarter,
            run_date(context),
            actions=list(known.actions),
            milestones=[m for m in known.milestones if m.milestone != milestone],
            costs=costs,
            cost_source=source,
            cost_note=note,
        )
        markdown, html = write_report(report, self.settings.artifacts_path / config.community_id)
        detail = {"markdown": str(markdown), "html": str(html), "quarter": str(quarter)}
        log.info("Check-in report for %s: %s and %s", config.community_id, markdown, html)
        written = known.action(report_key(quarter))
        writes = [
            ActionRecord(
                config.community_id,
                report_key(quarter),
                "document",
                written.created_at if written else utc_now(),
                detail,
            )
        ]
        invitation = None
        if known.action(f"email:{invitation_key(quarter)}") is None:
            sent = self.send_unrecorded(
                "checkin-invitation", config, key=invitation_key(quarter), extra={"report": report}
            )
            writes.append(sent)
            invitation = sent.detail["message_id"]
        else:
            log.info("The %s invitation was already sent to %s", quarter, config.community_id)
        self.store.save_actions(writes)
        return detail | {"invitation": invitation}

    def read_records(self, context: Context, quarter: Quarter) -> CommunityRecords:
        """What the scan read for this community, or (a retry, no scan) the store's now."""
        from engagements.checkin import checkin_due, for_checkin
        from engagements.milestones import CHECKIN_HELD
        from engagements.onboarding import load_engagement
        from engagements.store.base import CommunityRecords

        if self.records and first_try(context):
            return CommunityRecords.from_json(self.records)
        engagement = load_engagement(self.store, self.community_id)
        milestones = self.store.list_milestones(self.community_id)
        milestone = CHECKIN_HELD.key(str(quarter))
        if not any(m.milestone == milestone for m in milestones):
            milestones.append(
                self.store.plan_milestone(self.community_id, milestone, checkin_due(quarter))
            )
        actions = self.store.list_actions(self.community_id)
        return for_checkin(CommunityRecords(engagement, tuple(actions), tuple(milestones)), quarter)


SATISFACTION_PARAM = {
    "type": ["null", "string"],
    "enum": [None, "very satisfied", "satisfied", "neutral", "dissatisfied", "very dissatisfied"],
}


class CheckinOutcomeOperator(AskAgainMixin, EngagementMixin, HITLEntryOperator):
    """Collect the check-in's outcome: notes, satisfaction, requests, monthly active users."""

    template_fields = (*HITLEntryOperator.template_fields, "community_id", "quarter")

    def __init__(
        self,
        *,
        community_id: str,
        quarter: str,
        smtp_conn_id: str = SMTP_CONN_ID,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("subject", "Quarterly check-in outcome")
        kwargs["params"] = {
            "notes": Param(
                "", type="string", format="multiline", description="What the community said."
            ),
            "satisfaction": Param(
                None,
                **SATISFACTION_PARAM,
                description="How satisfied the representatives are with the hubs.",
            ),
            "requests": Param(
                [],
                type="array",
                items={"type": "string"},
                description="Requests, one per line; each becomes a follow-up issue.",
            ),
            "observed_maus": Param(
                None,
                type=["null", "integer"],
                minimum=0,
                description="Monthly active users shown in Grafana at the meeting.",
            ),
        }
        super().__init__(**kwargs)
        self.community_id = community_id
        self.quarter = quarter
        self.smtp_conn_id = smtp_conn_id

    def execute(self, context: Context):
        report = self.store.get_action(self.community_id, f"checkin-report:{self.quarter.lower()}")
        self.subject = f"{self.quarter} check-in outcome for {self.community_id}"
        self.body = (
            f"Record what the {self.quarter} check-in with **{self.community_id}** concluded. "
            "Each request becomes a follow-up issue."
            + (f" The report is at `{report.detail['markdown']}`." if report else "")
        )
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        from engagements.checkin import Quarter, normalize_outcome, record_outcome

        result = self.checked_answer(context, event)
        try:
            outcome = normalize_outcome(result["params_input"])
        except ValueError as exc:
            self.ask_again(context, f"the check-in outcome is not valid: {exc}")
        detail = record_outcome(
            self.store,
            self.community_id,
            Quarter.parse(self.quarter),
            outcome,
            responded_by=(result.get("responded_by_user") or {}).get("name"),
            on=result["responded_at"].date(),
        )
        log.info("Check-in outcome recorded for %s: %s", self.community_id, detail)
        return detail


class RecordCheckinFollowUpsOperator(EngagementOperator):
    """One follow-up issue record per request made at the check-in (none twice)."""

    template_fields: Sequence[str] = ("community_id", "quarter")

    def __init__(self, *, quarter: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.quarter = quarter

    def execute(self, context: Context) -> list[str]:
        from engagements.checkin import Quarter, outcome_key, record_follow_ups

        quarter = Quarter.parse(self.quarter)
        outcome = self.store.get_action(self.community_id, outcome_key(quarter))
        if outcome is None:  # the form was marked success instead of answered
            raise AirflowSkipException(
                f"skipped: no outcome is recorded for {self.community_id}'s {quarter} check-in "
                "(was checkin_outcome marked success instead of answered?), so no request is "
                "known; clear checkin_outcome to answer it"
            )
        keys = record_follow_ups(
            self.store, self.community_id, quarter, outcome.detail.get("requests", [])
        )
        log.info("%d follow-up issue(s) recorded for %s", len(keys), self.community_id)
        return keys
