"""
### Engagement renewal scan: start one renewal decision run per engagement due

About 60 days before a contract ends, BD starts the renewal conversation (the runbook's
"End of engagement"). **Scheduled daily**: `find_due` lists the Active engagements whose
contract ends within 60 days and whose renewal has not been opened, reading the engagements
and the renewal records once for all, and plans each decision milestone
(`renewal_decided_<YYYY>_<MM>_<DD>`, due on the contract end). Then the mapped
`start_decision_runs` starts one run of `engagement_renewal` per community (run id
`renewal__<community>__<end>`, so a community is never started twice: a second scan skips
the start; its conf carries `community_id`, `contract_end` and the engagement as the scan read
it, so that the decision run reads nothing more on its first try, and a run whose contract
was decided meanwhile asks nothing). The decision itself is `engagement_renewal`'s.

To decide one community's renewal now, trigger `engagement_renewal` with its `community_id`.

**Connections**: `airtable_default` (store; without it the embedded SQLite store).
Unpause `engagement_renewal` with this DAG: a start against a paused DAG fails, naming it.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from engagements.dagkit import DEFAULT_ARGS, Tag
from engagements.operators.renewal import DueRenewalsOperator
from engagements.operators.runs import StartDagRunOperator
from engagements.renewal import RENEWAL_DAG_ID, RENEWAL_SCAN_DAG_ID

with DAG(
    dag_id=RENEWAL_SCAN_DAG_ID,
    description="Daily: engagements ending within 60 days, one renewal decision run each",
    schedule="@daily",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    default_args=DEFAULT_ARGS,
    tags=[Tag.LIFECYCLE, Tag.RENEWAL],
    doc_md=__doc__,
) as dag:
    due = DueRenewalsOperator(task_id="find_due")
    StartDagRunOperator.partial(
        task_id="start_decision_runs",
        trigger_dag_id=RENEWAL_DAG_ID,
        map_index_template="{{ task.conf['community_id'] }}",
    ).expand_kwargs(due.output)
