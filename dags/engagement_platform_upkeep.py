"""
### Platform upkeep: keep every community's cluster and hub on supported versions

Runs at 06:00 UTC every Monday for the clusters of every **Active** engagement (a cluster is
named after its community). **Trigger** it by hand with `community_id` for one cluster.

**Steps**: `select_clusters` → `observe` (mapped, one per cluster): the control plane and node
pool versions and the versions the provider offers with the end of their standard support
(EKS through `aws_default`; GKE through `google_cloud_default`; Azure and Jetstream2 through
the cluster's API server, connection `kubernetes_<cluster>`, with the offered versions from
`engagements_upkeep_kubernetes_versions`), and the JupyterHub chart its hubs run (basehub's
`Chart.yaml` in the infrastructure repository); `newest_chart_release` reads the chart's
GitHub releases. Without a connection each reads the fleet file (`engagements_upkeep_fleet_file`,
seeded by `make run`) and its log says so. Each observation is recorded in the store
(`upkeep-observation`; the quarterly check-in report shows it). → `plan` runs the policy (the
function behind `engagements upkeep plan`; README "Platform upkeep"), writes
`upkeep/<date>/observation.yaml` and `plan.json` in the artifacts folder and plans the
milestones → `upgrade` (mapped, one per cluster with work):

1. `previous_batch` waits until every cluster of the batch before is upgraded and healthy (the
   canary batch, first, passes at once);
2. `notify_community` emails the representatives (technical lead in cc) the maintenance window,
   at least `engagements_upkeep_notice_days` (7) ahead, once per planned upgrade;
3. `upgrade_issue` opens (or finds by title and label `upkeep:<cluster>`, and updates) the
   issue with the ordered checklist in the infrastructure repository; without GitHub it
   records the planned issue in the store and skips with it;
4. `kubernetes_upgraded` and `chart_upgraded` wait for the engineer's milestones (a kind the
   plan has no work of is skipped); overdue past the end of standard support: support is
   emailed once;
5. `verify` observes the cluster again until every action shows done and every hub's
   `/hub/health` answers 200, and records the result (`upkeep-result:<targets>`).

**Why a sensor per cluster for the batches**: the number of batches is only known when the
plan runs, and a DAG's shape is fixed when it is parsed. One mapped group per cluster with
work, whose first step waits on the store for the previous batch's verified results, runs any
number of batches of any size with one DAG shape, shows each cluster's progress in the grid,
and holds no worker slot while it waits (reschedule mode). Task groups per batch position
would cap the number of batches at parse time.

**Milestones waited on**: `upgraded_<cluster>_<minor>` (the Kubernetes work: control plane and
node pools, e.g. `upgraded_openscience_1.32`) and `upgraded_<cluster>_chart-<version>`.
Record with `engagements milestone mark <community_id> upgraded_openscience_1.32`, in the
store, or mark the `wait` task success.

**Connections**: `aws_default`, `google_cloud_default`, `kubernetes_<cluster>`,
`github_default` (with `engagements_infra_repo`), `smtp_default`, `airtable_default` (else the
embedded store). **Variables**: `engagements_upkeep_*` (the policy's numbers, the fleet file,
offered versions, canaries, the chart repository, the health URL), `engagements_hub_health`.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, TaskGroup, chain, task_group

from engagements.dagkit import DEFAULT_ARGS, Tag, one_community_param
from engagements.operators.milestone import ConfirmMilestoneOperator
from engagements.operators.upkeep import (
    MaintenanceNoticeOperator,
    ObserveChartReleaseOperator,
    ObserveClusterOperator,
    PlanUpkeepOperator,
    SelectUpkeepOperator,
    UpgradeIssueOperator,
    UpgradeNeededOperator,
)
from engagements.sensors.milestone import MilestoneSensor
from engagements.sensors.upkeep import PreviousBatchSensor, UpgradeVerifiedSensor

with DAG(
    dag_id="engagement_platform_upkeep",
    description="Weekly: observe every cluster's versions, plan upgrades by policy, act in batches",
    schedule="0 6 * * 1",
    start_date=dt.datetime(2026, 1, 5, tzinfo=dt.UTC),
    catchup=False,
    default_args=DEFAULT_ARGS,
    params={
        "community_id": one_community_param(
            "One cluster (its community) to keep current; empty: every Active engagement's."
        ),
    },
    tags=[Tag.LIFECYCLE, Tag.UNDER_MANAGEMENT, Tag.UPKEEP],
    doc_md=__doc__,
    max_active_tasks=16,
) as dag:
    select = SelectUpkeepOperator(task_id="select_clusters")
    observe = ObserveClusterOperator.partial(
        task_id="observe", map_index_template="{{ task.community_id }}"
    ).expand_kwargs(select.output)
    release = ObserveChartReleaseOperator(task_id="newest_chart_release")
    planned = PlanUpkeepOperator(
        task_id="plan",
        selected=select.output,
        observations=observe.output,
        release=release.output,
        trigger_rule="none_failed",
    )

    @task_group(group_id="upgrade", default_args={"map_index_template": "{{ task.community_id }}"})
    def upgrade(
        community_id: str, plan: str, after: list, kubernetes_milestone: str, chart_milestone: str
    ) -> None:
        """One cluster's planned upgrade, once the batch before it is done."""
        gate = PreviousBatchSensor(task_id="previous_batch", community_id=community_id, after=after)
        notice = MaintenanceNoticeOperator(
            task_id="notify_community", community_id=community_id, plan=plan
        )
        issue = UpgradeIssueOperator(task_id="upgrade_issue", community_id=community_id, plan=plan)
        slots = []
        for kind, milestone in (("kubernetes", kubernetes_milestone), ("chart", chart_milestone)):
            with TaskGroup(f"{kind}_upgraded", tooltip=f"The {kind} upgrade recorded") as slot:
                needed = UpgradeNeededOperator(
                    task_id="planned",
                    community_id=community_id,
                    plan=plan,
                    kind=kind,
                    milestone=milestone,
                    trigger_rule="none_failed",
                )
                wait = MilestoneSensor(
                    task_id="wait",
                    community_id=community_id,
                    milestone=milestone,
                    doc_md="Waits for the engineer to record the upgrade (see the upkeep issue).",
                )
                (
                    needed
                    >> wait
                    >> ConfirmMilestoneOperator(
                        task_id="record", community_id=community_id, milestone=milestone
                    )
                )
            slots.append(slot)
        verify = UpgradeVerifiedSensor(
            task_id="verify", community_id=community_id, plan=plan, trigger_rule="none_failed"
        )
        chain(gate, notice, issue, slots, verify)

    upgrade.expand_kwargs(planned.output)
