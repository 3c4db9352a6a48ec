from __future__ import annotations

import datetime as dt

from airflow.sdk import PokeReturnValue

from engagements.sensors.milestone import MilestoneSensor


def sensor(store, milestone, sent):
    op = MilestoneSensor(task_id="wait", milestone=milestone, community_id="openscience")
    op.store = store
    op.deliver = sent.append
    return op


def test_reschedule_mode_with_generous_timeout():
    op = MilestoneSensor(task_id="wait", milestone="technical_meeting_held")
    assert op.mode == "reschedule"
    assert op.timeout >= dt.timedelta(days=60).total_seconds()


def test_waits_then_sees_the_recorded_milestone(store):
    sent: list = []
    op = sensor(store, "configuration_completed", sent)
    assert op.poke({}) is False
    store.record_milestone("openscience", "configuration_completed", by="ada", note="all closed")
    result = op.poke({})
    assert isinstance(result, PokeReturnValue)
    assert result.is_done
    assert result.xcom_value["done_by"] == "ada"
    assert sent == []


def test_overdue_notice_is_sent_once_and_waiting_goes_on(store):
    store.plan_milestone("openscience", "technical_meeting_held", dt.date(2026, 1, 1))
    sent: list = []
    op = sensor(store, "technical_meeting_held", sent)
    assert op.poke({}) is False
    assert op.poke({}) is False
    assert len(sent) == 1
    assert "overdue" in sent[0]["Subject"].lower()
    assert sent[0]["To"] == "support@2i2c.org"


def test_failed_overdue_notice_does_not_fail_the_wait(store):
    from engagements.hooks.smtp import EmailDeliveryError
    from engagements.onboarding import email_sent

    store.plan_milestone("openscience", "technical_meeting_held", dt.date(2026, 1, 1))
    op = sensor(store, "technical_meeting_held", [])

    def refuse(message):
        raise EmailDeliveryError("SMTP server 127.0.0.1:1: refused; NOT sent")

    op.deliver = refuse
    assert op.poke({}) is False
    intent = store.get_action("openscience", "email:overdue:technical_meeting_held")
    assert not email_sent(intent)  # the next poke sends it
