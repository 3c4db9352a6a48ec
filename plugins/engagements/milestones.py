"""The catalogue of human milestones and their runbook deadlines.

Deadlines count days from the day the community signed the contract (``contract.signed_on``),
as the runbook does. A milestone without a deadline has no overdue notice.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from engagements.config import CommunityConfig, check_date
from engagements.store.base import EngagementStore, MilestoneRecord, NotFound


class Lifecycle(StrEnum):
    ONBOARDING = "onboarding"
    TRAINING = "training"
    UNDER_MANAGEMENT = "under-management"


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


@dataclass(frozen=True)
class MilestoneSeries:
    """A milestone that recurs each period; its key is the prefix plus the period.

    The due date is set when a run plans it (a quarter or a month has no fixed day relative
    to the contract's signature).
    """

    prefix: str
    period: str
    """Regular expression of the period part of the key."""
    title: str
    """Title with ``{period}`` replaced by ``display(period)``."""
    example: str
    """How the period is written, e.g. ``<YYYY>q<N>``."""
    display: Callable[[str], str]
    how: str = ""
    first_day: Callable[[str], dt.date] | None = None
    """The first day of a period that matches ``period`` (ValueError for an impossible one),
    checked as any engagement date; None for a period that is not a date."""

    def key(self, period: str) -> str:
        key = self.prefix + period.lower().replace("-", "_")
        try:
            found = self.milestone(key)
        except UnknownMilestone as exc:
            raise ValueError(str(exc)) from None
        if found is None:
            raise ValueError(f"{period!r} is not a period of {self.prefix}{self.example}")
        return key

    def milestone(self, key: str) -> Milestone | None:
        """The milestone of ``key`` if it is of this series; a date that cannot be (a 30
        February, a year decades ahead) raises :class:`UnknownMilestone` saying so."""
        match = re.fullmatch(re.escape(self.prefix) + f"({self.period})", key)
        if match is None:
            return None
        try:
            if self.first_day is not None:
                check_date(self.first_day(match[1]))
        except ValueError as exc:
            raise UnknownMilestone(key, f"{self.display(match[1])}: {exc}") from None
        title = self.title.format(period=self.display(match[1]))
        return Milestone(key, title, None, Lifecycle.UNDER_MANAGEMENT, how=self.how)


def _quarter_start(period: str) -> dt.date:
    year, quarter = period.split("q")
    return dt.date(int(year), 3 * int(quarter) - 2, 1)


def _month_start(period: str) -> dt.date:
    year, month = period.split("_")
    return dt.date(int(year), int(month), 1)


def _day(period: str) -> dt.date:
    return dt.date.fromisoformat(period.replace("_", "-"))


CHECKIN_HELD = MilestoneSeries(
    "checkin_held_",
    r"\d{4}q[1-4]",
    "Quarterly check-in meeting held ({period})",
    example="<YYYY>q<N>",
    display=str.upper,
    first_day=_quarter_start,
    how="Record after the meeting; the check-in outcome form opens next.",
)
COST_ENTRY_RECORDED = MilestoneSeries(
    "cost_entry_",
    r"\d{4}_(?:0[1-9]|1[0-2])",
    "Cloud cost for {period} recorded",
    example="<YYYY>_<MM>",
    display=lambda period: period.replace("_", "-"),
    first_day=_month_start,
    how="Read the month's cost in the provider's console, then record it: "
    "engagements cost record <community_id> <YYYY-MM> <amount> [--currency USD].",
)
RENEWAL_DECIDED = MilestoneSeries(
    "renewal_decided_",
    r"\d{4}_\d{2}_\d{2}",
    "Renewal decided for the contract ending {period}",
    example="<YYYY>_<MM>_<DD>",
    display=lambda period: period.replace("_", "-"),
    first_day=_day,
    how="Answer the renewal_decided form (Required actions) of the engagement_renewal run: "
    "renewed with the new end date, or not renewed. No decision by the end date means not "
    "renewed.",
)
"""One per contract end, so that each year's renewal is decided and recorded on its own."""


def _upgrade_display(period: str) -> str:
    cluster, _, to = period.rpartition("_")
    what = f"JupyterHub chart {to.removeprefix('chart-')}" if to.startswith("chart-") else to
    return f"{cluster} upgraded to {'Kubernetes ' if what == to else ''}{what}"


UPGRADED = MilestoneSeries(
    "upgraded_",
    r"[a-z][a-z0-9-]*_(?:1\.(?:0|[1-9]\d*)|chart-\d+\.\d+\.\d+)",
    "Cluster {period}",
    example="<cluster>_<to>",
    display=_upgrade_display,
    how="Upgrade as the checklist of the cluster's upkeep issue says, then record it: "
    "engagements milestone mark <community_id> upgraded_<cluster>_<to>. The pipeline then "
    "checks the versions and each hub's health.",
)
"""One per planned upgrade: ``<to>`` is the Kubernetes minor the cluster's control plane and
node pools move to, or ``chart-<version>`` for the JupyterHub chart (build keys with
:func:`upgrade_milestone`)."""
SERIES: tuple[MilestoneSeries, ...] = (
    CHECKIN_HELD,
    COST_ENTRY_RECORDED,
    RENEWAL_DECIDED,
    UPGRADED,
)


def upgrade_milestone(cluster: str, to: str) -> str:
    """``upgraded_<cluster>_<to>``; ``to`` is a minor such as ``1.32`` or ``chart-4.3.3``."""
    key = f"{UPGRADED.prefix}{cluster}_{to}"
    if UPGRADED.milestone(key) is None:
        raise ValueError(f"{key!r} is not an upgrade milestone (upgraded_<cluster>_<to>)")
    return key


class UnknownMilestone(KeyError):
    """A name that is no milestone; with a reason, one whose period cannot be."""

    def __str__(self) -> str:
        if len(self.args) > 1:
            return f"milestone {self.args[0]!r}: {self.args[1]}"
        known = [*sorted(CATALOGUE), *(s.prefix + s.example for s in SERIES)]
        return f"unknown milestone {self.args[0]!r}; known milestones: " + ", ".join(known)


def get_milestone(key: str) -> Milestone:
    try:
        return CATALOGUE[key]
    except KeyError:
        pass
    for series in SERIES:
        milestone = series.milestone(key)
        if milestone is not None:
            return milestone
    raise UnknownMilestone(key)


def onboarding_plan(config: CommunityConfig) -> list[tuple[Milestone, dt.date | None]]:
    """Every onboarding milestone with its due date for this community."""
    return [(m, m.due(config)) for m in ONBOARDING_MILESTONES]


def training_plan(config: CommunityConfig) -> list[tuple[Milestone, dt.date | None]]:
    """The eight training sessions, proposed weekly after the onboarding email is due."""
    return [(m, m.due(config)) for m in TRAINING_MILESTONES]


@dataclass(frozen=True)
class Recording:
    record: MilestoneRecord
    already: bool
    """It had been recorded before: ``record`` shows the first who and when, unchanged."""


def recorded_by(person: str, via: str) -> str:
    """The store's "Done by" of a person recording through a tool: ``jo (engagements CLI)``."""
    return f"{person} ({via})"


def record_done(
    store: EngagementStore, community_id: str, milestone: str, *, by: str, note: str | None
) -> Recording:
    """Record a milestone done for a person: the CLI and the portfolio page both come here.

    Idempotent: a second recording keeps the first who, when and note.
    """
    if store.get_engagement(community_id) is None:
        raise NotFound(f"no engagement for {community_id!r} in the store")
    before = store.get_milestone(community_id, milestone)
    record = store.record_milestone(community_id, milestone, by=by, note=note)
    return Recording(record, already=before is not None and before.done)
