"""The engagement store contract shared by every backend.

Four tables, the same in Airtable and in the embedded SQLite store:

- Engagements: one record per community (config, status, sign-off facts, decisions).
- Contacts: the representatives and the invoicing contact of each community.
- Milestones: human steps with due dates, and who recorded them done and when.
- Actions: the log of every external action (emails, documents, follow-up issues) keyed so
  that a re-run finds what was already done instead of doing it twice.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable


class EngagementStatus(StrEnum):
    CLOSED_WON = "Closed-Won"
    ONBOARDING = "Onboarding"
    ACTIVE = "Active"
    PREMIUM_REFERRAL = "Premium referral"
    RENEWAL = "Renewal"
    DECOMMISSIONING = "Decommissioning"
    DECOMMISSIONED = "Decommissioned"


class StoreError(RuntimeError):
    """The store could not do what was asked; the message says which service and what."""


class StoreUnavailable(StoreError):
    """The backing service kept failing (rate limit, 5xx, timeout) after retries."""


class NotFound(StoreError):
    """No engagement for this community id."""


@dataclass(frozen=True)
class Engagement:
    community_id: str
    name: str
    status: EngagementStatus
    config: dict[str, Any]
    agreement_signed_community: bool = False
    agreement_signed_2i2c: bool = False
    agreement_signed_css: bool = False
    agreement_url: str | None = None
    decisions: dict[str, Any] = field(default_factory=dict)
    onboarding_run_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (XCom, a run's conf): what a scan hands each mapped task."""
        return {**asdict(self), "status": self.status.value}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Engagement:
        return cls(**{**data, "status": EngagementStatus(data["status"])})


@dataclass(frozen=True)
class Contact:
    community_id: str
    email: str
    name: str
    role: str  # "representative", "technical lead" or "invoicing"
    github: str | None = None


@dataclass(frozen=True)
class MilestoneRecord:
    community_id: str
    milestone: str
    due: dt.date | None
    done_at: dt.datetime | None = None
    done_by: str | None = None
    note: str | None = None

    @property
    def done(self) -> bool:
        return self.done_at is not None

    def overdue(self, today: dt.date) -> bool:
        return not self.done and self.due is not None and today > self.due

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "due": self.due.isoformat() if self.due else None,
            "done_at": self.done_at.isoformat() if self.done_at else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MilestoneRecord:
        due, done_at = data.get("due"), data.get("done_at")
        return cls(
            **{
                **data,
                "due": dt.date.fromisoformat(due) if due else None,
                "done_at": dt.datetime.fromisoformat(done_at) if done_at else None,
            }
        )


@dataclass(frozen=True)
class ActionRecord:
    community_id: str
    key: str
    kind: str
    created_at: dt.datetime
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "created_at": self.created_at.isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ActionRecord:
        return cls(**{**data, "created_at": dt.datetime.fromisoformat(data["created_at"])})


@dataclass(frozen=True)
class CommunityRecords:
    """What a scan read about one community in its one pass per table, handed to the mapped
    task of that community as plain JSON so that it need not read the store again."""

    engagement: Engagement
    actions: tuple[ActionRecord, ...] = ()
    milestones: tuple[MilestoneRecord, ...] = ()

    def action(self, key: str) -> ActionRecord | None:
        return next((a for a in self.actions if a.key == key), None)

    def milestone(self, name: str) -> MilestoneRecord | None:
        return next((m for m in self.milestones if m.milestone == name), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "engagement": self.engagement.to_json(),
            "actions": [a.to_json() for a in self.actions],
            "milestones": [m.to_json() for m in self.milestones],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CommunityRecords:
        return cls(
            Engagement.from_json(data["engagement"]),
            tuple(ActionRecord.from_json(a) for a in data["actions"]),
            tuple(MilestoneRecord.from_json(m) for m in data["milestones"]),
        )


def by_community(
    engagements: Iterable[Engagement],
    actions: Iterable[ActionRecord] = (),
    milestones: Iterable[MilestoneRecord] = (),
) -> dict[str, CommunityRecords]:
    """Listings of every community split into each engagement's records."""
    own_actions: dict[str, list[ActionRecord]] = {}
    own_milestones: dict[str, list[MilestoneRecord]] = {}
    for action in actions:
        own_actions.setdefault(action.community_id, []).append(action)
    for milestone in milestones:
        own_milestones.setdefault(milestone.community_id, []).append(milestone)
    return {
        e.community_id: CommunityRecords(
            e,
            tuple(own_actions.get(e.community_id, ())),
            tuple(own_milestones.get(e.community_id, ())),
        )
        for e in engagements
    }


@runtime_checkable
class EngagementStore(Protocol):
    """What the pipelines, the CLI and the tests need from a store; every write is idempotent."""

    def upsert_engagement(
        self, community_id: str, name: str, config: dict[str, Any], **fields: Any
    ) -> Engagement:
        """Create the engagement or update its name/config and the given fields.

        ``fields`` may be any other :class:`Engagement` attribute (status, agreement flags,
        agreement_url, decisions, onboarding_run_id); a new record starts as Closed-Won.
        """

    def get_engagement(self, community_id: str) -> Engagement | None: ...

    def list_engagements(self, status: EngagementStatus | None = None) -> list[Engagement]:
        """All engagements (optionally of one status), read in one paginated pass."""

    def update_engagement(self, community_id: str, **fields: Any) -> Engagement:
        """Change some fields; raise :class:`NotFound` for an unknown community."""

    def replace_contacts(self, community_id: str, contacts: Iterable[Contact]) -> list[Contact]:
        """Make the community's contacts exactly these (matched by email)."""

    def list_contacts(self, community_id: str | None = None) -> list[Contact]:
        """One community's contacts, or (``None``) every community's in one paginated pass."""

    def plan_milestone(
        self, community_id: str, milestone: str, due: dt.date | None
    ) -> MilestoneRecord:
        """Ensure the milestone exists; set its due date; never undo a recorded completion."""

    def record_milestone(
        self,
        community_id: str,
        milestone: str,
        *,
        by: str,
        note: str | None = None,
        at: dt.datetime | None = None,
    ) -> MilestoneRecord:
        """Mark the milestone done; if it already is, return it unchanged."""

    def get_milestone(self, community_id: str, milestone: str) -> MilestoneRecord | None: ...

    def list_milestones(self, community_id: str | None = None) -> list[MilestoneRecord]:
        """One community's milestones, or (``None``) every community's in one paginated pass;
        ordered by community, then due date (undated last), then name."""

    def record_action(
        self, community_id: str, key: str, kind: str, detail: dict[str, Any] | None = None
    ) -> ActionRecord:
        """Log an action under a unique key; if the key exists, return the existing record."""

    def update_action(self, community_id: str, key: str, detail: dict[str, Any]) -> ActionRecord:
        """Replace an action's detail (e.g. a regenerated document's new path)."""

    def get_action(self, community_id: str, key: str) -> ActionRecord | None: ...

    def list_actions(
        self, community_id: str | None = None, kind: str | None = None
    ) -> list[ActionRecord]:
        """One community's actions, or (``None``) every community's in one paginated pass;
        ordered by community, then time recorded."""

    def list_milestones_recorded_since(self, since: dt.datetime) -> list[MilestoneRecord]:
        """Every community's milestones recorded done after ``since``, in one paginated pass.

        "Recorded" is when the recording was written (Airtable: when ``Done at`` was last
        modified; SQLite: the write's own time), not the ``Done at`` it states: a person who
        enters yesterday's date today is found today.
        """

    def plan_milestones(
        self, plans: Iterable[tuple[str, str, dt.date | None]]
    ) -> list[MilestoneRecord]:
        """:meth:`plan_milestone` for many ``(community_id, milestone, due)`` at once, in as
        few requests as the backend allows (Airtable: one per 10)."""

    def save_actions(self, actions: Iterable[ActionRecord]) -> list[ActionRecord]:
        """Store each action exactly as given (kind, created_at, detail), replacing one with
        the same community and key, in as few requests as the backend allows (Airtable: one
        per 10). To keep an action's first ``created_at``, pass it."""

    @property
    def reference(self) -> dict[str, str]:
        """Where the records live (backend and location, never a secret): lets another process
        (the triggerer) open the same store."""


ENGAGEMENT_FIELDS = frozenset(
    {
        "status",
        "agreement_signed_community",
        "agreement_signed_2i2c",
        "agreement_signed_css",
        "agreement_url",
        "decisions",
        "onboarding_run_id",
        "name",
        "config",
    }
)


def check_fields(fields: dict[str, Any]) -> None:
    unknown = set(fields) - ENGAGEMENT_FIELDS
    if unknown:
        raise ValueError(f"unknown engagement field(s): {', '.join(sorted(unknown))}")


AGREEMENT_URL = re.compile(r"(?:https?|file)://[^\s\x00-\x1f\x7f]+")
"""Where a signed agreement can be: a web address or (embedded default) a local file."""
_FLAGS = frozenset({"agreement_signed_community", "agreement_signed_2i2c", "agreement_signed_css"})
_MAPPINGS = frozenset({"config", "decisions"})
_OPTIONAL_TEXT = frozenset({"agreement_url", "onboarding_run_id"})


def normalize_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Check engagement field names and value types, so every backend stores the same values.

    Raises ``ValueError`` before anything is written; ``status`` may be given as its text.
    """
    check_fields(fields)
    normalized = dict(fields)
    for name, value in fields.items():
        if name == "status":
            normalized[name] = EngagementStatus(value)
        elif name in _FLAGS and not isinstance(value, bool):
            raise ValueError(f"{name} must be true or false, not {value!r}")
        elif name in _MAPPINGS and not isinstance(value, dict):
            raise ValueError(f"{name} must be a mapping, not {type(value).__name__}")
        elif name in _OPTIONAL_TEXT and value is not None and not isinstance(value, str):
            raise ValueError(f"{name} must be text or None, not {type(value).__name__}")
        elif name == "agreement_url" and value is not None and not AGREEMENT_URL.fullmatch(value):
            raise ValueError(
                f"agreement_url must be an http(s):// or file:// address, not {value!r}"
            )
        elif name == "name" and not (isinstance(value, str) and value):
            raise ValueError("name must be non-empty text")
    return normalized


def as_utc(value: dt.datetime) -> dt.datetime:
    """The same instant as an aware UTC datetime at millisecond precision.

    Milliseconds are what Airtable keeps, so both backends return equal values; a naive
    value is taken to be UTC (Airflow's default timezone).
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    value = value.astimezone(dt.UTC)
    return value.replace(microsecond=value.microsecond - value.microsecond % 1000)


def utc_now() -> dt.datetime:
    return as_utc(dt.datetime.now(dt.UTC))


def whose(community_id: str | None) -> str:
    """Whose records a listing reads, for its error messages."""
    return "every community" if community_id is None else repr(community_id)


def index_contacts(community_id: str, contacts: Iterable[Contact]) -> dict[str, Contact]:
    """The contacts keyed by email, for ``replace_contacts``.

    A contact of another community or an email given twice is a caller's bug: ``ValueError``.
    """
    by_email: dict[str, Contact] = {}
    for contact in contacts:
        if contact.community_id != community_id:
            raise ValueError(f"contact {contact.email} belongs to {contact.community_id!r}")
        if contact.email in by_email:
            raise ValueError(f"contact {contact.email} is given twice")
        by_email[contact.email] = contact
    return by_email


def upsert_action(
    store: EngagementStore, community_id: str, key: str, kind: str, detail: dict[str, Any]
) -> bool:
    """Record the action, or replace the detail a previous try recorded (a re-run keeps one
    record per key); True when it replaced one."""
    if store.get_action(community_id, key) is None:
        store.record_action(community_id, key, kind, detail)
        return False
    store.update_action(community_id, key, detail)
    return True
