"""
### Cost watch: each community's cloud cost, the 20% alert, the pass-through statement

Runs at 06:00 UTC on the 3rd of each month, once the previous month has closed, for every
engagement whose hubs run (Active, Renewal, Decommissioning): one mapped `costs` group per
community. **Trigger** it by hand with `community_id` for one community and/or `month`
(`2027-01`; default: the last full month).

**Steps per community**: `wait_for_cost_entry` (Azure and Jetstream2 only: an engineer records
the month's cost; done at once for AWS and GCP) → `fetch_costs` reads the month and the one
before (AWS Cost Explorer by linked account, GCP BigQuery billing export by project, both
filtered by cluster where the account is shared; Azure/Jetstream2 from the recorded entries)
and records them → `check_increase` emails the representatives and support once per month
when the month is more than `engagements_cost_alert_threshold_pct` (20) percent above the
previous one, and warns once when the run rate projects past the contract's estimated cloud
cost. A community with no cost source is logged as such and gets nothing recorded, never a
zero. Then `write_statement` writes the month's pass-through statement (communities whose
bill 2i2c pays), `statements/cloud-costs-<YYYY-MM>.csv` in the artifacts folder, replacing
it on a re-run, and records each line in the store.

**Milestone waited on**: `cost_entry_<YYYY>_<MM>` for Azure and Jetstream2 (due 7 days after
the month; one overdue notice). Record the cost with `engagements cost record <community_id>
<YYYY-MM> <amount> [--currency USD]`, which also records the milestone.

**Connections**: `aws_default` (Cost Explorer, payer account), `google_cloud_default`
(BigQuery), `smtp_default`, `airtable_default` (else the embedded store). A source whose
connection is missing counts as not configured. **Variables**:
`engagements_cost_alert_threshold_pct`, `engagements_gcp_billing_table` and
`engagements_gcp_billing_project` (may use `{community_id}` and `{account}`),
`engagements_aws_cluster_tag`, `engagements_aws_shared_accounts`, `engagements_artifacts_dir`.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Param, XComArg, task_group

from engagements.dagkit import DEFAULT_ARGS, Tag, one_community_param
from engagements.operators.costs import (
    CostAlertOperator,
    MonthlyCostOperator,
    SelectCostWatchOperator,
    WriteStatementOperator,
)
from engagements.sensors.costs import CostEntrySensor

with DAG(
    dag_id="engagement_cost_watch",
    description="Monthly cloud cost per community: 20% alert, projection, statement",
    schedule="0 6 3 * *",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    default_args=DEFAULT_ARGS,
    params={
        "community_id": one_community_param(
            "One community to watch; empty: every engagement whose hubs run."
        ),
        "month": Param(
            None,
            type=["null", "string"],
            pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
            description="The month to check, e.g. 2027-01; empty: the last full month.",
        ),
    },
    tags=[Tag.LIFECYCLE, Tag.UNDER_MANAGEMENT, Tag.COSTS],
    doc_md=__doc__,
    max_active_tasks=16,
) as dag:
    select = SelectCostWatchOperator(task_id="select_engagements")

    @task_group(group_id="costs", default_args={"map_index_template": "{{ task.community_id }}"})
    def costs(community_id: str, month: str, milestone: str, shared_account: bool) -> XComArg:
        """One community's month."""
        wait = CostEntrySensor(
            task_id="wait_for_cost_entry",
            community_id=community_id,
            milestone=milestone,
            month=month,
            doc_md="Azure and Jetstream2: waits for the month's cost to be recorded.",
        )
        fetch = MonthlyCostOperator(
            task_id="fetch_costs",
            community_id=community_id,
            month=month,
            shared_account=shared_account,
        )
        check = CostAlertOperator(task_id="check_increase", community_id=community_id, month=month)
        wait >> fetch >> check
        return fetch.output

    statement = WriteStatementOperator(
        task_id="write_statement",
        results=costs.expand_kwargs(select.output),
        month="{{ ti.xcom_pull(task_ids='select_engagements', key='month') }}",
        trigger_rule="none_failed",
    )
