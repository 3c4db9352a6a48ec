"""The catalogue of human milestones and their runbook deadlines.

Deadlines count days from the day the community signed the contract (``contract.signed_on``),
as the runbook does. A milestone without a deadline has no overdue notice.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from engagements.config import CommunityConfig


class Lifecycle(StrEnum):
    ONBOARDING = "onboarding"
    TRAINING = "training"


@dataclass(frozen=True)
class Milestone:
    key: str
    title: str
    due_days: int | None
    lifecycle: Lifecycle = Lifecycle.ONBOARDING
    how: str = ""

    def due(self, config: CommunityConfig) -> dt.date | None:
        if self.due_days is None:
            return None
        return config.contract.signed_on + dt.timedelta(days=self.due_days)


ONBOARDING_MILESTONES: tuple[Milestone, ...] = (
    Milestone(
        "rollout_coordinator_identified",
        "Rollout coordinator identified within 2i2c",
        3,
        how="Name the coordinator in the note.",
    ),
    Milestone(
        "technical_meeting_scheduled",
        "Initial technical meeting scheduled",
        3,
        how="Put the meeting date in the note.",
    ),
    Milestone(
        "technical_meeting_held",
        "Initial technical meeting held (30 min)",
        7,
        how="Record after the meeting; the technical decisions form opens next.",
    ),
    Milestone(
        "rollout_deck_reviewed",
        "Rollout slide deck reviewed by the team",
        14,
        how="Review the generated deck (its path is in the action log) and edit if needed.",
    ),
    Milestone(
        "infrastructure_deployed",
        "Cluster, hubs, GitHub org and repositories, Quay deployed",
        21,
        how="Deploy as the infrastructure runbook says, then record it.",
    ),
    Milestone(
        "rollout_meeting_held",
        "Rollout meeting held with the representatives (60-90 min)",
        21,
        how="Record after the meeting; the rollout outcome form opens next.",
    ),
    Milestone(
        "configuration_completed",
        "Configuration requested at the rollout meeting completed",
        None,
        how="Record when every follow-up issue from the rollout meeting is closed.",
    ),
)

TRAINING_TOPICS: tuple[tuple[str, str], ...] = (
    ("training_hub_champion", "Community hub champion training"),
    ("training_grafana", "Intro to Grafana"),
    ("training_image_management", "Image management"),
    ("training_user_management", "User management"),
    ("training_right_to_replicate", "Right to replicate"),
    ("training_right_to_participate", "Right to participate"),
    ("training_service_level_objectives", "2i2c service level objectives"),
    ("training_events_and_workshops", "Events and workshops"),
)
TRAINING_START_DAYS = 35
TRAINING_SPACING_DAYS = 7

TRAINING_MILESTONES: tuple[Milestone, ...] = tuple(
    Milestone(
        key,
        f"Training session: {title}",
        TRAINING_START_DAYS + i * TRAINING_SPACING_DAYS,
        Lifecycle.TRAINING,
        how="Record when the session has been held.",
    )
    for i, (key, title) in enumerate(TRAINING_TOPICS)
)

CATALOGUE: dict[str, Milestone] = {m.key: m for m in ONBOARDING_MILESTONES + TRAINING_MILESTONES}


class UnknownMilestone(KeyError):
    def __str__(self) -> str:
        return f"unknown milestone {self.args[0]!r}; known milestones: " + ", ".join(
            sorted(CATALOGUE)
        )


def get_milestone(key: str) -> Milestone:
    try:
        return CATALOGUE[key]
    except KeyError:
        raise UnknownMilestone(key) from None


def onboarding_plan(config: CommunityConfig) -> list[tuple[Milestone, dt.date | None]]:
    """Every onboarding milestone with its due date for this community."""
    return [(m, m.due(config)) for m in ONBOARDING_MILESTONES]


def training_plan(config: CommunityConfig) -> list[tuple[Milestone, dt.date | None]]:
    """The eight training sessions, proposed weekly after the onboarding email is due."""
    return [(m, m.due(config)) for m in TRAINING_MILESTONES]
