"""The quarterly check-in: who is due, the report, support hours, the meeting's outcome.

Pure functions over the store protocol and the community config; no Airflow. A check-in held
in a quarter reviews the quarter before it: the run on 1 April 2027 plans the 2027Q2 check-in
(milestone ``checkin_held_2027q2``) and reports on January to March 2027.

Store records (Actions table):

- ``support-hours:<date>:<id>`` (kind ``support_hours``): image-support time an engineer spent,
  counted against the tier's 4 hours per quarter;
- ``checkin-outcome:<quarter>`` (kind ``checkin_outcome``): notes, satisfaction, requests;
- ``maus:<quarter>`` (kind ``maus_observed``): monthly active users seen at the check-in;
- ``follow-up:<hash>`` (kind ``follow_up_issue``): one per request, shared with onboarding so
  that a request made twice is one issue;
- ``checkin-report:<quarter>`` (kind ``document``): where the report was written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from engagements.billing import Month, MonthlyCost, format_money
from engagements.config import CommunityConfig
from engagements.costs import COST_ENTRY
from engagements.messages.emails import template_environment
from engagements.milestones import CHECKIN_HELD, UPGRADED, UnknownMilestone, get_milestone
from engagements.store.base import (
    ActionRecord,
    CommunityRecords,
    Engagement,
    EngagementStatus,
    EngagementStore,
    MilestoneRecord,
    upsert_action,
)

SUPPORT_HOURS_PER_QUARTER = Decimal(4)
"""Image guidance included in the Advanced Tier each quarter (runbook)."""
CHECKIN_DUE_DAYS = 30
"""The check-in meeting is due within the first month of its quarter."""
SATISFACTION = ("very satisfied", "satisfied", "neutral", "dissatisfied", "very dissatisfied")

SUPPORT_HOURS = "support_hours"
CHECKIN_OUTCOME = "checkin_outcome"
MAUS_OBSERVED = "maus_observed"
FOLLOW_UP_ISSUE = "follow_up_issue"


@dataclass(frozen=True, order=True)
class Quarter:
    """A calendar quarter; ``str()`` gives ``2027Q1``, ``key`` the lowercase form in keys."""

    year: int
    number: int

    def __post_init__(self) -> None:
        if not 1 <= self.number <= 4:
            raise ValueError(f"a quarter is 1-4, not {self.number}")

    @classmethod
    def parse(cls, text: str) -> Quarter:
        year, sep, number = text.strip().upper().partition("Q")
        if not (sep and year.isdigit() and len(year) == 4 and number in ("1", "2", "3", "4")):
            raise ValueError(f"{text!r} is not a quarter; write it as YYYYQN, e.g. 2027Q1")
        return cls(int(year), int(number))

    @classmethod
    def of(cls, day: dt.date) -> Quarter:
        return cls(day.year, (day.month - 1) // 3 + 1)

    def __str__(self) -> str:
        return f"{self.year}Q{self.number}"

    @property
    def key(self) -> str:
        return str(self).lower()

    @property
    def months(self) -> list[Month]:
        first = 3 * (self.number - 1) + 1
        return [Month(self.year, m) for m in range(first, first + 3)]

    @property
    def first_day(self) -> dt.date:
        return self.months[0].first_day

    def previous(self) -> Quarter:
        if self.number == 1:
            return Quarter(self.year - 1, 4)
        return Quarter(self.year, self.number - 1)

    def label(self) -> str:
        """``Q1 2027 (January to March)``: for people."""
        first, last = self.months[0], self.months[-1]
        return f"Q{self.number} {self.year} ({first.first_day:%B} to {last.first_day:%B})"


def checkin_due(quarter: Quarter) -> dt.date:
    return quarter.first_day + dt.timedelta(days=CHECKIN_DUE_DAYS - 1)


def _one_month_after(day: dt.date) -> dt.date:
    month = Month.of(day).next()
    last_day = (month.end - dt.timedelta(days=1)).day
    return dt.date(month.year, month.month, min(day.day, last_day))


CHECKIN_RULE = (
    "a quarterly check-in is held with each Active engagement that started at least one month "
    "before the run date; an engagement that started later gets its first check-in the next "
    "quarter"
)
"""The rule every skipped check-in names (in the task log, the run's note and the README)."""


def skip_reason(engagement: Engagement, run_date: dt.date) -> str | None:
    """Why this engagement gets no check-in on ``run_date``, or None when it is due one."""
    if engagement.status is not EngagementStatus.ACTIVE:
        return f"status is {engagement.status.value}, not Active"
    start = dt.date.fromisoformat(str(engagement.config["contract"]["start"]))
    if _one_month_after(start) > run_date:
        return f"the engagement started on {start}, less than a month before {run_date}"
    return None


def select_for_checkin(
    engagements: Iterable[Engagement], run_date: dt.date
) -> tuple[list[str], dict[str, str]]:
    """The community ids due a check-in, and the others with the reason each is skipped."""
    due, skipped = [], {}
    for engagement in engagements:
        reason = skip_reason(engagement, run_date)
        if reason is None:
            due.append(engagement.community_id)
        else:
            skipped[engagement.community_id] = reason
    return due, skipped


def report_key(quarter: Quarter) -> str:
    return f"checkin-report:{quarter.key}"


def invitation_key(quarter: Quarter) -> str:
    """The key of the invitation email (recorded as ``email:<this>``)."""
    return f"checkin-invitation:{quarter.key}"


REPORT_KINDS = frozenset({SUPPORT_HOURS, MAUS_OBSERVED, FOLLOW_UP_ISSUE, COST_ENTRY})
"""The kinds of actions the report reads."""


def for_checkin(records: CommunityRecords, quarter: Quarter) -> CommunityRecords:
    """Only what a community's check-in reads: the actions the report shows, whether the
    report and the invitation were written, the open milestones and the meeting's."""
    written = {report_key(quarter), f"email:{invitation_key(quarter)}"}
    meeting = CHECKIN_HELD.key(str(quarter))
    return CommunityRecords(
        records.engagement,
        tuple(a for a in records.actions if a.kind in REPORT_KINDS or a.key in written),
        tuple(m for m in records.milestones if not m.done or m.milestone == meeting),
    )


# Support hours.


@dataclass(frozen=True)
class SupportHours:
    on: dt.date
    hours: Decimal
    note: str
    by: str


def parse_hours(text: str | float | Decimal) -> Decimal:
    try:
        hours = Decimal(str(text))
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number of hours") from None
    if not hours.is_finite() or hours <= 0 or hours > 24 * 92:
        raise ValueError(f"hours must be more than 0 and at most a quarter's worth, not {text}")
    if hours != hours.quantize(Decimal("0.01")):
        raise ValueError(
            f"hours are recorded to the hundredth (0.01 h, under a minute), not {text}"
        )
    return Decimal(format(hours.normalize(), "f"))


def record_support_hours(
    store: EngagementStore,
    community_id: str,
    hours: Decimal,
    *,
    note: str,
    by: str,
    on: dt.date,
) -> ActionRecord:
    """Log image-support time; each call is a new entry (the command is "add")."""
    key = f"support-hours:{on.isoformat()}:{uuid.uuid4().hex[:8]}"
    detail = {"on": on.isoformat(), "hours": str(hours), "note": note, "by": by}
    return store.record_action(community_id, key, SUPPORT_HOURS, detail)


def support_hours(actions: Iterable[ActionRecord]) -> list[SupportHours]:
    entries = [
        SupportHours(
            dt.date.fromisoformat(a.detail["on"]),
            Decimal(a.detail["hours"]),
            a.detail.get("note") or "",
            a.detail.get("by") or "",
        )
        for a in actions
        if a.kind == SUPPORT_HOURS
    ]
    return sorted(entries, key=lambda e: e.on)


def hours_by_quarter(entries: Iterable[SupportHours]) -> dict[Quarter, Decimal]:
    totals: dict[Quarter, Decimal] = {}
    for entry in entries:
        quarter = Quarter.of(entry.on)
        totals[quarter] = totals.get(quarter, Decimal(0)) + entry.hours
    return dict(sorted(totals.items()))


# The meeting's outcome.


def outcome_key(quarter: Quarter) -> str:
    return f"checkin-outcome:{quarter.key}"


def normalize_outcome(answer: Mapping[str, Any]) -> dict[str, Any]:
    """The form's answer as stored; raises ValueError naming a field that is not usable."""
    satisfaction = answer.get("satisfaction") or None
    if satisfaction is not None and satisfaction not in SATISFACTION:
        raise ValueError(f"satisfaction must be one of {', '.join(SATISFACTION)}")
    maus = answer.get("observed_maus")
    if maus in ("", None):
        maus = None
    elif isinstance(maus, bool) or not str(maus).isdigit():
        raise ValueError(f"observed_maus must be a whole number of users, not {maus!r}")
    return {
        "notes": (answer.get("notes") or "").strip(),
        "satisfaction": satisfaction,
        "requests": [" ".join(r.split()) for r in answer.get("requests") or [] if r.strip()],
        "observed_maus": int(maus) if maus is not None else None,
    }


def record_outcome(
    store: EngagementStore,
    community_id: str,
    quarter: Quarter,
    outcome: dict[str, Any],
    *,
    responded_by: str | None,
    on: dt.date,
) -> dict[str, Any]:
    """Write (or replace, if the form is answered again) the outcome and the MAUs seen."""
    detail = outcome | {"quarter": str(quarter), "responded_by": responded_by}
    upsert_action(store, community_id, outcome_key(quarter), CHECKIN_OUTCOME, detail)
    if outcome["observed_maus"] is not None:
        maus = {"quarter": str(quarter), "maus": outcome["observed_maus"], "on": on.isoformat()}
        upsert_action(store, community_id, f"maus:{quarter.key}", MAUS_OBSERVED, maus)
    return detail


def follow_up_key(title: str) -> str:
    """The same request asked at the rollout meeting or at any check-in is one issue."""
    return "follow-up:" + hashlib.sha1(title.lower().encode()).hexdigest()[:12]


def record_follow_ups(
    store: EngagementStore, community_id: str, quarter: Quarter, requests: Iterable[str]
) -> list[str]:
    keys = []
    for request in requests:
        title = " ".join(request.split())
        if not title:
            continue
        key = follow_up_key(title)
        store.record_action(
            community_id,
            key,
            FOLLOW_UP_ISSUE,
            {
                "title": f"[{community_id}] {title}",
                "body": f"Requested at the {quarter} quarterly check-in: {title}",
                "state": "recorded",
            },
        )
        keys.append(key)
    return keys


# The report.


@dataclass(frozen=True)
class OpenMilestone:
    key: str
    title: str
    due: dt.date | None
    overdue: bool


@dataclass(frozen=True)
class CheckinReport:
    """Everything the check-in meeting looks at, for one community and one quarter."""

    community_id: str
    name: str
    quarter: Quarter
    run_date: dt.date
    hub_urls: dict[str, str]
    grafana_url: str
    cost_source: str | None
    cost_note: str | None
    costs: dict[Month, MonthlyCost | None]
    """Each month of the reviewed quarter and the one before it; None: no figure."""
    expected_maus: int
    observed_maus: list[tuple[str, int, str]]
    support: list[SupportHours]
    open_follow_ups: list[str]
    open_milestones: list[OpenMilestone]
    contract_end: dt.date
    support_included: Decimal = SUPPORT_HOURS_PER_QUARTER
    cost_estimate_month: Decimal | None = None
    platform: dict[str, Any] | None = None
    """The cluster's last observation by the platform upkeep (versions and since when)."""
    open_upgrades: tuple[OpenMilestone, ...] = ()
    """Planned upgrades not recorded done yet (``upgraded_*`` milestones)."""

    @property
    def reviewed(self) -> Quarter:
        return self.quarter.previous()

    @property
    def due(self) -> dt.date:
        return checkin_due(self.quarter)

    @property
    def reviewed_costs(self) -> list[tuple[Month, MonthlyCost | None]]:
        return [(m, self.costs.get(m)) for m in self.reviewed.months]

    def quarter_total(self, quarter: Quarter) -> MonthlyCost | None:
        """The quarter's cost when every month of it is known in one currency, else None."""
        costs = [self.costs.get(m) for m in quarter.months]
        if any(c is None for c in costs) or len({c.currency for c in costs}) != 1:
            return None
        total = sum((c.amount for c in costs), Decimal(0))
        return MonthlyCost(quarter.months[-1], total, costs[0].currency, costs[0].source)

    @property
    def missing_months(self) -> list[Month]:
        quarters = (self.reviewed.previous(), self.reviewed)
        return [m for q in quarters for m in q.months if self.costs.get(m) is None]

    @property
    def trend_pct(self) -> Decimal | None:
        """The reviewed quarter against the one before, when both are complete and comparable."""
        now = self.quarter_total(self.reviewed)
        before = self.quarter_total(self.reviewed.previous())
        if now is None or before is None or now.currency != before.currency or not before.amount:
            return None
        return ((now.amount - before.amount) * 100 / before.amount).quantize(Decimal("0.1"))

    @property
    def support_used(self) -> Decimal:
        return hours_by_quarter(self.support).get(self.reviewed, Decimal(0))

    @property
    def support_in_reviewed(self) -> list[SupportHours]:
        return [e for e in self.support if Quarter.of(e.on) == self.reviewed]

    @property
    def days_to_end(self) -> int:
        return (self.contract_end - self.run_date).days


def build_report(
    config: CommunityConfig,
    quarter: Quarter,
    run_date: dt.date,
    *,
    actions: list[ActionRecord],
    milestones: list[MilestoneRecord],
    costs: Mapping[Month, MonthlyCost] | None,
    cost_source: str | None,
    cost_note: str | None = None,
) -> CheckinReport:
    """The report from what the store holds and what the cost source answered.

    ``costs`` is None when there is no cost source (``cost_note`` says why): the report then
    shows no figures at all rather than zeros.
    """
    reviewed = quarter.previous()
    months = reviewed.previous().months + reviewed.months
    from engagements.upkeep.maintenance import OBSERVATION

    open_milestones = [
        OpenMilestone(m.milestone, _title(m.milestone), m.due, m.overdue(run_date))
        for m in milestones
        if not m.done
    ]
    upgrades = tuple(m for m in open_milestones if m.key.startswith(UPGRADED.prefix))
    maus = sorted(
        (a.detail["quarter"], int(a.detail["maus"]), a.detail["on"])
        for a in actions
        if a.kind == MAUS_OBSERVED
    )
    estimate = config.contract.cloud_cost_estimate_usd_month
    return CheckinReport(
        community_id=config.community_id,
        name=config.name,
        quarter=quarter,
        run_date=run_date,
        hub_urls=config.hub_urls,
        grafana_url=config.grafana_url,
        cost_source=cost_source,
        cost_note=cost_note,
        costs={m: costs.get(m) for m in months} if costs is not None else {},
        expected_maus=config.contract.expected_maus,
        observed_maus=maus,
        support=support_hours(actions),
        open_follow_ups=[
            a.detail.get("title", a.key)
            for a in actions
            if a.kind == FOLLOW_UP_ISSUE and a.detail.get("state") != "closed"
        ],
        open_milestones=[m for m in open_milestones if m not in upgrades],
        contract_end=config.contract.end,
        cost_estimate_month=Decimal(str(estimate)) if estimate is not None else None,
        platform=next((a.detail for a in actions if a.key == OBSERVATION), None),
        open_upgrades=upgrades,
    )


def _title(key: str) -> str:
    try:
        return get_milestone(key).title
    except UnknownMilestone:
        return key


def render_report(report: CheckinReport) -> tuple[str, str]:
    """The report as Markdown and as HTML, from ``include/templates/checkin/``."""
    env = template_environment()
    context = {"report": report, "money": format_money}
    return (
        env.get_template("checkin/report.md.j2").render(context),
        env.get_template("checkin/report.html.j2").render(context),
    )


def write_report(report: CheckinReport, out_dir: Path) -> tuple[Path, Path]:
    """Write both renderings; a re-run overwrites them."""
    markdown, html = render_report(report)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"checkin-{report.quarter.key}"
    md_path, html_path = out_dir / f"{stem}.md", out_dir / f"{stem}.html"
    md_path.write_text(markdown, encoding="utf-8")
    html_path.write_text(html, encoding="utf-8")
    return md_path, html_path


def preview_extra(config: CommunityConfig) -> dict[str, Any]:
    """A report with no store records, for ``engagements render-email checkin-invitation``."""
    today = dt.datetime.now(dt.UTC).date()
    report = build_report(
        config,
        Quarter.of(today),
        today,
        actions=[],
        milestones=[],
        costs=None,
        cost_source=None,
        cost_note="preview: costs are read from the cost source when the pipeline runs",
    )
    return {"report": report}
