"""
### Engagement decommission: notices, verified backup, approval, teardown as a reviewed change

Ends an engagement that was not renewed, as the runbook says: the community is notified 14
days before the end, at the end and 14 days after it; hubs and cluster are removed within 14
days after the end; home directories are backed up to low-cost S3 storage and kept 90 days.

**Trigger**: by an `engagement_renewal` run (BD answered "Not renewed"), or by hand with conf
`{"community_id": "<id>", "end_date": "YYYY-MM-DD"}` (the contract end in the store). The date
waits are relative to `end_date`, so a past end date runs straight through; a run that starts
after the end (the decision came late) does not send the "two weeks before" notice, and
announces the removal at least a week ahead.

**Steps**: `start` (conf checked against the store, status Decommissioning) →
`wait_until_two_weeks_before_end` → `notice_before_end` → `wait_until_end` → `notice_at_end` →
`create_archive_buckets` (`<cluster>-<hub>-homedirs-archive`: public access blocked, encrypted,
GLACIER_IR after 3 days, deleted after 90) → `archive_home_directories` (a KubernetesPodOperator
job per hub: `s3://<bucket>/<user>/archive-<date>.tar.gz`) → `verify_backup` (every user the
hub's own users API lists as having started a server, plus any other home the job found,
against the archives: count, sizes, MD5; a manifest per bucket; **any gap, an empty archive of
a used hub, or a hub whose users cannot be listed fails the run and nothing is removed**) →
`approve_teardown` (records the steps it shows: removed paths and destroy commands, with their
digest) → `open_teardown_pr` (removes `config/clusters/<cluster>/` and the terraform/eksctl
inputs, and must: a change that removes nothing fails; lists the OAuth/CILogon clients to
delete; the community's GitHub repositories are left to it) → `teardown_pr_merged`
(waits, in reschedule mode, until an engineer has reviewed and merged the teardown change:
branch `decommission-<cluster>-<end_date>`, merged into main by `git merge` in the local
repository; a renewal recorded meanwhile withdraws the change) →
`destroy_cluster` (checks the change is merged and the plan is still the approved one, then
runs exactly the approved commands in the tooling image on the commit the change started from,
the last one holding the cluster's inputs) → `verify_cluster_gone` (EKS
through the amazon provider, GKE through the google provider, Azure and Jetstream2 through the
cncf-kubernetes provider: the API server's name must not resolve, or its address must refuse
connections, on three attempts 30 s apart; any answer means it is still there, and a timeout
proves nothing and fails the check) →
`record_decommissioned` (decommission date, backup location and expiry; status
Decommissioned) → `wait_until_two_weeks_after_end` → `notice_after_removal` (where the backup
is and until when).

**Guards**: every step re-reads the store (the merge wait on every poke); a renewal recorded
meanwhile (the contract end moved) cancels the run before anything is removed, withdraws the
teardown change if it is still under review (one already merged fails the task, naming the
change to revert), and tells the community if it had been notified;
the run's community id must match the store's record, and the approver types it again; a
verified backup with fewer than 30 days left blocks the teardown (clearing
`create_archive_buckets` archives again under a new date);
re-runs resume (each step is keyed in the store's action log: no second notice, verified homes
are not archived again).

**Human-in-the-loop form**: `approve_teardown` (Required actions), showing the backup manifest.
**Milestones**: none; the approval and the merge of the teardown change are the human steps.

**Connections**: `smtp_default`, `airtable_default` (store), `aws_default` (archive buckets, EKS
check), `kubernetes_<community_id>` (the community's cluster: the archive job, and the removal
check on Azure and Jetstream2), `jupyterhub_<community_id>_<hub>` for each hub with homes
(staging, prod, workshop: the hub's API token as password, scopes `list:users`, `read:users`,
`read:servers`; host defaults to the hub's address), used by `verify_backup`,
`kubernetes_default` (the tooling cluster, for the destroy job), `google_cloud_default` (GKE
check), `github_default` with the Variable `engagements_infra_repo` (else the local git
repository). A step whose connection is missing skips and logs its plan; nothing is reported
done that was not done. When `verify_cluster_gone` cannot check, an engineer checks by hand,
records it with `engagements decommission cluster-gone <community_id> <end_date> --how "..."`,
and clears `record_decommissioned`.
"""

from __future__ import annotations

import datetime as dt

from airflow.providers.standard.sensors.date_time import DateTimeSensor
from airflow.sdk import DAG, Param, TriggerRule, chain

from engagements.config import COMMUNITY_ID_PATTERN
from engagements.dagkit import DEFAULT_ARGS, Tag
from engagements.operators.decommission.approval import TeardownApprovalOperator
from engagements.operators.decommission.archive import (
    ArchiveHomeDirectoriesOperator,
    CreateArchiveBucketsOperator,
)
from engagements.operators.decommission.backup import VerifyBackupOperator
from engagements.operators.decommission.cluster_gone import (
    RecordDecommissionedOperator,
    VerifyClusterGoneOperator,
)
from engagements.operators.decommission.notices import (
    DecommissionNoticeOperator,
    StartDecommissionOperator,
)
from engagements.operators.decommission.teardown import (
    DestroyClusterOperator,
    OpenTeardownPullRequestOperator,
)
from engagements.renewal import DECOMMISSION_DAG_ID
from engagements.sensors.decommission import TeardownMergedSensor


def wait_for_day(task_id: str, days_from_end: int) -> DateTimeSensor:
    """Wait in reschedule mode (no worker held) until a day relative to the end date."""
    return DateTimeSensor(
        task_id=task_id,
        target_time=f"{{{{ macros.ds_add(params.end_date, {days_from_end}) }}}}",
        mode="reschedule",
        poke_interval=dt.timedelta(hours=1),
        timeout=dt.timedelta(days=120),
    )


with DAG(
    dag_id=DECOMMISSION_DAG_ID,
    description="Notices, verified 90-day home backup, approval, teardown PR, destroy, record",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    default_args=DEFAULT_ARGS,
    params={
        "community_id": Param(type="string", pattern=COMMUNITY_ID_PATTERN),
        "end_date": Param(type="string", format="date", description="The contract's end date."),
    },
    tags=[Tag.LIFECYCLE, Tag.DECOMMISSION],
    doc_md=__doc__,
) as dag:
    start = StartDecommissionOperator(task_id="start")
    wait_before = wait_for_day("wait_until_two_weeks_before_end", -14)
    notice_before = DecommissionNoticeOperator(task_id="notice_before_end", stage="before-end")
    wait_end = wait_for_day("wait_until_end", 0)
    notice_end = DecommissionNoticeOperator(task_id="notice_at_end", stage="at-end")
    buckets = CreateArchiveBucketsOperator(task_id="create_archive_buckets")
    archive = ArchiveHomeDirectoriesOperator(task_id="archive_home_directories")
    # Also runs after a skipped archive job (no cluster connection): archives made by hand
    # are checked all the same, and only this check decides whether the backup is complete.
    verify = VerifyBackupOperator(
        task_id="verify_backup", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS
    )
    approve = TeardownApprovalOperator(task_id="approve_teardown")
    pull_request = OpenTeardownPullRequestOperator(task_id="open_teardown_pr")
    # The teardown is a reviewed change: nothing is destroyed before it is merged.
    merged = TeardownMergedSensor(task_id="teardown_pr_merged")
    destroy = DestroyClusterOperator(task_id="destroy_cluster")
    # Also runs after a skipped destroy job: the provider says whether the cluster is gone.
    gone = VerifyClusterGoneOperator(
        task_id="verify_cluster_gone", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS
    )
    # Runs after a skipped check too: a check made by hand and recorded with the CLI counts.
    recorded = RecordDecommissionedOperator(
        task_id="record_decommissioned", trigger_rule=TriggerRule.NONE_FAILED
    )
    wait_after = wait_for_day("wait_until_two_weeks_after_end", 14)
    notice_after = DecommissionNoticeOperator(task_id="notice_after_removal", stage="after-removal")

    chain(start, wait_before, notice_before, wait_end, notice_end, buckets, archive, verify)
    chain(buckets, verify)
    chain(verify, approve, pull_request, merged, destroy, gone)
    chain(pull_request, gone)
    chain(gone, recorded, wait_after, notice_after)
