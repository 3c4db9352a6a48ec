"""
### Quarterly check-in: do the hubs still meet the community's needs?

Runs at 06:00 UTC on the first day of each quarter for every **Active** engagement (one mapped
`checkin` group per community). **Trigger** it by hand with `community_id` to cover one
community, and optionally `quarter` (`2027Q2`; default: the quarter of the run). A check-in
held in a quarter reviews the quarter before it. **Rule**: a check-in is held with each Active
engagement that started at least one month before the run date (its first check-in is the next
quarter's). A community skipped by the rule, also one named by hand, is listed with its reason
and the rule in the log of `select_engagements`, its `skipped` XCom and the run's note; with
nobody due, `select_engagements` ends skipped, saying why. `select_engagements` reads each
table of the store once for every community and plans the meeting milestones; each
community's check-in gets what it needs of them.

**Steps per community**: `report_and_invite` builds the report (cloud cost of each month of
the reviewed quarter and the trend against the quarter before, expected against observed
monthly active users, image-support hours used of the 4 per quarter, open follow-up issues,
milestones still open, days to the contract's end), writes it as Markdown and HTML in the
artifacts folder, emails the representatives proposing the meeting (once per quarter) →
`checkin_held` waits for the meeting → `checkin_outcome` form → `record_follow_up_issues`
(one per request) → `open_follow_up_issues` (in the infrastructure repository when
`github_default` and `engagements_infra_repo` are set; otherwise they stay in the store).

**Milestone waited on**: `checkin_held_<YYYY>q<N>` (deferred to the triggerer, due 30 days
into the quarter, one overdue notice to support). Record it on the portfolio page
(`/engagements/`), with `engagements milestone mark <community_id> checkin_held_2027q2`, in the
store (Airtable), or mark the `wait` task success.

**Human-in-the-loop form**: `checkin_outcome` (notes, satisfaction, requests, monthly active
users seen in Grafana), on the Required actions page.

**Connections**: `smtp_default` (email), `airtable_default` (store; else the embedded SQLite
store), `github_default` (follow-up issues), `aws_default` (Cost Explorer) and
`google_cloud_default` (BigQuery billing export); without a cost connection the report says
there are no figures. **Variables**:
`engagements_checkin_scheduling_link`, `engagements_gcp_billing_table`/`_project`,
`engagements_aws_cluster_tag`, `engagements_aws_shared_accounts`. Support hours are
recorded with `engagements support-hours add <community_id> <hours> --note ...`.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Param, TaskGroup, chain, task_group

from engagements.dagkit import DEFAULT_ARGS, Tag, one_community_param
from engagements.operators.checkin import (
    CheckinOutcomeOperator,
    CheckinReportOperator,
    RecordCheckinFollowUpsOperator,
    SelectCheckinOperator,
)
from engagements.operators.github import OpenFollowUpIssuesOperator
from engagements.operators.milestone import ConfirmMilestoneOperator
from engagements.sensors.milestone import MilestoneSensor

with DAG(
    dag_id="engagement_quarterly_checkin",
    description="Quarterly check-in: report, invitation, meeting, outcome, follow-ups",
    schedule="0 6 1 1,4,7,10 *",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    default_args=DEFAULT_ARGS,
    params={
        "community_id": one_community_param(
            "One community to check in with; empty: every Active engagement."
        ),
        "quarter": Param(
            None,
            type=["null", "string"],
            pattern=r"^\d{4}[Qq][1-4]$",
            description="The quarter of the check-in, e.g. 2027Q2; empty: the run's quarter.",
        ),
    },
    tags=[Tag.LIFECYCLE, Tag.UNDER_MANAGEMENT, Tag.CHECKIN],
    doc_md=__doc__,
    max_active_tasks=16,
) as dag:
    select = SelectCheckinOperator(task_id="select_engagements")

    @task_group(group_id="checkin", default_args={"map_index_template": "{{ task.community_id }}"})
    def checkin(
        community_id: str, quarter: str, milestone: str, shared_account: bool, records: dict
    ) -> None:
        """One community's check-in; ``records``: what the scan read of it."""
        report = CheckinReportOperator(
            task_id="report_and_invite",
            community_id=community_id,
            quarter=quarter,
            shared_account=shared_account,
            records=records,
        )
        with TaskGroup("checkin_held", tooltip="Quarterly check-in meeting held") as held:
            wait = MilestoneSensor(
                task_id="wait",
                community_id=community_id,
                milestone=milestone,
                doc_md="Waits for the check-in meeting. Record it after the meeting.",
            )
            wait >> ConfirmMilestoneOperator(
                task_id="record", community_id=community_id, milestone=milestone
            )
        outcome = CheckinOutcomeOperator(
            task_id="checkin_outcome", community_id=community_id, quarter=quarter
        )
        follow_ups = RecordCheckinFollowUpsOperator(
            task_id="record_follow_up_issues", community_id=community_id, quarter=quarter
        )
        issues = OpenFollowUpIssuesOperator(
            task_id="open_follow_up_issues", community_id=community_id
        )
        chain(report, held, outcome, follow_ups, issues)

    select >> checkin.expand_kwargs(select.output)
