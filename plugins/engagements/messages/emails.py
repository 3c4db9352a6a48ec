"""Every email of the runbook, rendered from templates into a ready-to-send message.

Pure functions: no Airflow, no network. The caller (an operator or the CLI) decides when to
send; this module decides what is said and to whom, so that the recipients of each kind are
the same wherever it is sent from. Texts live in ``include/templates/emails/``:
``<kind>.subject.j2``, ``<kind>.txt.j2`` and ``<kind>.html.j2``.

Recipients by kind (plain addresses, the technical lead / representatives in config order):

- ``welcome``: to the technical lead, cc every other representative (as the runbook says);
- ``rollout-invitation`` and ``onboarding``: to every representative, cc nobody; replies go to
  the sender, and support is reached through the address the onboarding email gives;
- ``signoff-problems`` and ``premium-tier``: to BD only (internal);
- ``milestone-overdue``: to support (internal), cc BD;
- ``checkin-invitation``: to every representative, cc nobody;
- ``cost-alert``: to every representative, cc support;
- ``cost-projection``: to every representative, cc support and BD (the estimate is BD's);
- ``renewal-opened``: to BD only (internal);
- ``renewal-reminder``: to BD, cc support (internal: a decision is overdue);
- ``decommission-notice`` and ``decommission-cancelled``: to every representative, cc BD;
- ``upkeep-notice``: to the representatives, cc the technical lead (to the lead when the lead
  is the only representative).

``extra`` keys by kind (anything else is refused, so that a typo fails loudly):

- ``welcome``: ``today`` (optional date it is sent; default today, UTC): the iteration it
  announces is the next one to start after it, never one already started;
- ``rollout-invitation``: ``deployment`` (required, an
  :class:`engagements.deployment.DeploymentStatus`): a demo is promised only of what it shows
  deployed;
- ``onboarding``: ``deployment`` (required, a ``DeploymentStatus`` whose hubs are deployed: the
  email says they are), ``profiles`` (required, the community hub's profiles as
  :func:`engagements.infra.values.profile_summaries` gives them: name, images, memory);
- ``signoff-problems``: ``problems`` (required, non-empty list of str);
- ``premium-tier``: ``reason`` (optional str; default: the reasons the config itself gives,
  tier not advanced or access not manageable by 2i2c; required when it gives none);
- ``milestone-overdue``: ``milestone`` (required, title), ``due`` (required, date),
  ``days_overdue`` (required, int >= 0), ``store`` (required: ``local`` or ``airtable``, the
  store in use, which decides how to record it), ``milestone_key`` (optional, the key the CLI takes;
  default: ``milestone``), ``how`` (optional hint), ``task_id`` (optional, the sensor task
  waiting on it), ``dag_id`` (optional; default ``engagement_onboarding``);
- ``checkin-invitation``: ``report`` (required, an :class:`engagements.checkin.CheckinReport`);
- ``cost-alert``: ``comparison`` (required, an :class:`engagements.costs.Comparison` with both
  months known);
- ``cost-projection``: ``projection`` (required, an :class:`engagements.costs.Projection`) and
  ``month`` (required, the :class:`engagements.billing.Month` whose cost is the run rate);
- ``renewal-opened``: ``opened_on`` (optional date; default today, UTC), ``deadline``
  (optional date the decision is due; default the contract end), ``decision_link`` (optional
  URL of the decision form);
- ``renewal-reminder``: ``deadline`` (required date the decision was due), ``next_reminder``
  (required date of the next reminder), ``decision_link`` (optional URL of the form),
  ``today`` (optional date; default today, UTC);
- ``decommission-notice``: ``stage`` (required: ``before-end``, ``at-end`` or
  ``after-removal``), ``end_date`` and ``removal_by`` (required dates), ``backups`` (required,
  non-empty list of mappings with ``hub``, ``location`` and ``expires_on`` (a date)); the
  default key is per stage, so the three notices have three Message-IDs;
- ``decommission-cancelled``: ``end_date`` (required date), ``new_end`` (optional date);
- ``upkeep-notice``: ``actions`` (required, non-empty list: the cluster's actions of the
  upkeep plan, see :func:`engagements.upkeep.plan`), ``window_start`` and ``window_end``
  (required dates of the maintenance window).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

from engagements.billing import format_money
from engagements.config import (
    AUTH_LABELS,
    IMAGE_LABELS,
    Billing,
    CommunityConfig,
    Tier,
    next_iteration,
)
from engagements.settings import PROJECT_ROOT, Settings

TEMPLATES_DIR = PROJECT_ROOT / "include" / "templates"
MESSAGE_ID_DOMAIN = "engagements.2i2c.org"


class EmailKind(StrEnum):
    WELCOME = "welcome"
    ROLLOUT_INVITATION = "rollout-invitation"
    ONBOARDING = "onboarding"
    SIGNOFF_PROBLEMS = "signoff-problems"
    PREMIUM_TIER = "premium-tier"
    MILESTONE_OVERDUE = "milestone-overdue"
    CHECKIN_INVITATION = "checkin-invitation"
    COST_ALERT = "cost-alert"
    COST_PROJECTION = "cost-projection"
    RENEWAL_OPENED = "renewal-opened"
    RENEWAL_REMINDER = "renewal-reminder"
    DECOMMISSION_NOTICE = "decommission-notice"
    DECOMMISSION_CANCELLED = "decommission-cancelled"
    UPKEEP_NOTICE = "upkeep-notice"


class EmailError(ValueError):
    """An email cannot be rendered: the message names the kind and what is missing."""


_REQUIRED_EXTRA: dict[EmailKind, tuple[str, ...]] = {
    EmailKind.ROLLOUT_INVITATION: ("deployment",),
    EmailKind.ONBOARDING: ("deployment", "profiles"),
    EmailKind.SIGNOFF_PROBLEMS: ("problems",),
    EmailKind.MILESTONE_OVERDUE: ("milestone", "due", "days_overdue", "store"),
    EmailKind.CHECKIN_INVITATION: ("report",),
    EmailKind.COST_ALERT: ("comparison",),
    EmailKind.COST_PROJECTION: ("projection", "month"),
    EmailKind.RENEWAL_REMINDER: ("deadline", "next_reminder"),
    EmailKind.DECOMMISSION_NOTICE: ("stage", "end_date", "removal_by", "backups"),
    EmailKind.DECOMMISSION_CANCELLED: ("end_date",),
    EmailKind.UPKEEP_NOTICE: ("actions", "window_start", "window_end"),
}
_OPTIONAL_EXTRA: dict[EmailKind, tuple[str, ...]] = {
    EmailKind.WELCOME: ("today",),
    EmailKind.PREMIUM_TIER: ("reason",),
    EmailKind.MILESTONE_OVERDUE: ("milestone_key", "how", "task_id", "dag_id"),
    EmailKind.RENEWAL_OPENED: ("opened_on", "deadline", "decision_link"),
    EmailKind.RENEWAL_REMINDER: ("decision_link", "today"),
    EmailKind.DECOMMISSION_CANCELLED: ("new_end",),
}


def email_kinds() -> tuple[str, ...]:
    """The kinds the CLI's ``render-email`` accepts, in runbook order."""
    return tuple(kind.value for kind in EmailKind)


def parse_kind(name: str) -> EmailKind:
    """The kind called ``name``, or an error listing the valid ones (for the CLI)."""
    try:
        return EmailKind(name)
    except ValueError:
        raise EmailError(
            f"unknown email {name!r}; choose one of: {', '.join(email_kinds())}"
        ) from None


def long_date(value: dt.date) -> str:
    """A date nobody misreads across locales, e.g. ``Monday 23 November 2026``."""
    return f"{value:%A} {value.day} {value:%B %Y}"


@cache
def template_environment(root: Path = TEMPLATES_DIR) -> SandboxedEnvironment:
    """The one jinja2 environment of ``include/templates``.

    Sandboxed because templates are editable content; StrictUndefined so a template naming a
    missing variable fails instead of sending a blank; autoescape for ``.html.j2`` only (text,
    subject and Markdown templates are not HTML) and for anything unrecognised.
    """
    env = SandboxedEnvironment(
        loader=FileSystemLoader(root),
        undefined=StrictUndefined,
        autoescape=select_autoescape(
            enabled_extensions=("html.j2",),
            disabled_extensions=("txt.j2", "subject.j2", "md.j2"),
            default_for_string=True,
            default=True,
        ),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["longdate"] = long_date
    return env


@dataclass(frozen=True)
class RenderedEmail:
    kind: EmailKind
    subject: str
    sender: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    text: str
    html: str
    message_id: str

    @property
    def all_recipients(self) -> tuple[str, ...]:
        """Envelope recipients: To then Cc, each address once."""
        seen: dict[str, str] = {}
        for address in self.to + self.cc:
            seen.setdefault(address.lower(), address)
        return tuple(seen.values())

    def to_mime(self, *, date: dt.datetime | None = None) -> EmailMessage:
        """A multipart/alternative message (text, then HTML); ``date`` defaults to now (UTC)."""
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = ", ".join(self.to)
        if self.cc:
            message["Cc"] = ", ".join(self.cc)
        message["Subject"] = self.subject
        message["Message-ID"] = self.message_id
        message["Date"] = format_datetime(date or dt.datetime.now(dt.UTC))
        message.set_content(self.text)
        message.add_alternative(self.html, subtype="html")
        return message


@dataclass(frozen=True)
class _Hub:
    label: str
    url: str
    access: str


def message_id(kind: EmailKind, community_id: str, key: str) -> str:
    """Same kind, community and key give the same Message-ID, so a re-send is recognisable."""
    digest = hashlib.sha1(f"{kind}\0{community_id}\0{key}".encode(), usedforsecurity=False)
    return f"<{kind}.{community_id}.{digest.hexdigest()[:12]}@{MESSAGE_ID_DOMAIN}>"


def render_email(
    kind: EmailKind | str,
    config: CommunityConfig,
    settings: Settings,
    *,
    extra: Mapping[str, Any] | None = None,
    key: str | None = None,
) -> RenderedEmail:
    """Render one email of the runbook for one community.

    ``key`` distinguishes repeated sends of one kind (default: the kind itself, except for
    ``milestone-overdue`` whose default is per milestone: mail clients drop a message whose
    Message-ID they have already seen, so two overdue milestones must not share one).
    """
    kind = parse_kind(kind) if not isinstance(kind, EmailKind) else kind
    values = _checked_extra(kind, dict(extra or {}))
    context = _base_context(config, settings) | _kind_context(kind, config, values)
    env = template_environment()
    subject = " ".join(env.get_template(f"emails/{kind}.subject.j2").render(context).split())
    context["subject"] = subject
    to, cc = _recipients(kind, config, settings)
    if key is None:
        overdue = kind is EmailKind.MILESTONE_OVERDUE
        key = f"{kind}:{context['milestone_key']}" if overdue else str(kind)
        if kind is EmailKind.DECOMMISSION_NOTICE:
            key = f"{kind}:{context['stage']}"
    return RenderedEmail(
        kind=kind,
        subject=subject,
        sender=settings.sender,
        to=to,
        cc=cc,
        text=env.get_template(f"emails/{kind}.txt.j2").render(context),
        html=env.get_template(f"emails/{kind}.html.j2").render(context),
        message_id=message_id(kind, config.community_id, key),
    )


def format_email_for_terminal(rendered: RenderedEmail) -> str:
    """Headers a person checks first, then the text body, for ``engagements render-email``."""
    return (
        f"Subject: {rendered.subject}\n"
        f"From: {rendered.sender}\n"
        f"To: {', '.join(rendered.to)}\n"
        f"Cc: {', '.join(rendered.cc) or '-'}\n"
        f"Message-ID: {rendered.message_id}\n"
        f"\n{rendered.text}"
    )


def _checked_extra(kind: EmailKind, extra: dict[str, Any]) -> dict[str, Any]:
    required = _REQUIRED_EXTRA.get(kind, ())
    allowed = required + _OPTIONAL_EXTRA.get(kind, ())
    missing = [name for name in required if extra.get(name) in (None, "", [], ())]
    if missing:
        raise EmailError(f"email {kind} needs extra key(s): {', '.join(missing)}")
    unknown = sorted(set(extra) - set(allowed))
    if unknown:
        takes = ", ".join(allowed) or "none"
        raise EmailError(
            f"email {kind} does not take extra key(s) {', '.join(unknown)}; it takes: {takes}"
        )
    return extra


def _recipients(
    kind: EmailKind, config: CommunityConfig, settings: Settings
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    representatives = tuple(config.representative_emails)
    match kind:
        case EmailKind.WELCOME:
            lead = config.technical_lead.email
            return (lead,), tuple(e for e in representatives if e != lead)
        case EmailKind.ROLLOUT_INVITATION | EmailKind.ONBOARDING | EmailKind.CHECKIN_INVITATION:
            return representatives, ()
        case EmailKind.SIGNOFF_PROBLEMS | EmailKind.PREMIUM_TIER:
            return (settings.bd_email,), ()
        case EmailKind.MILESTONE_OVERDUE:
            return (settings.support_email,), (settings.bd_email,)
        case EmailKind.COST_ALERT:
            return representatives, (settings.support_email,)
        case EmailKind.COST_PROJECTION:
            return representatives, (settings.support_email, settings.bd_email)
        case EmailKind.RENEWAL_OPENED:
            return (settings.bd_email,), ()
        case EmailKind.RENEWAL_REMINDER:
            return (settings.bd_email,), (settings.support_email,)
        case EmailKind.DECOMMISSION_NOTICE | EmailKind.DECOMMISSION_CANCELLED:
            return representatives, (settings.bd_email,)
        case EmailKind.UPKEEP_NOTICE:
            lead = config.technical_lead.email
            others = tuple(e for e in representatives if e != lead)
            return (others, (lead,)) if others else ((lead,), ())


def _base_context(config: CommunityConfig, settings: Settings) -> dict[str, Any]:
    return {
        "config": config,
        "settings": settings,
        "team": parseaddr(settings.sender)[0] or "2i2c",
        "hubs": _hubs(config),
        "hub_urls": config.hub_urls,
    }


def _hubs(config: CommunityConfig) -> list[_Hub]:
    """The enabled hubs with how each is reached, in the order the runbook lists them."""
    hubs = config.hubs
    access = f"log in with {AUTH_LABELS[hubs.community.auth]}"
    listed = [_Hub("Community hub", config.hub_urls["community"], access)]
    if hubs.workshop.enabled:
        access = f"log in with {AUTH_LABELS[hubs.workshop.auth]}"
        listed.append(_Hub("Workshop hub", config.hub_urls["workshop"], access))
    if hubs.binder.enabled:
        access = "log in first" if hubs.binder.authenticated else "open to anyone, no login"
        listed.append(_Hub("BinderHub", config.hub_urls["binder"], access))
    return listed


def _kind_context(
    kind: EmailKind, config: CommunityConfig, extra: dict[str, Any]
) -> dict[str, Any]:
    match kind:
        case EmailKind.WELCOME:
            today = _date(kind, "today", extra.get("today") or dt.datetime.now(dt.UTC).date())
            start, end = next_iteration(max(config.contract.signed_on, today))
            lead = config.technical_lead
            others = [r.name for r in config.representatives if r is not lead]
            return {"lead": lead, "others": others, "iteration_start": start, "iteration_end": end}
        case EmailKind.ROLLOUT_INVITATION:
            return {"deployment": extra["deployment"]}
        case EmailKind.ONBOARDING:
            deployment = extra["deployment"]
            if not deployment.hubs_deployed:
                raise EmailError(
                    "email onboarding says the hubs are ready, but the store does not show "
                    "them deployed: "
                    + "; ".join(f"{h.name}: {h.evidence}" for h in deployment.hubs if not h.done)
                )
            return {
                "auth_label": AUTH_LABELS[config.hubs.community.auth],
                "images": [IMAGE_LABELS[i] for i in config.images.offered],
                "profiles": _profiles(kind, extra["profiles"]),
                "billed_by_2i2c": config.cloud.billing is Billing.PROVIDER,
                "provider": config.cloud.provider.value.upper(),
                "deployment": deployment,
                "set_up": [p for p in (*deployment.github, deployment.quay) if p.done],
                "not_set_up": [p for p in (*deployment.github, deployment.quay) if not p.done],
            }
        case EmailKind.SIGNOFF_PROBLEMS:
            return {"problems": _string_list(kind, "problems", extra["problems"])}
        case EmailKind.PREMIUM_TIER:
            return {"reasons": _premium_reasons(config, extra.get("reason"))}
        case EmailKind.MILESTONE_OVERDUE:
            return _overdue_context(extra)
        case EmailKind.CHECKIN_INVITATION | EmailKind.COST_ALERT | EmailKind.COST_PROJECTION:
            return _under_management_context(kind, config, extra)
        case EmailKind.RENEWAL_OPENED:
            return _renewal_context(config, extra)
        case EmailKind.RENEWAL_REMINDER:
            return {
                "deadline": _date(kind, "deadline", extra["deadline"]),
                "next_reminder": _date(kind, "next_reminder", extra["next_reminder"]),
                "decision_link": str(extra.get("decision_link") or ""),
                "today": _date(kind, "today", extra.get("today") or dt.datetime.now(dt.UTC).date()),
            }
        case EmailKind.DECOMMISSION_NOTICE | EmailKind.DECOMMISSION_CANCELLED:
            return _decommission_context(kind, extra)
        case EmailKind.UPKEEP_NOTICE:
            return _upkeep_context(extra)


def _profiles(kind: EmailKind, value: Any) -> list[dict[str, Any]]:
    """Each profile with its name and the memory of each of its choices, all required."""
    if not isinstance(value, list | tuple) or not value:
        raise EmailError(f"email {kind}: extra['profiles'] must be a non-empty list")
    for profile in value:
        if not (isinstance(profile, Mapping) and profile.get("name") and profile.get("memory")):
            raise EmailError(f"email {kind}: each profile needs a name and its memory")
    return [dict(p) for p in value]


def _string_list(kind: EmailKind, name: str, value: Any) -> list[str]:
    if isinstance(value, str) or not all(isinstance(v, str) and v.strip() for v in value):
        raise EmailError(f"email {kind}: extra[{name!r}] must be a list of non-empty strings")
    return list(value)


def _premium_reasons(config: CommunityConfig, reason: str | None) -> list[str]:
    """The caller's reason when given, else the config's: one reason is never stated twice."""
    if reason:
        return [reason]
    reasons = []
    if config.tier is not Tier.ADVANCED:
        reasons.append(f"the engagement's tier is {config.tier}, not advanced")
    if not config.cloud.access_managed_by_2i2c:
        reasons.append(
            f"2i2c cannot manage its own access to the community's "
            f"{config.cloud.provider.value.upper()} account (cloud.access_managed_by_2i2c is false)"
        )
    if not reasons:
        raise EmailError(
            "email premium-tier needs extra key: reason (the config itself gives no reason to "
            "route this engagement to Premium Tier)"
        )
    return reasons


def _overdue_context(extra: dict[str, Any]) -> dict[str, Any]:
    due, days = extra["due"], extra["days_overdue"]
    if not isinstance(due, dt.date):
        raise EmailError("email milestone-overdue: extra['due'] must be a date")
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        raise EmailError("email milestone-overdue: extra['days_overdue'] must be an int >= 0")
    if extra["store"] not in ("local", "airtable"):
        raise EmailError("email milestone-overdue: extra['store'] must be local or airtable")
    return {
        "milestone": str(extra["milestone"]),
        "due": due,
        "days_overdue": days,
        "store": extra["store"],
        "milestone_key": str(extra.get("milestone_key") or extra["milestone"]),
        "how": extra.get("how") or "",
        "task_id": extra.get("task_id") or "",
        "dag_id": extra.get("dag_id") or "engagement_onboarding",
    }


def _under_management_context(
    kind: EmailKind, config: CommunityConfig, extra: dict[str, Any]
) -> dict[str, Any]:
    """The report or figures as the caller built them, and how to show money and the bill."""
    comparison = extra.get("comparison")
    if kind is EmailKind.COST_ALERT and (comparison.previous is None or comparison.current is None):
        raise EmailError("email cost-alert: extra['comparison'] must have both months' costs")
    return dict(extra) | {
        "money": format_money,
        "billed_by_2i2c": config.cloud.billing is Billing.PROVIDER,
        "provider": config.cloud.provider.value.upper(),
    }


def _date(kind: EmailKind, name: str, value: Any) -> dt.date:
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        raise EmailError(f"email {kind}: extra[{name!r}] must be a date")
    return value


def _renewal_context(config: CommunityConfig, extra: dict[str, Any]) -> dict[str, Any]:
    kind = EmailKind.RENEWAL_OPENED
    opened_on = _date(kind, "opened_on", extra.get("opened_on") or dt.datetime.now(dt.UTC).date())
    deadline = _date(kind, "deadline", extra.get("deadline") or config.contract.end)
    return {
        "opened_on": opened_on,
        "deadline": deadline,
        "days_left": (config.contract.end - opened_on).days,
        "decision_link": str(extra.get("decision_link") or ""),
    }


_NOTICE_STAGES = ("before-end", "at-end", "after-removal")


def _decommission_context(kind: EmailKind, extra: dict[str, Any]) -> dict[str, Any]:
    """Dates checked as dates; each backup names its hub, location and last day."""
    context: dict[str, Any] = {"end_date": _date(kind, "end_date", extra["end_date"])}
    if kind is EmailKind.DECOMMISSION_CANCELLED:
        new_end = extra.get("new_end")
        return context | {"new_end": _date(kind, "new_end", new_end) if new_end else None}
    if extra["stage"] not in _NOTICE_STAGES:
        raise EmailError(f"email {kind}: extra['stage'] must be one of {', '.join(_NOTICE_STAGES)}")
    backups = []
    for backup in extra["backups"]:
        if not isinstance(backup, Mapping) or not backup.get("hub") or not backup.get("location"):
            raise EmailError(f"email {kind}: each backup needs hub, location and expires_on")
        expires = _date(kind, "backups[].expires_on", backup.get("expires_on"))
        backups.append(
            {"hub": backup["hub"], "location": backup["location"], "expires_on": expires}
        )
    return context | {
        "stage": extra["stage"],
        "removal_by": _date(kind, "removal_by", extra["removal_by"]),
        "backups": backups,
        "expires_on": min(b["expires_on"] for b in backups),
    }


def _upkeep_context(extra: dict[str, Any]) -> dict[str, Any]:
    """Each planned change in words a community reads, the window, and what users notice."""
    kind = EmailKind.UPKEEP_NOTICE
    start = _date(kind, "window_start", extra["window_start"])
    end = _date(kind, "window_end", extra["window_end"])
    if end < start:
        raise EmailError(f"email {kind}: the window ends ({end}) before it starts ({start})")
    changes, dues = [], []
    for action in extra["actions"]:
        what = {
            "control_plane": "the Kubernetes control plane of your cluster",
            "node_pool": f"the cluster's node pool {action.get('pool')} (the machines hubs run on)",
            "chart": "JupyterHub (the Helm chart your hubs run)",
        }.get(action.get("kind"))
        if what is None:
            raise EmailError(f"email {kind}: unknown action kind {action.get('kind')!r}")
        label = "Kubernetes " if action["kind"] != "chart" else ""
        major = " (a new major version)" if action.get("major") else ""
        changes.append(f"{what}, from {label}{action['from']} to {action['to']}{major}")
        if action.get("due"):
            dues.append(dt.date.fromisoformat(action["due"]))
    due = min(dues) if dues else None
    return {
        "changes": changes,
        "window_start": start,
        "window_end": end,
        "due": due,
        "support_ended": due is not None and due <= dt.datetime.now(dt.UTC).date(),
        "major": any(a.get("major") for a in extra["actions"]),
        "pools": any(a["kind"] == "node_pool" for a in extra["actions"]),
    }
