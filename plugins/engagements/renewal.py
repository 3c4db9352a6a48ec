"""The renewal conversation as plain functions over a store: no Airflow needed to run them.

The runbook: about 60 days before a contract ends, BD starts the renewal conversation. A
renewed engagement gets its new contract dates and stays Active; one that BD decides not to
renew is handed over to decommissioning. No decision is ever taken for BD: a form left
unanswered past its deadline reminds BD and keeps waiting.

Every step is keyed by the contract end it is about (``renewal-opened:<end>``,
``renewal-decision:<end>:<choice>``), so that next year's renewal of the same community is a
new conversation while a re-run of this year's finds what was already done.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from engagements.config import CommunityConfig, parse_config
from engagements.milestones import RENEWAL_DECIDED
from engagements.onboarding import effective_config, load_engagement
from engagements.store.base import (
    ActionRecord,
    Engagement,
    EngagementStatus,
    EngagementStore,
    utc_now,
)

log = logging.getLogger(__name__)

RENEWAL_WINDOW_DAYS = 60
"""The runbook's "about 60 days before the end date"."""
MIN_DECISION_DAYS = 7
"""A renewal opened late (the end is near or past) still gives BD a week to answer."""
RENEWAL_SCAN_DAG_ID = "engagement_renewal_scan"
"""The daily scan: starts one run of :data:`RENEWAL_DAG_ID` per community due."""
RENEWAL_DAG_ID = "engagement_renewal"
"""One community's renewal decision."""
DECOMMISSION_DAG_ID = "engagement_decommission"

OPENABLE = frozenset(
    {EngagementStatus.ACTIVE, EngagementStatus.RENEWAL, EngagementStatus.DECOMMISSIONING}
)
"""Decommissioning is openable so that a late renewal can still be recorded and stop it."""


class Decision(StrEnum):
    RENEWED = "Renewed"
    NOT_RENEWED = "Not renewed"


class RenewalRefused(RuntimeError):
    """The renewal step must not act on this engagement; the message says why."""


RENEWAL = "renewal"
"""Kind of the renewal's actions (opened, decided)."""


@dataclass(frozen=True)
class DueRenewal:
    community_id: str
    contract_end: dt.date
    engagement: Engagement | None = field(default=None, compare=False, repr=False)
    """The engagement as the scan read it, for the decision run to start from."""


@dataclass(frozen=True)
class RenewalStart:
    """What opening a renewal needs to know: the engagement, the keys of the actions already
    recorded for it, and whether its decision milestone is planned."""

    engagement: Engagement
    recorded: frozenset[str] = frozenset()
    planned: bool = False


def read_renewal_start(store: EngagementStore, community_id: str) -> RenewalStart:
    """Two reads: the engagement, and its actions."""
    engagement = load_engagement(store, community_id)
    return RenewalStart(engagement, frozenset(a.key for a in store.list_actions(community_id)))


def contract_end(engagement: Engagement) -> dt.date:
    return effective_config(engagement).contract.end


def opened_key(end: dt.date) -> str:
    return f"renewal-opened:{end.isoformat()}"


def decision_key(end: dt.date, decision: Decision) -> str:
    slug = "renewed" if decision is Decision.RENEWED else "not-renewed"
    return f"renewal-decision:{end.isoformat()}:{slug}"


def decision_milestone(end: dt.date) -> str:
    """The milestone of this contract end's decision (``renewal_decided_<YYYY>_<MM>_<DD>``)."""
    return RENEWAL_DECIDED.key(end.isoformat())


def decision_run_id(community_id: str, end: dt.date) -> str:
    """One decision run per community and contract end: a second trigger finds the first."""
    return f"renewal__{community_id}__{end.isoformat()}"


def decommission_run_id(community_id: str, end: dt.date) -> str:
    return f"decommission__{community_id}__{end.isoformat()}"


def renewal_email_key(end: dt.date) -> str:
    """The key of the email to BD (recorded as ``email:<this>``)."""
    return f"renewal-opened:{end.isoformat()}"


def decided(recorded: Collection[str], end: dt.date) -> Decision | None:
    """The decision recorded for this contract end among these action keys (a late renewal
    wins)."""
    for decision in (Decision.RENEWED, Decision.NOT_RENEWED):
        if decision_key(end, decision) in recorded:
            return decision
    return None


def due_for_renewal(store: EngagementStore, today: dt.date) -> list[DueRenewal]:
    """Active engagements ending within the window whose renewal is neither opened nor
    decided: one pass over the engagements, and one over the renewal actions if any is near.

    An end date already past is included: a missed renewal must reach BD, not vanish.
    """
    horizon = today + dt.timedelta(days=RENEWAL_WINDOW_DAYS)
    near = [
        (engagement, end)
        for engagement in store.list_engagements(EngagementStatus.ACTIVE)
        if (end := contract_end(engagement)) <= horizon
    ]
    if not near:
        return []
    recorded: dict[str, set[str]] = {}
    for action in store.list_actions(kind=RENEWAL):
        recorded.setdefault(action.community_id, set()).add(action.key)
    return [
        DueRenewal(engagement.community_id, end, engagement)
        for engagement, end in near
        if opened_key(end) not in (keys := recorded.get(engagement.community_id, set()))
        and decided(keys, end) is None
    ]


def plan_decisions(store: EngagementStore, due: Iterable[DueRenewal]) -> None:
    """Plan each due renewal's decision milestone (due on the contract end), 10 a request."""
    store.plan_milestones((d.community_id, decision_milestone(d.contract_end), d.contract_end)
                          for d in due)  # fmt: skip


def decision_deadline(end: dt.date, now: dt.datetime) -> dt.datetime:
    """The end of the contract's last day (UTC), but never less than a week from now."""
    end_of_contract = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    return max(end_of_contract, now + dt.timedelta(days=MIN_DECISION_DAYS))


def open_renewal(
    store: EngagementStore,
    start: RenewalStart | str,
    today: dt.date,
    *,
    send: Callable[[CommunityConfig, dt.date], ActionRecord] | None = None,
) -> tuple[CommunityConfig, dt.date]:
    """Record the renewal as opened for the current contract end and plan its decision.

    ``start`` is what was read of the community (or its id: read it now). ``send`` emails BD
    and returns the action recording it, which is written with the "opened" record in one
    request, after the email went out. Idempotent. The status becomes Renewal only from
    Active: a late renewal of an engagement already being decommissioned keeps Decommissioning
    until someone decides.
    """
    if isinstance(start, str):
        start = read_renewal_start(store, start)
    engagement = start.engagement
    community_id = engagement.community_id
    if engagement.status not in OPENABLE:
        raise RenewalRefused(
            f"{community_id} is {engagement.status.value}; a renewal can be opened only for "
            f"{', '.join(sorted(s.value for s in OPENABLE))} engagements"
        )
    config = effective_config(engagement)
    end = config.contract.end
    if not start.planned:
        store.plan_milestones([(community_id, decision_milestone(end), end)])
    writes = []
    if opened_key(end) not in start.recorded:
        detail = {"opened_on": today.isoformat(), "contract_end": end.isoformat()}
        writes.append(ActionRecord(community_id, opened_key(end), RENEWAL, utc_now(), detail))
    if send is not None and f"email:{renewal_email_key(end)}" not in start.recorded:
        writes.append(send(config, end))
    if writes:
        store.save_actions(writes)
    if engagement.status is EngagementStatus.ACTIVE:
        store.update_engagement(community_id, status=EngagementStatus.RENEWAL)
    return config, end


def apply_renewal(
    store: EngagementStore,
    community_id: str,
    *,
    decided_end: dt.date,
    new_end: dt.date,
    new_start: dt.date | None,
    decided_by: str,
    note: str = "",
) -> Engagement:
    """Give the engagement its new contract dates and make it Active again.

    ``decided_end`` is the contract end the decision was about. A re-run that finds the new
    end already stored only completes the records; a record whose end changed to anything
    else meanwhile is refused rather than overwritten.
    """
    if new_end <= decided_end:
        raise RenewalRefused(
            f"the new contract end {new_end} must be after the current end {decided_end}"
        )
    engagement = load_engagement(store, community_id)
    config = parse_config(engagement.config)
    current = config.contract.end
    if current != new_end:
        if current != decided_end:
            raise RenewalRefused(
                f"the contract end of {community_id} is {current}, not {decided_end} as when the "
                "decision was taken; check the engagement record and decide again"
            )
        data = config.to_dict()
        data["contract"]["start"] = (new_start or decided_end + dt.timedelta(days=1)).isoformat()
        data["contract"]["end"] = new_end.isoformat()
        config = parse_config(data)  # ConfigError names the key if the dates do not fit
    renewed = store.upsert_engagement(
        community_id, config.name, config.to_dict(), status=EngagementStatus.ACTIVE
    )
    detail = {
        "decision": Decision.RENEWED.value,
        "previous_end": decided_end.isoformat(),
        "new_start": config.contract.start.isoformat(),
        "new_end": new_end.isoformat(),
        "decided_by": decided_by,
        "note": note,
    }
    key = decision_key(decided_end, Decision.RENEWED)
    store.record_action(community_id, key, RENEWAL, detail)
    store.record_milestone(
        community_id,
        decision_milestone(decided_end),
        by=decided_by,
        note=f"Renewed until {new_end}. {note}".strip(),
    )
    log.info("%s renewed until %s by %s", community_id, new_end, decided_by)
    return renewed


def hand_over(
    store: EngagementStore,
    community_id: str,
    *,
    decided_end: dt.date,
    decided_by: str,
    reason: str,
) -> dict[str, str]:
    """Mark the engagement Decommissioning; return the decommission run's conf.

    Refused when the contract end moved since the decision: that is a renewal recorded
    meanwhile, and decommissioning a renewed community is the worst outcome of all.
    """
    engagement = load_engagement(store, community_id)
    current = contract_end(engagement)
    if current != decided_end:
        raise RenewalRefused(
            f"the contract end of {community_id} is now {current}, not {decided_end}: it was "
            "renewed meanwhile; nothing is handed over to decommissioning"
        )
    store.update_engagement(community_id, status=EngagementStatus.DECOMMISSIONING)
    detail = {"decision": Decision.NOT_RENEWED.value, "reason": reason, "decided_by": decided_by}
    store.record_action(
        community_id, decision_key(decided_end, Decision.NOT_RENEWED), RENEWAL, detail
    )
    store.record_milestone(
        community_id, decision_milestone(decided_end), by=decided_by, note=reason
    )
    log.warning("%s not renewed (%s); handed over to decommissioning", community_id, reason)
    return {"community_id": community_id, "end_date": decided_end.isoformat()}
