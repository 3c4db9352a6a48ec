"""The runbook's emails: recipients, every commitment, escaping, strictness, Message-IDs."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest
from jinja2 import UndefinedError

from engagements.config import IMAGE_LABELS, CommunityConfig
from engagements.messages.emails import (
    TEMPLATES_DIR,
    EmailError,
    EmailKind,
    RenderedEmail,
    email_kinds,
    format_email_for_terminal,
    parse_kind,
    render_email,
    template_environment,
)
from engagements.previews import preview_extra
from engagements.settings import Settings

PROBLEMS = [
    "the agreement is not signed by CS&S",
    "no invoicing contact for CS&S",
    "written answer missing: data",
]
OVERDUE = {
    "milestone": "Initial technical meeting scheduled",
    "milestone_key": "technical_meeting_scheduled",
    "due": dt.date(2026, 11, 23),
    "days_overdue": 4,
    "task_id": "wait_technical_meeting_scheduled",
    "store": "local",
}
EXTRA: dict[EmailKind, dict] = {
    EmailKind.WELCOME: {"today": dt.date(2026, 11, 20)},  # the day the example was signed
    EmailKind.SIGNOFF_PROBLEMS: {"problems": PROBLEMS},
    EmailKind.PREMIUM_TIER: {"reason": "the community uses an institutional cloud account"},
    EmailKind.MILESTONE_OVERDUE: OVERDUE,
}


def render(kind: EmailKind, config: CommunityConfig, settings: Settings, **kw) -> RenderedEmail:
    default = EXTRA[kind] if kind in EXTRA else preview_extra(kind, config)
    return render_email(kind, config, settings, extra=kw.pop("extra", default), **kw)


def plain(rendered: RenderedEmail) -> str:
    """The HTML part as a reader sees it: tags dropped, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", rendered.html)).split())


def both(rendered: RenderedEmail) -> list[str]:
    return [" ".join(rendered.text.split()), plain(rendered)]


def test_kinds_are_the_runbook_emails():
    assert email_kinds() == (
        "welcome",
        "rollout-invitation",
        "onboarding",
        "signoff-problems",
        "premium-tier",
        "milestone-overdue",
        "checkin-invitation",
        "cost-alert",
        "cost-projection",
        "renewal-opened",
        "renewal-reminder",
        "decommission-notice",
        "decommission-cancelled",
        "upkeep-notice",
    )
    assert parse_kind("onboarding") is EmailKind.ONBOARDING


def test_unknown_kind_lists_the_valid_ones():
    with pytest.raises(EmailError, match=r"unknown email 'welcom'.*welcome, rollout-invitation"):
        parse_kind("welcom")


@pytest.mark.parametrize("kind", list(EmailKind))
def test_every_kind_has_its_three_templates(kind):
    for suffix in ("subject.j2", "txt.j2", "html.j2"):
        assert (TEMPLATES_DIR / "emails" / f"{kind}.{suffix}").is_file()


@pytest.mark.parametrize(
    ("kind", "to", "cc"),
    [
        (EmailKind.WELCOME, ["ada@openscience.example.org"], ["grace@openscience.example.org"]),
        (
            EmailKind.ROLLOUT_INVITATION,
            ["ada@openscience.example.org", "grace@openscience.example.org"],
            [],
        ),
        (
            EmailKind.ONBOARDING,
            ["ada@openscience.example.org", "grace@openscience.example.org"],
            [],
        ),
        (EmailKind.SIGNOFF_PROBLEMS, ["bd@2i2c.org"], []),
        (EmailKind.PREMIUM_TIER, ["bd@2i2c.org"], []),
        (EmailKind.MILESTONE_OVERDUE, ["support@2i2c.org"], ["bd@2i2c.org"]),
        (
            EmailKind.UPKEEP_NOTICE,
            ["grace@openscience.example.org"],
            ["ada@openscience.example.org"],
        ),
    ],
)
def test_recipients_by_kind(kind, to, cc, config, settings):
    rendered = render(kind, config, settings)
    assert rendered.kind is kind
    assert list(rendered.to) == to
    assert list(rendered.cc) == cc
    assert list(rendered.all_recipients) == to + cc
    assert rendered.sender == settings.sender


def test_welcome_cc_follows_the_technical_lead(make_config, settings):
    config = make_config(
        {
            "representatives": [
                {"name": "A", "email": "a@x.org", "github": "a"},
                {"name": "B", "email": "b@x.org", "github": "b", "technical_lead": True},
                {"name": "C", "email": "c@x.org", "github": "c"},
            ]
        }
    )
    rendered = render(EmailKind.WELCOME, config, settings)
    assert rendered.to == ("b@x.org",)
    assert rendered.cc == ("a@x.org", "c@x.org")


def test_welcome_carries_its_commitments(config, settings):
    rendered = render(EmailKind.WELCOME, config, settings)
    for body in both(rendered):
        assert "Dear Ada Lovelace" in body
        assert "technical meeting" in body
        for outcome in (
            "cloud provider and region",
            "authentication options",
            "GitHub organizations and teams",
            "account information and the initial accounts",
        ):
            assert outcome in body
        assert settings.scheduling_link in body
        assert "two-week iterations" in body
        assert "Monday 23 November 2026 to Sunday 6 December 2026" in body
        assert "provisionally deployed by the end of that iteration" in body
        assert "rollout meeting" in body
        assert "Grace Hopper" in body


def test_rollout_invitation_lists_the_meeting_topics(config, settings):
    rendered = render(EmailKind.ROLLOUT_INVITATION, config, settings)
    for body in both(rendered):
        for topic in (
            "expectations",
            "demo",
            "Community hub",
            "Workshop hub",
            "BinderHub",
            "JupyterBook companion site",
            "refine the configuration",
        ):
            assert topic in body
        assert settings.rollout_scheduling_link in body


def test_onboarding_carries_every_commitment(config, settings):
    rendered = render(EmailKind.ONBOARDING, config, settings)
    facts = [
        "https://openscience.2i2c.cloud",
        "https://workshop.openscience.2i2c.cloud",
        "https://binder.openscience.2i2c.cloud",
        "configured as administrators",
        "Ada Lovelace, ada@openscience.example.org, GitHub: adalovelace",
        "Grace Hopper, grace@openscience.example.org, GitHub: ghopper",
        "sign in using GitHub",
        "If you cannot log in, please email support@2i2c.org",
        *(IMAGE_LABELS[image] for image in config.images.offered),
        "bring your own image",
        "build your own image with dynamic image building",
        settings.images_guide_url,
        "Community-maintained images are not directly supported",
        settings.forum_url,
        "up to 4 hours each quarter",
        "We have preconfigured the following profiles",
        "how much RAM each user server gets",
        "restrict particular profiles to particular sub-teams",
        "Grafana at https://grafana.openscience.2i2c.cloud",
        "historical usage",
        "Cloud usage costs are the responsibility of your community",
        "billed monthly",
        "more than 20% over the previous month",
        "home directory quota of 10 GB",
        "costs money even when no user servers are running",
        "home directories table in Grafana",
        "shared",
        "read-only",
        "shared_readwrite",
        "prefer object storage (buckets",
        "within two business days",
        "at least two weeks in advance",
        "recurring training",
        "forum",
    ]
    for body in both(rendered):
        missing = [fact for fact in facts if fact not in body]
        assert not missing, missing


def test_onboarding_states_who_pays_the_cloud_bill(make_config, settings):
    rendered = render(EmailKind.ONBOARDING, make_config({"cloud.billing": "2i2c"}), settings)
    for body in both(rendered):
        assert "2i2c passes them on to you every month" in body
        assert "more than 20%" in body


def test_onboarding_quota_and_profiles_come_from_config_and_extra(make_config, settings):
    config = make_config({"storage.home_quota_gb": 25})
    profiles = [
        {"name": "Small", "images": ["Pangeo notebook"], "memory": ["~4 GB RAM, ~0.5 CPUs"]},
        {"name": "GPU", "images": [], "memory": ["14 GB RAM guaranteed, one GPU"]},
    ]
    extra = preview_extra(EmailKind.ONBOARDING, config) | {"profiles": profiles}
    rendered = render(EmailKind.ONBOARDING, config, settings, extra=extra)
    for body in both(rendered):
        assert "home directory quota of 25 GB" in body
        assert "Small" in body
        assert "images: Pangeo notebook" in body
        assert "memory per user server, to choose from: ~4 GB RAM, ~0.5 CPUs" in body
        assert "14 GB RAM guaranteed, one GPU" in body


def test_onboarding_names_the_memory_of_each_profile_as_deployed(config, settings):
    """The profiles and their memory are the rendered hub values', not a list of images."""
    for body in both(render(EmailKind.ONBOARDING, config, settings)):
        assert "Choose your environment and resources" in body
        assert "images: Jupyter Docker Stacks scipy-notebook" in body
        assert "to choose from: ~4 GB RAM, ~0.5 CPUs" in body
        assert "~7 GB RAM, ~0.9 CPUs" in body
        assert "~29 GB RAM, ~4 CPUs" in body


def test_onboarding_names_the_dask_gateway(make_config, settings):
    with_dask = render(EmailKind.ONBOARDING, make_config({"hubs.community.dask_gateway": True}),
                       settings)  # fmt: skip
    without = render(EmailKind.ONBOARDING, make_config({"hubs.community.dask_gateway": False}),
                     settings)  # fmt: skip
    for body in both(with_dask):
        assert "Dask Gateway runs on the community hub" in body
        assert "dask_gateway.Gateway().new_cluster()" in body
    for body in both(without):
        assert "Dask Gateway is not deployed on your hubs" in body


def test_onboarding_says_only_what_the_store_shows_deployed(store, config, settings):
    """Hubs confirmed by an engineer; the GitHub org step ran, the Quay step only planned."""
    from engagements.deployment import deployment_status

    store.record_milestone("openscience", "infrastructure_deployed", by="Eve (engineer)")
    store.record_action("openscience", "github-org", "github", {
        "org": "openscience-org",
        "teams": ["hub-admins", "hub-users"],
        "repositories": {"hub-docs": "https://github.com/openscience-org/hub-docs"},
    })  # fmt: skip
    store.record_action("openscience", "quay-image", "container_registry", {"state": "planned"})
    store.record_action("openscience", "rollout-outcome", "meeting", {
        "notes": "", "workflows": [], "requirements": ["A shared bucket", "GPU for the course"],
    })  # fmt: skip
    store.record_action("openscience", "follow-up:1", "follow_up_issue", {
        "title": "[openscience] A shared bucket", "state": "opened",
        "url": "https://github.com/2i2c-org/infrastructure/issues/7",
    })  # fmt: skip
    status = deployment_status(store, "openscience", config.hub_urls)
    extra = preview_extra(EmailKind.ONBOARDING, config) | {"deployment": status}
    rendered = render(EmailKind.ONBOARDING, config, settings, extra=extra)
    for body in both(rendered):
        assert "GitHub organization teams: openscience-org/hub-admins" in body
        assert "JupyterBook companion site repository: https://github.com/openscience-org" in body
        still = body.split("Still being set up by 2i2c")[1].split("Configuration you asked")[0]
        assert "Quay image repository" in still
        assert "Sample binder project repository" in still
        assert (
            "A shared bucket (tracked at https://github.com/2i2c-org/infrastructure/issues/7)"
            in body
        )
        assert "GPU for the course" in body
        assert "still working on this configuration" in body
    assert "Quay image repository:" not in rendered.text  # never listed as set up


def test_onboarding_is_not_sent_for_hubs_not_recorded_deployed(store, config, settings):
    from engagements.deployment import deployment_status

    status = deployment_status(store, "openscience", config.hub_urls)
    extra = preview_extra(EmailKind.ONBOARDING, config) | {"deployment": status}
    with pytest.raises(EmailError, match="does not show them deployed: Community hub: not"):
        render(EmailKind.ONBOARDING, config, settings, extra=extra)


def test_welcome_announces_an_iteration_that_has_not_started(config, settings):
    """Sent weeks after the contract was signed, the welcome email names the next iteration,
    not the one after the signature, which is over."""
    late = render(EmailKind.WELCOME, config, settings, extra={"today": dt.date(2026, 12, 9)})
    for body in both(late):
        assert "Monday 21 December 2026 to Sunday 3 January 2027" in body
        assert "23 November 2026" not in body
    on_the_day = render(EmailKind.WELCOME, config, settings, extra={"today": dt.date(2026, 12, 7)})
    assert "Monday 21 December 2026" in on_the_day.text  # the iteration starting today has begun


def test_rollout_invitation_promises_no_demo_of_hubs_not_deployed(store, config, settings):
    from engagements.deployment import deployment_status

    before = deployment_status(store, "openscience", config.hub_urls)
    rendered = render(EmailKind.ROLLOUT_INVITATION, config, settings, extra={"deployment": before})
    for body in both(rendered):
        assert "demo of the infrastructure we deployed" not in body
        assert "as far as it is ready by the meeting" in body
        assert "Community hub, being deployed" in body
        assert "JupyterBook companion site, being set up" in body
    store.record_action("openscience", "hubs-healthy", "health_check", {
        "prod": "https://openscience.2i2c.cloud/hub/health",
        "workshop": "https://workshop.openscience.2i2c.cloud/hub/health",
        "binder": "https://hub.binder.openscience.2i2c.cloud/hub/health",
    })  # fmt: skip
    after = deployment_status(store, "openscience", config.hub_urls)
    rendered = render(EmailKind.ROLLOUT_INVITATION, config, settings, extra={"deployment": after})
    for body in both(rendered):
        assert "see a demo of the infrastructure we deployed for you" in body
        assert "Community hub (https://openscience.2i2c.cloud)" in body


def test_onboarding_uses_the_communitys_own_domain(make_config, settings):
    rendered = render(
        EmailKind.ONBOARDING, make_config({"domain": "hub.openscience.org"}), settings
    )
    for body in both(rendered):
        assert "https://hub.openscience.org" in body
        assert "https://workshop.hub.openscience.org" in body
        assert "https://binder.hub.openscience.org" in body
        assert "https://openscience.2i2c.cloud" not in body
        assert "own domain, hub.openscience.org" in body


def test_onboarding_lists_only_enabled_hubs(make_config, settings):
    config = make_config({"hubs.workshop.enabled": False, "hubs.binder.enabled": False})
    for body in both(render(EmailKind.ONBOARDING, config, settings)):
        assert "https://openscience.2i2c.cloud" in body
        assert "workshop.openscience" not in body
        assert "binder.openscience" not in body


def test_signoff_problems_lists_each_problem_and_what_bd_does(config, settings):
    rendered = render(EmailKind.SIGNOFF_PROBLEMS, config, settings)
    assert "3 problems" in rendered.subject
    for body in both(rendered):
        for problem in PROBLEMS:
            assert problem in body
        assert "What BD needs to do" in body
        assert "Nothing has been deployed" in body
        assert "engagement_onboarding" in body


def test_premium_tier_says_why_and_what_next(make_config, settings):
    config = make_config({"cloud.access_managed_by_2i2c": False})
    rendered = render_email(EmailKind.PREMIUM_TIER, config, settings)
    for body in both(rendered):
        assert "cannot manage its own access" in body
        assert "Nothing has been deployed" in body
        assert "What happens next" in body
        assert "Premium Tier agreement" in body


def test_premium_tier_given_reason_replaces_the_derived_one(make_config, settings):
    config = make_config({"cloud.access_managed_by_2i2c": False})
    reason = "2i2c would have to apply for access for each engineer"
    rendered = render_email(EmailKind.PREMIUM_TIER, config, settings, extra={"reason": reason})
    assert reason in rendered.text
    assert "cloud.access_managed_by_2i2c is false" not in rendered.text


def test_premium_tier_needs_a_reason(config, settings):
    with pytest.raises(EmailError, match="premium-tier needs extra key: reason"):
        render_email(EmailKind.PREMIUM_TIER, config, settings)


def test_milestone_overdue_says_which_when_and_how_to_record(config, settings):
    rendered = render(EmailKind.MILESTONE_OVERDUE, config, settings)
    assert "Overdue by 4 days" in rendered.subject
    for body in both(rendered):
        assert "Initial technical meeting scheduled" in body
        assert "Monday 23 November 2026" in body
        assert "4 days overdue" in body
        assert "engagements milestone mark openscience technical_meeting_scheduled" in body
        assert "Airtable" not in body  # the embedded store is in use: the CLI records it
        assert "wait_technical_meeting_scheduled as success" in body


def test_milestone_overdue_in_production_says_to_record_it_in_airtable(config, settings):
    rendered = render(
        EmailKind.MILESTONE_OVERDUE, config, settings, extra=OVERDUE | {"store": "airtable"}
    )
    for body in both(rendered):
        assert 'set "Done at" and "Done by" on the record' in body
        assert "openscience/technical_meeting_scheduled" in body
        assert "engagements milestone mark" not in body
    with pytest.raises(EmailError, match="must be local or airtable"):
        render(EmailKind.MILESTONE_OVERDUE, config, settings, extra=OVERDUE | {"store": "s3"})


def test_milestone_due_today_is_zero_days_overdue(config, settings):
    rendered = render(
        EmailKind.MILESTONE_OVERDUE, config, settings, extra=OVERDUE | {"days_overdue": 0}
    )
    assert "is 0 days overdue" in rendered.text


@pytest.mark.parametrize(
    ("kind", "extra", "missing"),
    [
        (EmailKind.SIGNOFF_PROBLEMS, {}, "problems"),
        (EmailKind.SIGNOFF_PROBLEMS, {"problems": []}, "problems"),
        (
            EmailKind.MILESTONE_OVERDUE,
            {"milestone": "x", "due": dt.date(2026, 1, 1)},
            "days_overdue",
        ),
    ],
)
def test_missing_extra_names_kind_and_key(kind, extra, missing, config, settings):
    with pytest.raises(EmailError, match=rf"email {kind} needs extra key\(s\): {missing}"):
        render_email(kind, config, settings, extra=extra)


def test_unknown_extra_is_refused(config, settings):
    with pytest.raises(EmailError, match=r"welcome does not take extra key\(s\) problems"):
        render_email(EmailKind.WELCOME, config, settings, extra={"problems": ["x"]})


def test_badly_typed_extra_is_refused(config, settings):
    with pytest.raises(EmailError, match="must be a list of non-empty strings"):
        render_email(EmailKind.SIGNOFF_PROBLEMS, config, settings, extra={"problems": "oops"})
    with pytest.raises(EmailError, match="must be a date"):
        render_email(
            EmailKind.MILESTONE_OVERDUE, config, settings, extra=OVERDUE | {"due": "2026-11-23"}
        )


def test_strict_undefined_fails_loudly():
    env = template_environment()
    with pytest.raises(UndefinedError, match="missing"):
        env.from_string("Hello {{ missing }}").render(present=1)


def test_strict_undefined_in_a_template_file(tmp_path):
    (tmp_path / "emails").mkdir()
    (tmp_path / "emails" / "broken.txt.j2").write_text("Dear {{ config.nmae }}\n")
    env = template_environment(tmp_path)
    with pytest.raises(UndefinedError):
        env.get_template("emails/broken.txt.j2").render(config={"name": "x"})


def test_html_is_escaped_and_text_is_not(make_config, settings):
    name = "<script>alert(1)</script> & Co"
    config = make_config({"name": name})
    for kind in EmailKind:
        rendered = render(kind, config, settings)
        assert "<script>" not in rendered.html, kind
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in rendered.html, kind
        assert name in rendered.text, kind


def test_sandbox_refuses_unsafe_attributes():
    from jinja2.exceptions import SecurityError

    with pytest.raises(SecurityError):
        template_environment().from_string("{{ x.__class__.__mro__ }}").render(x=1)


def test_message_id_is_deterministic_and_keyed(config, settings, make_config):
    first = render(EmailKind.WELCOME, config, settings)
    again = render(EmailKind.WELCOME, config, settings)
    assert first.message_id == again.message_id
    assert re.fullmatch(
        r"<welcome\.openscience\.[0-9a-f]{12}@engagements\.2i2c\.org>", first.message_id
    )
    assert (
        render(EmailKind.WELCOME, config, settings, key="resend-2").message_id != first.message_id
    )
    assert render(EmailKind.ROLLOUT_INVITATION, config, settings).message_id != first.message_id
    other = make_config({"community_id": "otherscience"})
    assert render(EmailKind.WELCOME, other, settings).message_id != first.message_id


def test_overdue_message_id_is_per_milestone_by_default(config, settings):
    one = render(EmailKind.MILESTONE_OVERDUE, config, settings)
    other = render(
        EmailKind.MILESTONE_OVERDUE,
        config,
        settings,
        extra=OVERDUE | {"milestone": "Initial technical meeting held", "milestone_key": "held"},
    )
    assert one.message_id != other.message_id


def test_no_secret_looking_values(make_config, settings):
    config = make_config({"branding.logo_url": "https://openscience.example.org/logo.png"})
    secrets = [
        config.cloud.account,
        str(config.contract.hubspot_deal_id),
        "48000",
        "1500",
    ]
    patterns = [r"AKIA[0-9A-Z]{16}", r"gh[pousr]_[A-Za-z0-9]{20,}", r"password\s*[:=]", r"token"]
    for kind in EmailKind:
        rendered = render(kind, config, settings)
        for body in (rendered.subject, rendered.text, rendered.html):
            for secret in secrets:
                assert secret not in body, (kind, secret)
            for pattern in patterns:
                assert not re.search(pattern, body, re.IGNORECASE), (kind, pattern)


def test_to_mime_is_multipart_alternative_text_first(config, settings):
    rendered = render(EmailKind.WELCOME, config, settings)
    when = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)
    message = rendered.to_mime(date=when)
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert parts[0].get_content() == rendered.text
    assert parts[1].get_content() == rendered.html
    assert message["From"] == settings.sender
    assert message["To"] == "ada@openscience.example.org"
    assert message["Cc"] == "grace@openscience.example.org"
    assert message["Subject"] == rendered.subject
    assert message["Message-ID"] == rendered.message_id
    assert message["Date"] == "Fri, 20 Nov 2026 09:30:00 +0000"


def test_to_mime_without_cc_has_no_cc_header(config, settings):
    message = render(EmailKind.ONBOARDING, config, settings).to_mime()
    assert message["Cc"] is None
    assert message["Date"]


def test_a_newline_in_the_name_never_reaches_a_subject(make_config):
    """A header with a newline would be refused by the mail library, or split the message."""
    from engagements.config import ConfigError

    with pytest.raises(ConfigError, match="name: contains the control character U\\+000A"):
        make_config({"name": "Open\nScience"})


def test_format_for_terminal(config, settings):
    rendered = render(EmailKind.ONBOARDING, config, settings)
    shown = format_email_for_terminal(rendered)
    head, body = shown.split("\n\n", 1)
    assert head.splitlines() == [
        f"Subject: {rendered.subject}",
        f"From: {settings.sender}",
        "To: ada@openscience.example.org, grace@openscience.example.org",
        "Cc: -",
        f"Message-ID: {rendered.message_id}",
    ]
    assert body == rendered.text
