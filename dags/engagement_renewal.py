"""
### Engagement renewal: open the conversation, record the decision, act on it

One community's renewal decision (the runbook's "End of engagement"). **Started by
`engagement_renewal_scan`** about 60 days before the contract ends (run id
`renewal__<community>__<end>`; its conf also carries `contract_end` and the engagement as the
scan read it, and a run whose contract was decided meanwhile asks nothing), or **by hand**
with `community_id` in the trigger form (a late renewal of an engagement already being
decommissioned is allowed: choosing Renewed stops the decommissioning before anything is
removed).

**Steps**: `open_renewal` (status Renewal, milestone
`renewal_decided_<YYYY>_<MM>_<DD>` due on the contract end, email to BD with the engagement
summary and a link to the form) → `renewal_decided`, a human-in-the-loop branch form with no
default → **Renewed**: `apply_renewal` stores the new contract dates (re-validated), status
Active, no decommission is ever scheduled → **Not renewed**: `hand_over` sets
Decommissioning and `trigger_decommission` starts `engagement_decommission` with conf
`{"community_id", "end_date"}`. **No answer** by the end of the contract's last day (at least a
week after the form opens) decides nothing: BD is reminded (`renewal-reminder`, cc support) and
the form keeps waiting a week more, again and again; only a person's answer starts a
decommission. A renewal recorded elsewhere meanwhile closes the form unanswered (skipped).

**Human-in-the-loop form**: `renewal_decided` (Required actions; fields `new_end`,
`new_start`, `note`). **Milestone**: `renewal_decided_<end date>`, recorded from the form.

**Connections**: `smtp_default` (email to BD), `airtable_default` (store; without it the
embedded SQLite store). **Variables**: `engagements_bd_email` and the other `engagements_*`
settings.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Param, chain

from engagements.config import COMMUNITY_ID_PATTERN
from engagements.dagkit import DEFAULT_ARGS, Tag
from engagements.operators.renewal import (
    ApplyRenewalOperator,
    HandOverOperator,
    OpenRenewalOperator,
    RenewalDecisionOperator,
)
from engagements.operators.runs import StartDagRunOperator
from engagements.renewal import DECOMMISSION_DAG_ID, RENEWAL_DAG_ID

with DAG(
    dag_id=RENEWAL_DAG_ID,
    description="One renewal decision: renewed, or handed to decommission",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    default_args=DEFAULT_ARGS,
    params={
        "community_id": Param(
            type="string",
            pattern=COMMUNITY_ID_PATTERN,
            description="The community whose renewal is decided.",
        )
    },
    tags=[Tag.LIFECYCLE, Tag.RENEWAL],
    doc_md=__doc__,
    # Each decision run waits for BD for up to 60 days; one per engagement in renewal.
    max_active_runs=500,
) as dag:
    opened = OpenRenewalOperator(task_id="open_renewal", decision_task_id="renewal_decided")
    decided = RenewalDecisionOperator(
        task_id="renewal_decided",
        opened_task_id="open_renewal",
        renewed_task_id="apply_renewal",
        not_renewed_task_id="hand_over",
    )
    renewed = ApplyRenewalOperator(task_id="apply_renewal", decision_task_id="renewal_decided")
    handed_over = HandOverOperator(task_id="hand_over", decision_task_id="renewal_decided")
    decommission = StartDagRunOperator(
        task_id="trigger_decommission",
        trigger_dag_id=DECOMMISSION_DAG_ID,
        conf=handed_over.output,
        trigger_run_id="{{ ti.xcom_pull(task_ids='hand_over', key='run_id') }}",
    )

    chain(opened, decided, [renewed, handed_over])
    chain(handed_over, decommission)
