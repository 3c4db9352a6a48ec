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

**Milestones waited on** (reschedule-mode sensors, an overdue notice once per milestone):
`rollout_coordinator_identified`, `technical_meeting_scheduled`, `technical_meeting_held`,
`rollout_deck_reviewed`, `infrastructure_deployed`, `rollout_meeting_held`,
`configuration_completed`. Record one with `engagements milestone mark <community_id>
<milestone>`, in the store (Airtable), or mark the waiting `wait` task success.

**Human-in-the-loop forms**: `technical_decisions`, `rollout_outcome` (Required actions page).

**Connections**: `smtp_default` (email), `airtable_default` (store; without it the embedded
SQLite store is used). **Variables**: `engagements_*` settings (see the README).

**Deployment**: the `deploy_infrastructure` group waits for an engineer to deploy by hand and
record `infrastructure_deployed`; rendering the cluster and hub configuration, the pull
request, GitHub and Quay steps are not automated in this version.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, TaskGroup, chain

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
from engagements.operators.hitl import RolloutOutcomeOperator, TechnicalDecisionsOperator
from engagements.params import build_params

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
        tooltip="Cluster, hubs, GitHub org and repositories, Quay: deployed by an engineer",
    ) as deploy:
        milestone_gate("infrastructure_deployed")

    rollout_held = milestone_gate("rollout_meeting_held")
    outcome = RolloutOutcomeOperator(task_id="rollout_outcome")
    deck_v2 = BuildRolloutDeckOperator(task_id="update_rollout_deck", version=2)
    follow_ups = RecordFollowUpsOperator(task_id="record_follow_up_issues")
    configured = milestone_gate("configuration_completed")
    onboarding_email = EngagementEmailOperator(task_id="send_onboarding_email", kind="onboarding")
    training = PlanTrainingOperator(task_id="plan_training")
    active = SetStatusOperator(task_id="mark_active", status="Active")

    chain(register, signoff, route, [premium, start])
    chain(start, [welcome, coordinator, meeting_scheduled], meeting_held, decisions, deck)
    chain(deck, deck_reviewed, invitation, deploy, rollout_held, outcome, [deck_v2, follow_ups])
    chain([deck_v2, follow_ups], configured, onboarding_email, [training, active])
