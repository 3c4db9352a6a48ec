"""
### Engagement onboarding: from signed contract to "users invited"

Runs the Advanced Tier runbook for one community. **Trigger** it from the UI with the Params
form (one field per key of the community config, grouped in sections) or over REST with the
config as conf (`engagements trigger-conf FILE` prints it). Bad conf is refused at trigger
time naming the key; rules across keys are checked by `register` before anything is stored.

**Steps**: register the engagement (one onboarding per community) → BD sign-off check (fails
listing every unmet item, BD emailed) → tier routing (not manageable by 2i2c: premium-tier
notice to BD, nothing deployed) → welcome email and the first milestones → technical decisions
form → rollout deck → rollout invitation → `deploy_infrastructure` → rollout meeting and its
outcome form → deck v2 and follow-up issues → configuration completed → onboarding email →
training plan → status Active.

**Milestones waited on** (deferred to the triggerer, an overdue notice once per milestone):
`rollout_coordinator_identified`, `technical_meeting_scheduled`, `technical_meeting_held`,
`rollout_deck_reviewed`, `infrastructure_deployed`, `rollout_meeting_held`,
`configuration_completed`. Record one on the portfolio page (`/engagements/`), with
`engagements milestone mark <community_id> <milestone>`, in the store (Airtable), or mark the
waiting `wait` task success (the `record` task after it names the Airflow user who did, from
Airflow's event log).

**Human-in-the-loop forms**: `technical_decisions`, `rollout_outcome` (Required actions page).

**Connections**: `smtp_default` (email), `airtable_default` (store; without it the embedded
SQLite store is used). **Variables**: `engagements_*` settings (see the README).

**Deployment** (`deploy_infrastructure`), in the infrastructure repository's two steps: the
cluster (`cluster.yaml` with `hubs: []`, support values, terraform/eksctl inputs, its deploy
workflow entry) is proposed by `open_cluster_pull_request`: a pull request on GitHub when the
Variable `engagements_infra_repo` names it and `github_default` exists, else a branch
`onboard-<community>` of the local git repository `$AIRFLOW_HOME/infrastructure`, which an
engineer reviews and accepts with `git merge`. After the merge (`cluster_pull_request_merged`)
an engineer approves provisioning (`approve_provisioning`, Required actions), a pod runs the
tooling image (`engagements_tooling_image`) to apply the IaC files and report terraform's
outputs, the cluster is verified (`aws_default`, `google_cloud_default` or
`kubernetes_<cluster>`), `cluster_outputs` collects the outputs (or, with no accounts, the
example outputs file `$AIRFLOW_HOME/cluster-outputs/<cluster>.yaml`, which it writes and the
engineer can edit; a missing output stops here), `open_hubs_pull_request` proposes the hubs
written with them (branch `onboard-<community>-hubs`), and after that merge
(`hubs_pull_request_merged`) `hubs_healthy` polls each hub's `/hub/health`.
Beside it, `github_org_ready` waits until the community's org exists
with the bot as an owner, then `community_github_org` creates the teams, adds the
representatives and the template repositories, and `quay_image_repository` creates the image
repository and robot (`quay_default`) and puts its token in the image repository's Actions
secrets. A step that cannot run here (no connection, local branch) reports its plan and skips;
the rest of the onboarding goes on. `record_if_deployed` records `infrastructure_deployed` only
when every hub answered healthy and the org and Quay work were done; otherwise it ends skipped
with what was not verified (action `deployment-not-verified`) and the milestone stays the
engineer's confirmation. Follow-up issues from the rollout meeting are opened in the
infrastructure repository (`open_follow_up_issues`) when GitHub is configured; without it the
task ends skipped and each stays in the store marked not opened, with the reason.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, TaskGroup, TriggerRule, chain

from engagements.dagkit import DEFAULT_ARGS, Tag, milestone_gate
from engagements.operators.engagement import (
    BuildRolloutDeckOperator,
    EngagementEmailOperator,
    PlanTrainingOperator,
    PremiumTierOperator,
    RecordFollowUpsOperator,
    RegisterEngagementOperator,
    SetStatusOperator,
    SignOffCheckOperator,
    TierRouteOperator,
)
from engagements.operators.github import (
    CommunityGitHubOrgOperator,
    OpenFollowUpIssuesOperator,
    OpenHubsPullRequestOperator,
    OpenInfrastructurePullRequestOperator,
)
from engagements.operators.hitl import RolloutOutcomeOperator, TechnicalDecisionsOperator
from engagements.operators.provision import (
    ClusterOutputsOperator,
    ConfirmDeploymentOperator,
    ProvisionApprovalOperator,
    ProvisionClusterOperator,
    VerifyClusterOperator,
)
from engagements.operators.quay import QuayImageRepositoryOperator
from engagements.params import build_params
from engagements.sensors.github import GitHubOrgReadySensor, PullRequestMergedSensor
from engagements.sensors.hubs import HubHealthSensor

with DAG(
    dag_id="engagement_onboarding",
    description="Onboard a community: sign-off, milestones, decisions, deck, emails, training",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    default_args=DEFAULT_ARGS,
    params=build_params(),
    tags=[Tag.LIFECYCLE, Tag.ONBOARDING],
    doc_md=__doc__,
    max_active_tasks=8,
) as dag:
    register = RegisterEngagementOperator(task_id="register")
    signoff = SignOffCheckOperator(task_id="bd_signoff_check")
    route = TierRouteOperator(
        task_id="route_tier", advanced_task_id="start_onboarding", premium_task_id="premium_tier"
    )
    premium = PremiumTierOperator(task_id="premium_tier")
    start = SetStatusOperator(task_id="start_onboarding", status="Onboarding")

    welcome = EngagementEmailOperator(task_id="send_welcome_email", kind="welcome")
    coordinator = milestone_gate("rollout_coordinator_identified")
    meeting_scheduled = milestone_gate("technical_meeting_scheduled")
    meeting_held = milestone_gate("technical_meeting_held")
    decisions = TechnicalDecisionsOperator(task_id="technical_decisions")

    deck = BuildRolloutDeckOperator(task_id="build_rollout_deck", version=1)
    deck_reviewed = milestone_gate("rollout_deck_reviewed")
    invitation = EngagementEmailOperator(
        task_id="send_rollout_invitation", kind="rollout-invitation"
    )

    with TaskGroup(
        "deploy_infrastructure",
        tooltip="Cluster, then hubs, as reviewed changes; GitHub org and repositories, Quay",
    ) as deploy:
        # A plan-only step skips; what comes after it still runs once the change exists (one
        # upstream succeeded), and is skipped with everything else on the premium-tier route.
        after_plan_only = TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS
        cluster_pr = OpenInfrastructurePullRequestOperator(task_id="open_cluster_pull_request")
        cluster_merged = PullRequestMergedSensor(task_id="cluster_pull_request_merged")
        approval = ProvisionApprovalOperator(task_id="approve_provisioning")
        provision = ProvisionClusterOperator(task_id="provision_cluster")
        verify = VerifyClusterOperator(task_id="verify_cluster")
        outputs = ClusterOutputsOperator(task_id="cluster_outputs", trigger_rule=after_plan_only)
        hubs_pr = OpenHubsPullRequestOperator(task_id="open_hubs_pull_request")
        hubs_merged = PullRequestMergedSensor(
            task_id="hubs_pull_request_merged", change_key="infra-hubs-pr"
        )
        hubs_healthy = HubHealthSensor(task_id="hubs_healthy")
        org_ready = GitHubOrgReadySensor(task_id="github_org_ready")
        org = CommunityGitHubOrgOperator(task_id="community_github_org")
        quay = QuayImageRepositoryOperator(
            task_id="quay_image_repository", trigger_rule=after_plan_only
        )
        confirm = ConfirmDeploymentOperator(
            task_id="record_if_deployed", trigger_rule=after_plan_only
        )
        # The engineer's confirmation waits once the hubs are merged, whatever was verified.
        deployed = milestone_gate("infrastructure_deployed", trigger_rule=after_plan_only)
        chain(cluster_pr, cluster_merged, approval, provision, verify)
        chain([cluster_merged, verify], outputs, hubs_pr, hubs_merged, hubs_healthy)
        chain(org_ready, org)
        chain([cluster_pr, org], quay)
        chain([hubs_merged, hubs_healthy, quay], confirm)
        chain([hubs_merged, confirm], deployed)

    rollout_held = milestone_gate("rollout_meeting_held")
    outcome = RolloutOutcomeOperator(task_id="rollout_outcome")
    deck_v2 = BuildRolloutDeckOperator(task_id="update_rollout_deck", version=2)
    follow_ups = RecordFollowUpsOperator(task_id="record_follow_up_issues")
    open_issues = OpenFollowUpIssuesOperator(task_id="open_follow_up_issues")
    # Opening the issues skips without GitHub (they stay in the store as not opened): the
    # configuration is still waited for, unless the whole route was skipped (premium tier).
    configured = milestone_gate(
        "configuration_completed", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS
    )
    onboarding_email = EngagementEmailOperator(task_id="send_onboarding_email", kind="onboarding")
    training = PlanTrainingOperator(task_id="plan_training")
    active = SetStatusOperator(task_id="mark_active", status="Active")

    chain(register, signoff, route, [premium, start])
    chain(start, [welcome, coordinator, meeting_scheduled], meeting_held, decisions, deck)
    chain(deck, deck_reviewed, invitation, deploy, rollout_held, outcome, [deck_v2, follow_ups])
    chain(follow_ups, open_issues)
    chain([deck_v2, open_issues], configured, onboarding_email, [training, active])
