"""One engagement's page: milestones, costs, support hours, the action log and documents.

Built from that community's records only (one listing per table); plain functions, no Airflow.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from engagements.billing import MonthlyCost, format_money
from engagements.checkin import (
    SUPPORT_HOURS,
    SUPPORT_HOURS_PER_QUARTER,
    Quarter,
    hours_by_quarter,
    support_hours,
)
from engagements.portfolio import (
    PortfolioRow,
    RunInProgress,
    build_row,
    cost_history,
    milestone_title,
    safe_link,
    waiting_dag,
)
from engagements.store.base import ActionRecord, Contact, Engagement, MilestoneRecord

COST_MONTHS_SHOWN = 12
DOCUMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
"""A document is served by its file name in the community's artifacts folder, nothing else."""


@dataclass(frozen=True)
class MilestoneLine:
    key: str
    title: str
    due: dt.date | None
    done_at: dt.datetime | None
    done_by: str | None
    note: str | None
    overdue_days: int
    dag_id: str | None
    """The lifecycle DAG that waits on it: recording it needs permission to edit that DAG."""

    @property
    def done(self) -> bool:
        return self.done_at is not None

    @property
    def late_days(self) -> int:
        """Days done after its due date (0 when on time or not done)."""
        if self.done_at is None or self.due is None:
            return 0
        return max(0, (self.done_at.date() - self.due).days)


@dataclass(frozen=True)
class QuarterHours:
    quarter: Quarter
    used: Decimal
    allowance: Decimal = SUPPORT_HOURS_PER_QUARTER

    @property
    def over(self) -> bool:
        return self.used > self.allowance


@dataclass(frozen=True)
class LogEntry:
    at: dt.datetime
    kind: str
    key: str
    summary: str
    link: str | None = None


@dataclass(frozen=True)
class Document:
    name: str
    size: int
    label: str


@dataclass(frozen=True)
class Dossier:
    row: PortfolioRow
    contacts: tuple[Contact, ...]
    milestones: tuple[MilestoneLine, ...]
    costs: tuple[MonthlyCost, ...]
    threshold_pct: Decimal
    estimate_month: Decimal | None
    support: tuple[QuarterHours, ...]
    log: tuple[LogEntry, ...]
    documents: tuple[Document, ...]

    @property
    def support_now(self) -> QuarterHours:
        return self.support[0]


def milestone_lines(records: Iterable[MilestoneRecord], today: dt.date) -> list[MilestoneLine]:
    return [
        MilestoneLine(
            m.milestone,
            milestone_title(m.milestone),
            m.due,
            m.done_at,
            m.done_by,
            m.note,
            (today - m.due).days if m.overdue(today) else 0,
            waiting_dag(m.milestone),
        )
        for m in records
    ]


def quarters_of_support(actions: Iterable[ActionRecord], today: dt.date) -> list[QuarterHours]:
    """This quarter and the three before it, newest first."""
    totals = hours_by_quarter(support_hours(a for a in actions if a.kind == SUPPORT_HOURS))
    quarter, out = Quarter.of(today), []
    for _ in range(4):
        out.append(QuarterHours(quarter, totals.get(quarter, Decimal(0))))
        quarter = quarter.previous()
    return out


def _names(value: Any) -> str:
    return ", ".join(str(v) for v in value) if isinstance(value, list | tuple) else str(value)


def describe(action: ActionRecord) -> LogEntry:
    """One line a person reads: emails by subject, changes and issues with their links."""
    d, kind = action.detail, action.kind

    def entry(summary: str, link: Any = None) -> LogEntry:
        return LogEntry(action.created_at, kind, action.key, summary, safe_link(link))

    if kind == "email":
        return entry(
            f"Email “{d.get('subject', d.get('template', ''))}” to {_names(d.get('to', []))}"
        )
    if kind == "pull_request":
        where = d.get("url_or_path", "")
        return entry(f"Infrastructure change: {d.get('title', d.get('branch', ''))}", where)
    if kind == "follow_up_issue":
        return entry(
            f"Follow-up issue: {d.get('title', '')} ({d.get('state', 'recorded')})", d.get("url")
        )
    if kind == "decision":
        return entry(f"Technical decisions recorded by {d.get('responded_by') or 'a person'}")
    if kind == "meeting":
        notes = d.get("notes") or "no notes"
        return entry(f"Rollout meeting outcome by {d.get('responded_by') or 'a person'}: {notes}")
    if kind == "document":
        files = [Path(str(v)).name for k, v in d.items() if k in ("pptx", "markdown", "html")]
        return entry(f"Document {action.key}: {', '.join(files)}")
    if kind == "cost_month":
        return entry(f"Cost of {d.get('month')}: {_cost(d)} ({d.get('source', '')})")
    if kind == SUPPORT_HOURS:
        return entry(
            f"Support: {d.get('hours')} h on {d.get('on')} by {d.get('by')}: {d.get('note')}"
        )
    if kind == "renewal":
        return entry(f"Renewal: {action.key}")
    return entry(f"{kind.replace('_', ' ').capitalize()}: {action.key}", d.get("url"))


def _cost(detail: Mapping[str, Any]) -> str:
    try:
        return format_money(Decimal(str(detail["amount"])), str(detail["currency"]))
    except (KeyError, ArithmeticError):
        return "?"


def list_documents(folder: Path, actions: Iterable[ActionRecord]) -> list[Document]:
    """The files in the community's artifacts folder, labelled by the action that made them."""
    labels: dict[str, str] = {}
    for action in actions:
        if action.kind == "document":
            for value in action.detail.values():
                labels[Path(str(value)).name] = action.key
    if not folder.is_dir():
        return []
    paths = (document_path(folder, entry.name) for entry in sorted(folder.iterdir()))
    return [
        Document(path.name, path.stat().st_size, labels.get(path.name, ""))
        for path in paths
        if path is not None
    ]


def document_path(folder: Path, name: str) -> Path | None:
    """The document's path when ``name`` is one of the files :func:`list_documents` lists."""
    if not DOCUMENT_NAME.match(name):
        return None
    path = folder / name
    return path if path.is_file() and path.resolve().parent == folder.resolve() else None


def build_dossier(
    engagement: Engagement,
    *,
    contacts: Sequence[Contact],
    milestones: Sequence[MilestoneRecord],
    actions: Sequence[ActionRecord],
    runs: Sequence[RunInProgress],
    documents_folder: Path,
    today: dt.date,
    threshold_pct: Decimal,
) -> Dossier:
    costs = cost_history(actions)
    estimate = (engagement.config.get("contract") or {}).get("cloud_cost_estimate_usd_month")
    shown = sorted(costs)[-COST_MONTHS_SHOWN:]
    return Dossier(
        row=build_row(
            engagement, milestones, costs, runs, today=today, threshold_pct=threshold_pct
        ),
        contacts=tuple(contacts),
        milestones=tuple(milestone_lines(milestones, today)),
        costs=tuple(costs[m] for m in shown),
        threshold_pct=threshold_pct,
        estimate_month=Decimal(str(estimate)) if estimate is not None else None,
        support=tuple(quarters_of_support(actions, today)),
        log=tuple(describe(a) for a in sorted(actions, key=lambda a: a.created_at, reverse=True)),
        documents=tuple(list_documents(documents_folder, actions)),
    )
