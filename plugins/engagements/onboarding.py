"""Onboarding steps as plain functions over a store: no Airflow needed to run or test them."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

from engagements.config import CommunityConfig, Tier, parse_config
from engagements.messages.emails import EmailKind, RenderedEmail, render_email
from engagements.milestones import onboarding_plan, training_plan
from engagements.settings import Settings
from engagements.store.base import (
    ActionRecord,
    Contact,
    Engagement,
    EngagementStatus,
    EngagementStore,
    NotFound,
    utc_now,
)

log = logging.getLogger(__name__)

ACTIVE_RUN_STATES = frozenset({"queued", "running"})
FINISHED_STATUSES = frozenset(
    {
        EngagementStatus.ACTIVE,
        EngagementStatus.RENEWAL,
        EngagementStatus.DECOMMISSIONING,
        EngagementStatus.DECOMMISSIONED,
    }
)


class OnboardingRefused(RuntimeError):
    """This run must not onboard the community; the message says why and what to do."""


def effective_config(engagement: Engagement) -> CommunityConfig:
    """The stored config with the recorded technical decisions applied."""
    config = parse_config(engagement.config)
    return config.with_decisions(engagement.decisions) if engagement.decisions else config


def load_engagement(store: EngagementStore, community_id: str) -> Engagement:
    engagement = store.get_engagement(community_id)
    if engagement is None:
        raise NotFound(
            f"no engagement for community {community_id!r} in the store; "
            "trigger engagement_onboarding with its config first"
        )
    return engagement


def register(
    store: EngagementStore,
    config: CommunityConfig,
    *,
    run_id: str,
    run_state: Callable[[str], str | None],
) -> Engagement:
    """Claim the engagement for this onboarding run and record its config, contacts, plan.

    ``run_state(run_id)`` answers the state of another onboarding run (None if unknown), so
    that a second run for a community whose onboarding is still going stops here.
    """
    existing = store.get_engagement(config.community_id)
    if existing is not None and existing.onboarding_run_id not in (None, run_id):
        other = existing.onboarding_run_id
        state = run_state(other)
        if state in ACTIVE_RUN_STATES:
            raise OnboardingRefused(
                f"community {config.community_id!r} is already being onboarded by run {other!r} "
                f"(state {state}); follow that run, or mark it failed before starting another"
            )
        if existing.status in FINISHED_STATUSES:
            raise OnboardingRefused(
                f"community {config.community_id!r} was onboarded by run {other!r} and is "
                f"{existing.status.value}; nothing to do"
            )
    engagement = store.upsert_engagement(
        config.community_id, config.name, config.to_dict(), onboarding_run_id=run_id
    )
    contacts = [
        Contact(
            config.community_id,
            r.email,
            r.name,
            "technical lead" if r.technical_lead else "representative",
            r.github,
        )
        for r in config.representatives
    ]
    if config.invoice_contact is not None:
        contacts.append(
            Contact(
                config.community_id,
                config.invoice_contact.email,
                config.invoice_contact.name,
                "invoicing",
            )
        )
    store.replace_contacts(config.community_id, contacts)
    for milestone, due in onboarding_plan(config):
        store.plan_milestone(config.community_id, milestone.key, due)
    return engagement


def signoff_problems(config: CommunityConfig, engagement: Engagement) -> list[str]:
    """Every unmet BD sign-off item and missing written answer, in runbook order."""
    problems = []
    unsigned = [
        party
        for party, signed in (
            ("the community", engagement.agreement_signed_community),
            ("2i2c", engagement.agreement_signed_2i2c),
            ("CS&S", engagement.agreement_signed_css),
        )
        if not signed
    ]
    if unsigned:
        problems.append(f"1. The agreement is not signed by {', '.join(unsigned)}.")
    if not engagement.agreement_url:
        problems.append("2. The signed agreement is not uploaded to the engagement record.")
    contract = config.contract
    if contract.hubspot_deal_id is None:
        problems.append(
            "3. The record has no HubSpot deal id (contract.hubspot_deal_id); "
            "the cluster configuration needs it."
        )
    if contract.cloud_cost_estimate_usd_month is not None:
        months = max(1, round((contract.end - contract.start).days / 30.44))
        if contract.cloud_cost_estimate_usd_month * months > contract.revenue_usd:
            problems.append(
                f"3. Expected revenue ${contract.revenue_usd:,.0f} is less than the estimated "
                f"cloud costs (${contract.cloud_cost_estimate_usd_month:,.0f}/month for "
                f"{months} months), which it must include."
            )
    if config.invoice_contact is None:
        problems.append("4. CS&S has no invoicing contact (invoice_contact).")
    if not config.github_org:
        problems.append("5. The technical lead's GitHub organization (github_org) is not recorded.")
    for key in config.missing_answers:
        problems.append(f"Written answer missing: answers.{key}.")
    return problems


def premium_reason(config: CommunityConfig) -> str | None:
    """Why this engagement is not Advanced Tier, or None when it is."""
    if config.tier is not Tier.ADVANCED:
        return f"the contract is for the {config.tier.value} tier, not advanced"
    if not config.cloud.access_managed_by_2i2c:
        return (
            "2i2c cannot manage its own access to the cloud account "
            "(cloud.access_managed_by_2i2c is false)"
        )
    return None


EMAIL_SENDING = "sending"
"""An email's action state from just before it is handed to the mail server."""
EMAIL_SENT = "sent"
"""An email's action state once the mail server has taken it."""


def email_sent(action: ActionRecord | None) -> bool:
    """Whether the email action shows the message taken by the mail server.

    Records written before emails carried a state were written after sending: they count.
    """
    return action is not None and action.detail.get("state", EMAIL_SENT) == EMAIL_SENT


def send_once(
    store: EngagementStore,
    config: CommunityConfig,
    settings: Settings,
    kind: EmailKind,
    deliver: Callable[[EmailMessage], None],
    *,
    key: str | None = None,
    extra: dict[str, Any] | None = None,
) -> RenderedEmail | None:
    """Render and send an email unless the action log shows it was already sent.

    The intent is recorded first (with the Message-ID, state ``sending``), then the message
    is handed to the mail server, then the action is marked ``sent``. A store that cannot
    record the intent sends nothing; a try that stopped between handing it over and marking
    it finds the intent on the re-run and sends again, only then, with the same Message-ID
    (derived from the key). Returns the sent email, or None when it had been sent before.
    """
    action_key = email_key(kind, key)
    if kind is EmailKind.MILESTONE_OVERDUE:  # how to record it depends on the store in use
        extra = {"store": getattr(store, "backend", None), **(extra or {})}
    existing = store.get_action(config.community_id, action_key)
    if email_sent(existing):
        log.info(
            "Email %s for %s was already sent; not sending again", action_key, config.community_id
        )
        return None
    email = render_email(kind, config, settings, extra=extra, key=key)
    detail = _email_detail(kind, email) | {"state": EMAIL_SENDING}
    if existing is None:
        store.record_action(config.community_id, action_key, "email", detail)
    else:
        log.warning(
            "Email %s for %s was recorded as being sent (Message-ID %s) but not as sent: "
            "sending it again",
            action_key,
            config.community_id,
            existing.detail.get("message_id"),
        )
        store.update_action(config.community_id, action_key, detail)
    _hand_over(kind, email, deliver)
    store.update_action(config.community_id, action_key, _as_sent(detail))
    return email


def email_key(kind: EmailKind, key: str | None = None) -> str:
    """The action key under which an email is recorded as sent."""
    return f"email:{key or kind.value}"


def deliver_email(
    config: CommunityConfig,
    settings: Settings,
    kind: EmailKind,
    deliver: Callable[[EmailMessage], None],
    *,
    key: str | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[RenderedEmail, ActionRecord]:
    """Render and send an email; return it with the action that records it as sent, for the
    caller to write with its other actions in one request after checking the log first.

    Fan-outs use it to keep to their request budget: no intent is written before sending, so
    a try that stops between sending and writing sends again on the re-run, with the same
    Message-ID (derived from the key), which mail clients show once.
    """
    email = render_email(kind, config, settings, extra=extra, key=key)
    _hand_over(kind, email, deliver)
    detail = _as_sent(_email_detail(kind, email))
    action = ActionRecord(config.community_id, email_key(kind, key), "email", utc_now(), detail)
    return email, action


def _email_detail(kind: EmailKind, email: RenderedEmail) -> dict[str, Any]:
    return {
        "template": kind.value,
        "message_id": email.message_id,
        "subject": email.subject,
        "to": list(email.to),
        "cc": list(email.cc),
    }


def _as_sent(detail: dict[str, Any]) -> dict[str, Any]:
    return detail | {"state": EMAIL_SENT, "sent_at": dt.datetime.now(dt.UTC).isoformat()}


def _hand_over(
    kind: EmailKind, email: RenderedEmail, deliver: Callable[[EmailMessage], None]
) -> None:
    deliver(email.to_mime())
    log.info(
        "Sent %s to %s (Message-ID %s)",
        kind.value,
        ", ".join(email.all_recipients),
        email.message_id,
    )


def email_extra(
    store: EngagementStore, config: CommunityConfig, kind: EmailKind, today: dt.date
) -> dict[str, Any]:
    """What an onboarding email needs to say only what happened, read from the store now.

    The welcome email announces the next iteration after ``today``; the rollout invitation
    promises a demo only of what is deployed; the onboarding email is sent only once the hubs
    are recorded deployed, naming what else is set up and what is not, the meeting's requests,
    and each profile's memory.
    """
    from engagements.deployment import deployment_status
    from engagements.infra.layout import Layout
    from engagements.infra.values import profile_summaries

    if kind is EmailKind.WELCOME:
        return {"today": today}
    if kind not in (EmailKind.ROLLOUT_INVITATION, EmailKind.ONBOARDING):
        return {}
    status = deployment_status(store, config.community_id, config.hub_urls)
    if kind is EmailKind.ROLLOUT_INVITATION:
        return {"deployment": status}
    if not status.hubs_deployed:
        raise OnboardingRefused(
            f"the onboarding email says {config.community_id}'s hubs are ready, but the store "
            "does not show them deployed ("
            + "; ".join(f"{h.name}: {h.evidence}" for h in status.hubs if not h.done)
            + "): record infrastructure_deployed once they run, then clear this task. Nothing "
            "was sent."
        )
    return {"deployment": status, "profiles": profile_summaries(Layout(config))}


def problems_key(problems: list[str]) -> str:
    """One sign-off email per distinct list of problems."""
    return "signoff-problems:" + hashlib.sha1("\n".join(problems).encode()).hexdigest()[:12]


def plan_training(
    store: EngagementStore, config: CommunityConfig
) -> list[tuple[str, dt.date | None]]:
    """Record the eight training sessions as milestones with their proposed dates."""
    planned = []
    for milestone, due in training_plan(config):
        existing = store.get_milestone(config.community_id, milestone.key)
        if existing is None:
            existing = store.plan_milestone(config.community_id, milestone.key, due)
        planned.append((milestone.key, existing.due))
    return planned


def record_follow_ups(
    store: EngagementStore, community_id: str, requirements: list[str]
) -> list[str]:
    """One follow-up issue record per additional configuration requirement (no duplicates)."""
    keys = []
    for requirement in requirements:
        title = " ".join(requirement.split())
        if not title:
            continue
        key = "follow-up:" + hashlib.sha1(title.lower().encode()).hexdigest()[:12]
        store.record_action(
            community_id,
            key,
            "follow_up_issue",
            {
                "title": f"[{community_id}] {title}",
                "body": f"Configuration requested at the rollout meeting: {title}",
                "state": "recorded",
            },
        )
        keys.append(key)
    return keys


def set_status(store: EngagementStore, community_id: str, status: EngagementStatus) -> Engagement:
    return store.update_engagement(community_id, status=status)
