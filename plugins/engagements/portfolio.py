"""The portfolio: every engagement in one row, most urgent first.

Plain functions over store records and a list of lifecycle runs in progress (read from
Airflow by the web app), so the ordering, the filters and the cost verdicts are tested without
Airflow. The rows are built from one listing of each table (``community_id=None``): one
paginated pass per table on Airtable whatever the number of engagements.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from engagements.billing import Month, MonthlyCost
from engagements.costs import COST_MONTH, Verdict, compare
from engagements.milestones import (
    CATALOGUE,
    CHECKIN_HELD,
    COST_ENTRY_RECORDED,
    RENEWAL_DECIDED,
    UPGRADED,
    UnknownMilestone,
    get_milestone,
)
from engagements.store.base import ActionRecord, Engagement, MilestoneRecord

ONBOARDING_DAG_ID = "engagement_onboarding"
CHECKIN_DAG_ID = "engagement_quarterly_checkin"
COST_WATCH_DAG_ID = "engagement_cost_watch"
RENEWAL_SCAN_DAG_ID = "engagement_renewal_scan"
RENEWAL_DAG_ID = "engagement_renewal"
DECOMMISSION_DAG_ID = "engagement_decommission"
UPKEEP_DAG_ID = "engagement_platform_upkeep"
LIFECYCLE_DAG_IDS = (
    ONBOARDING_DAG_ID,
    CHECKIN_DAG_ID,
    COST_WATCH_DAG_ID,
    RENEWAL_SCAN_DAG_ID,
    RENEWAL_DAG_ID,
    DECOMMISSION_DAG_ID,
    UPKEEP_DAG_ID,
)
"""The DAGs whose runs and milestones the portfolio shows."""


@dataclass(frozen=True)
class Upgrade:
    cluster: str
    to: str
    due: dt.date | None


def parse_upgrade(milestone: str) -> Upgrade | None:
    """``upgraded_openscience_1.32`` is an upgrade of ``openscience`` to ``1.32``."""
    if UPGRADED.milestone(milestone) is None:
        return None
    cluster, _, to = milestone.removeprefix(UPGRADED.prefix).rpartition("_")
    return Upgrade(cluster, to, None)


def milestone_title(milestone: str) -> str:
    try:
        return get_milestone(milestone).title
    except UnknownMilestone:
        return milestone


def waiting_dag(milestone: str) -> str | None:
    """The lifecycle DAG whose sensor waits on this milestone (None: not known to any)."""
    if milestone in CATALOGUE:
        return ONBOARDING_DAG_ID
    for series, dag_id in (
        (CHECKIN_HELD, CHECKIN_DAG_ID),
        (COST_ENTRY_RECORDED, COST_WATCH_DAG_ID),
        (RENEWAL_DECIDED, RENEWAL_DAG_ID),
    ):
        if series.milestone(milestone) is not None:
            return dag_id
    return UPKEEP_DAG_ID if parse_upgrade(milestone) else None


@dataclass(frozen=True)
class RunInProgress:
    """A lifecycle DAG run that is queued or running for the community."""

    dag_id: str
    run_id: str
    state: str
    started: dt.datetime | None = None
    waiting: tuple[str, ...] = ()
    """Its tasks waiting on a person: sensors between pokes, forms awaiting input."""

    def grid_path(self, base: str = "/") -> str:
        return f"{base}dags/{quote(self.dag_id, safe='')}/runs/{quote(self.run_id, safe='')}"


@dataclass(frozen=True)
class PendingMilestone:
    key: str
    title: str
    due: dt.date | None
    overdue_days: int

    @classmethod
    def of(cls, record: MilestoneRecord, today: dt.date) -> PendingMilestone:
        days = (today - record.due).days if record.overdue(today) else 0
        return cls(record.milestone, milestone_title(record.milestone), record.due, days)


@dataclass(frozen=True)
class CostSummary:
    """The latest recorded month against the month before, by the cost watch's rule."""

    month: Month
    amount: Decimal
    currency: str
    previous: Decimal | None
    change_pct: Decimal | None
    verdict: Verdict


def cost_history(actions: Iterable[ActionRecord]) -> dict[Month, MonthlyCost]:
    """The monthly costs the cost watch recorded (``cost:<YYYY-MM>``), by month."""
    return dict(
        sorted(
            (Month.parse(a.detail["month"]), MonthlyCost.from_detail(a.detail))
            for a in actions
            if a.kind == COST_MONTH
        )
    )


def summarize_costs(
    costs: Mapping[Month, MonthlyCost], threshold_pct: Decimal, today: dt.date
) -> CostSummary | None:
    """The last closed month with a cost (none is invented), compared with the one before."""
    closed = [m for m in costs if m < Month.of(today)]
    if not closed:
        return None
    month = max(closed)
    comparison = compare(costs.get(month.previous()), costs[month], threshold_pct, month=month)
    current = costs[month]
    return CostSummary(
        month,
        current.amount,
        current.currency,
        comparison.previous.amount if comparison.previous else None,
        comparison.increase_pct,
        comparison.verdict,
    )


@dataclass(frozen=True)
class PortfolioRow:
    community_id: str
    name: str
    status: str
    provider: str
    region: str
    contract_end: dt.date | None
    days_left: int | None
    runs: tuple[RunInProgress, ...]
    next_milestone: PendingMilestone | None
    overdue: tuple[PendingMilestone, ...]
    last_checkin: dt.date | None
    cost: CostSummary | None
    open_upgrades: tuple[Upgrade, ...]
    pending: tuple[PendingMilestone, ...] = field(default=(), repr=False)

    def urgency(self) -> tuple[Any, ...]:
        """Overdue first (longest overdue on top), then the nearest due date, then the rest."""
        if self.overdue:
            return (0, -max(m.overdue_days for m in self.overdue), dt.date.min, self.name.lower())
        due = self.next_milestone.due if self.next_milestone else None
        return (1 if due else 2, 0, due or dt.date.max, self.name.lower())


def effective(engagement: Engagement, key: str) -> str:
    """A ``cloud.*`` value as the technical decisions left it (they override the config)."""
    section, _, leaf = key.partition(".")
    value = engagement.decisions.get(key, (engagement.config.get(section) or {}).get(leaf))
    return "" if value is None else str(value)


def contract_end(engagement: Engagement) -> dt.date | None:
    end = (engagement.config.get("contract") or {}).get("end")
    try:
        return dt.date.fromisoformat(str(end)) if end else None
    except ValueError:
        return None


def build_row(
    engagement: Engagement,
    milestones: Sequence[MilestoneRecord],
    costs: Mapping[Month, MonthlyCost],
    runs: Sequence[RunInProgress],
    *,
    today: dt.date,
    threshold_pct: Decimal,
) -> PortfolioRow:
    pending_records = sorted(
        (m for m in milestones if not m.done),
        key=lambda m: (m.due is None, m.due or dt.date.max, m.milestone),
    )
    pending = tuple(PendingMilestone.of(m, today) for m in pending_records)
    checkins = [
        m.done_at.date() for m in milestones if m.done_at and CHECKIN_HELD.milestone(m.milestone)
    ]
    upgrades = []
    for record in pending_records:
        upgrade = parse_upgrade(record.milestone)
        if upgrade is not None:
            upgrades.append(Upgrade(upgrade.cluster, upgrade.to, record.due))
    end = contract_end(engagement)
    return PortfolioRow(
        community_id=engagement.community_id,
        name=engagement.name,
        status=engagement.status.value,
        provider=effective(engagement, "cloud.provider"),
        region=effective(engagement, "cloud.region"),
        contract_end=end,
        days_left=(end - today).days if end else None,
        runs=tuple(runs),
        next_milestone=pending[0] if pending else None,
        overdue=tuple(m for m in pending if m.overdue_days),
        last_checkin=max(checkins, default=None),
        cost=summarize_costs(costs, threshold_pct, today),
        open_upgrades=tuple(upgrades),
        pending=pending,
    )


def build_portfolio(
    engagements: Iterable[Engagement],
    milestones: Iterable[MilestoneRecord],
    actions: Iterable[ActionRecord],
    runs: Mapping[str, Sequence[RunInProgress]],
    *,
    today: dt.date,
    threshold_pct: Decimal,
) -> list[PortfolioRow]:
    """One row per engagement from the three listings, most urgent first."""
    by_community: dict[str, list[MilestoneRecord]] = defaultdict(list)
    for record in milestones:
        by_community[record.community_id].append(record)
    cost_actions: dict[str, list[ActionRecord]] = defaultdict(list)
    for action in actions:
        if action.kind == COST_MONTH:
            cost_actions[action.community_id].append(action)
    rows = [
        build_row(
            e,
            by_community.get(e.community_id, []),
            cost_history(cost_actions.get(e.community_id, [])),
            runs.get(e.community_id, ()),
            today=today,
            threshold_pct=threshold_pct,
        )
        for e in engagements
    ]
    return sorted(rows, key=PortfolioRow.urgency)


@dataclass(frozen=True)
class Filters:
    status: str = ""
    provider: str = ""
    search: str = ""

    def keep(self, row: PortfolioRow) -> bool:
        words = self.search.lower().split()
        haystack = f"{row.name} {row.community_id}".lower()
        return (
            (not self.status or row.status == self.status)
            and (not self.provider or row.provider == self.provider)
            and all(word in haystack for word in words)
        )

    def apply(self, rows: Iterable[PortfolioRow]) -> list[PortfolioRow]:
        return [row for row in rows if self.keep(row)]


SAFE_LINK = re.compile(r"^https?://[^\s\"'<>]+$")


def safe_link(value: Any) -> str | None:
    """Only web addresses become links (a ``javascript:`` URL in a record stays text)."""
    return value if isinstance(value, str) and SAFE_LINK.match(value) else None
