"""The decommission emails carry every commitment of the runbook, in both parts."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest

from engagements.messages.emails import EmailError, EmailKind, render_email
from engagements.settings import Settings

END = dt.date(2027, 11, 30)
BACKUPS = [
    {
        "hub": "prod",
        "location": "s3://openscience-prod-homedirs-archive/<username>/archive-2027-12-01.tar.gz",
        "expires_on": dt.date(2028, 2, 29),
    },
    {
        "hub": "workshop",
        "location": "s3://openscience-workshop-homedirs-archive/<username>/archive-2027-12-02"
        ".tar.gz",
        "expires_on": dt.date(2028, 3, 1),
    },
]


def notice(config, stage: str, **extra):
    values = {
        "stage": stage,
        "end_date": END,
        "removal_by": dt.date(2027, 12, 14),
        "backups": BACKUPS,
    } | extra
    return render_email(EmailKind.DECOMMISSION_NOTICE, config, Settings(), extra=values)


def both(rendered) -> list[str]:
    text = " ".join(rendered.text.split())
    shown = " ".join(html.unescape(re.sub(r"<[^>]+>", "", rendered.html)).split())
    return [text, shown]


@pytest.mark.parametrize("stage", ["before-end", "at-end"])
def test_notices_before_removal_say_what_happens_and_how_to_download(config, stage):
    rendered = notice(config, stage)
    assert rendered.to == ("ada@openscience.example.org", "grace@openscience.example.org")
    assert rendered.cc == ("bd@2i2c.org",)
    for body in both(rendered):
        assert "Tuesday 30 November 2027" in body  # the end
        assert "by Tuesday 14 December 2027" in body  # hubs removed within two weeks
        assert "https://workshop.openscience.2i2c.cloud" in body
        assert "keeps that backup for 90 days: until Tuesday 29 February 2028" in body
        assert "https://openscience.2i2c.cloud/hub/user-redirect/tree" in body
        assert "Download as an Archive" in body
        assert "shared directories" in body
        assert "cloud storage buckets is not part of this backup" in body
        assert "support@2i2c.org" in body


def test_notice_after_removal_says_where_the_backup_is_and_until_when(config):
    rendered = notice(config, "after-removal")
    assert "kept until Tuesday 29 February 2028" in rendered.subject
    for body in both(rendered):
        assert "have now been removed" in body
        assert "archive-2027-12-01.tar.gz" in body
        assert "kept until Wednesday 1 March 2028" in body  # the workshop's archives
        assert "On Tuesday 29 February 2028 the backup is deleted permanently" in body
        assert "email support@2i2c.org" in body
        assert "GitHub repositories created for your community" in body
        assert "how to download" not in body.lower()


def test_each_notice_has_its_own_message_id(config):
    ids = {notice(config, s).message_id for s in ("before-end", "at-end", "after-removal")}
    assert len(ids) == 3


def test_notice_refuses_an_unknown_stage_and_missing_backups(config):
    with pytest.raises(EmailError, match="stage'\\] must be one of"):
        notice(config, "someday")
    with pytest.raises(EmailError, match="needs extra key"):
        notice(config, "at-end", backups=[])
    with pytest.raises(EmailError, match="must be a date"):
        notice(config, "at-end", end_date="2027-11-30")


def test_cancelled_says_nothing_was_removed(config):
    rendered = render_email(
        EmailKind.DECOMMISSION_CANCELLED,
        config,
        Settings(),
        extra={"end_date": END, "new_end": dt.date(2028, 11, 30)},
    )
    assert rendered.cc == ("bd@2i2c.org",)
    for body in both(rendered):
        assert "renewed until Thursday 30 November 2028" in body
        assert "Nothing has been removed" in body
        assert "disregard them" in body


def test_renewal_opened_goes_to_bd_only(config):
    rendered = render_email(
        EmailKind.RENEWAL_OPENED,
        config,
        Settings(bd_email="partnerships@2i2c.org"),
        extra={
            "opened_on": dt.date(2027, 10, 1),
            "deadline": dt.date(2027, 11, 30),
            "decision_link": "https://airflow.example.org/dags/engagement_renewal/runs/r/tasks/"
            "renewal_decided/required_actions",
        },
    )
    assert rendered.to == ("partnerships@2i2c.org",)
    assert rendered.cc == ()
    for body in both(rendered):
        assert "60 days after Friday 1 October 2027" in body
        assert "Expected monthly active users: 120" in body
        assert "renewal_decided/required_actions" in body
        assert "only a person's answer starts decommissioning" in body
        assert "treated as not renewed" not in body


def test_renewal_reminder_says_nothing_was_decided(config):
    rendered = render_email(
        EmailKind.RENEWAL_REMINDER,
        config,
        Settings(bd_email="partnerships@2i2c.org", support_email="support@2i2c.org"),
        extra={
            "deadline": dt.date(2027, 12, 1),
            "next_reminder": dt.date(2027, 12, 8),
            "today": dt.date(2027, 12, 1),
        },
    )
    assert (rendered.to, rendered.cc) == (("partnerships@2i2c.org",), ("support@2i2c.org",))
    for body in both(rendered):
        assert "the contract ended on Tuesday 30 November 2027" in body
        assert "it is not decommissioned" in body
        assert "still unanswered on Wednesday 8 December 2027" in body


def test_html_is_escaped(config):
    hostile = config.with_decisions({"name": "<b>Sci</b> & Co"})
    rendered = notice(hostile, "before-end")
    assert "&lt;b&gt;Sci&lt;/b&gt; &amp; Co" in rendered.html
    assert "<b>Sci</b>" in rendered.text
