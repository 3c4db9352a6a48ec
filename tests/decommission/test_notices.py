"""Start and the three notices of a decommission."""

from __future__ import annotations

import datetime as dt

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from engagements.operators.decommission.backup import VerifyBackupOperator
from engagements.operators.decommission.notices import (
    DecommissionNoticeOperator,
    StartDecommissionOperator,
)
from engagements.store.base import EngagementStatus
from tests.decommission.conftest import (
    BUCKETS,
    CONTEXT,
    END,
    make,
    renew,
)

pytestmark = pytest.mark.usefixtures("hubs")


def test_start_marks_a_hand_triggered_active_engagement_decommissioning(ending):
    ending.update_engagement("openscience", status=EngagementStatus.ACTIVE)
    plan = make(StartDecommissionOperator, ending).execute(CONTEXT)
    assert plan["removal_by"] == "2027-12-14"
    assert plan["buckets"] == BUCKETS
    assert ending.get_engagement("openscience").status is EngagementStatus.DECOMMISSIONING


def test_start_refuses_an_engagement_that_was_never_running(ending):
    ending.update_engagement("openscience", status=EngagementStatus.ONBOARDING)
    with pytest.raises(AirflowFailException, match="status is Onboarding"):
        make(StartDecommissionOperator, ending).execute(CONTEXT)


def test_start_refuses_a_record_of_another_community(ending, config):
    other = config.to_dict() | {"community_id": "othersci"}
    other["contract"]["end"] = END.isoformat()
    ending.upsert_engagement("openscience", config.name, other)
    with pytest.raises(AirflowFailException, match="community ids disagree"):
        make(StartDecommissionOperator, ending).execute(CONTEXT)


def test_notice_goes_to_representatives_once_with_bd_in_cc(ending):
    sent: list = []
    op = make(DecommissionNoticeOperator, ending, sent, stage="before-end")
    op.execute(CONTEXT)
    op.execute(CONTEXT)
    (mail,) = sent
    assert mail["To"] == "ada@openscience.example.org, grace@openscience.example.org"
    assert mail["Cc"] == "bd@2i2c.org"
    body = " ".join(mail.get_body(("plain",)).get_content().split())
    assert "ends on Tuesday 30 November 2027" in body
    assert "by Tuesday 14 December 2027" in body
    assert "/hub/user-redirect/tree" in body
    assert "keeps that backup for 90 days" in body


def test_a_late_run_does_not_announce_an_end_already_past(ending, config):
    past = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=10)  # removal was due in 4 days
    data = config.to_dict()
    data["contract"]["start"] = (past - dt.timedelta(days=365)).isoformat()
    data["contract"]["end"] = past.isoformat()
    ending.upsert_engagement("openscience", config.name, data)
    sent: list = []
    for stage in ("before-end", "at-end"):
        op = make(DecommissionNoticeOperator, ending, sent, stage=stage)
        op.contract_end = past.isoformat()
        op.execute(CONTEXT)
    (mail,) = sent
    assert "has reached its end" in mail["Subject"]
    week = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=7)
    assert f"hubs removed by {week:%A} {week.day} {week:%B %Y}" in mail["Subject"]


def test_renewal_recorded_after_a_notice_cancels_with_a_notice(ending):
    sent: list = []
    make(DecommissionNoticeOperator, ending, sent, stage="before-end").execute(CONTEXT)
    renew(ending)
    with pytest.raises(AirflowSkipException, match="renewed meanwhile"):
        make(DecommissionNoticeOperator, ending, sent, stage="at-end").execute(CONTEXT)
    assert [m["Message-ID"].split(".")[0] for m in sent] == [
        "<decommission-notice",
        "<decommission-cancelled",
    ]
    assert "until Thursday 30 November 2028" in " ".join(
        sent[1].get_body(("plain",)).get_content().split()
    )
    # every later step skips without reading anything else
    with pytest.raises(AirflowSkipException, match="cancelled"):
        make(VerifyBackupOperator, ending).execute(CONTEXT)


def test_after_removal_notice_needs_the_verified_removal(ending):
    ending.update_engagement("openscience", status=EngagementStatus.DECOMMISSIONED)
    with pytest.raises(AirflowFailException, match="removal is not verified"):
        make(DecommissionNoticeOperator, ending, stage="after-removal").execute(CONTEXT)
