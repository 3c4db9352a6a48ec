"""Shared pieces of the lifecycle DAGs: defaults, tags and the milestone gate."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from airflow.sdk import Param, TaskGroup

from engagements.config import COMMUNITY_ID_PATTERN
from engagements.milestones import get_milestone
from engagements.operators.milestone import ConfirmMilestoneOperator
from engagements.sensors.milestone import MilestoneSensor

DEFAULT_ARGS = {
    "owner": "product-and-services",
    "retries": 3,
    "retry_delay": dt.timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(minutes=15),
}
"""Retries with backoff absorb a rate-limited store or a busy mail server."""


class Tag(StrEnum):
    LIFECYCLE = "engagement-lifecycle"
    ONBOARDING = "onboarding"
    RENEWAL = "renewal"
    DECOMMISSION = "decommission"
    UNDER_MANAGEMENT = "under-management"
    CHECKIN = "checkin"
    COSTS = "costs"
    UPKEEP = "upkeep"


def milestone_gate(
    milestone: str, *, trigger_rule: str | None = None, deferrable: bool = True
) -> TaskGroup:
    """``wait`` for a human milestone, then ``record`` it if the wait was marked success.

    ``trigger_rule`` is the wait's (default all upstream succeeded). The wait defers to the
    triggerer; ``deferrable=False`` makes it a reschedule-mode sensor for a deployment without
    a triggerer (README "Scaling").
    """
    spec = get_milestone(milestone)
    with TaskGroup(milestone, tooltip=spec.title) as group:
        wait = MilestoneSensor(
            task_id="wait",
            milestone=milestone,
            deferrable=deferrable,
            doc_md=f"Waits for **{spec.title}**. {spec.how}",
            **({"trigger_rule": trigger_rule} if trigger_rule else {}),
        )
        wait >> ConfirmMilestoneOperator(task_id="record", milestone=milestone)
    return group


def one_community_param(description: str) -> Param:
    """The optional ``community_id`` of a scheduled DAG: set, the run is for that community."""
    return Param(
        None, type=["null", "string"], pattern=COMMUNITY_ID_PATTERN, description=description
    )
