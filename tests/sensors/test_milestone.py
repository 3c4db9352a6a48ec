from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from airflow.sdk import PokeReturnValue
from airflow.sdk.exceptions import (
    AirflowFailException,
    AirflowRescheduleException,
    AirflowSensorTimeout,
    TaskDeferred,
)

from engagements.sensors.milestone import REMINDER_SPREAD, MilestoneSensor
from engagements.tasks import DEFAULT_TIMEOUT
from engagements.triggers.milestone import RECORDED, REMIND, MilestoneTrigger
from tests.doubles import CountingStore


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


# deferrable (the default)


def defer(op, context=None):
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context or {})
    return deferred.value


def test_a_milestone_not_recorded_defers_to_the_trigger_with_the_store_and_settings(
    store, monkeypatch
):
    monkeypatch.setenv("ENGAGEMENTS_MILESTONE_POLL_INTERVAL", "45")
    store.plan_milestone("openscience", "technical_meeting_held", dt.date(2099, 1, 7))
    op = sensor(store, "technical_meeting_held", [])
    assert op.deferrable

    deferred = defer(op)

    assert isinstance(deferred.trigger, MilestoneTrigger)
    assert deferred.method_name == "execute_complete"
    kwargs = deferred.trigger.serialize()[1]
    assert kwargs["store"] == store.reference
    assert kwargs["interval"] == 45
    remind_at = dt.datetime.fromisoformat(kwargs["remind_at"])
    day_after = dt.datetime(2099, 1, 8, tzinfo=dt.UTC)
    assert day_after <= remind_at < day_after + REMINDER_SPREAD
    assert deferred.timeout == pytest.approx(DEFAULT_TIMEOUT, abs=dt.timedelta(seconds=5))


def test_a_milestone_already_recorded_never_defers(store):
    store.record_milestone("openscience", "technical_meeting_held", by="ada", note="held")
    op = sensor(store, "technical_meeting_held", [])
    assert op.execute({})["done_by"] == "ada"


def test_overdue_at_the_check_notifies_once_and_defers_without_a_reminder(store):
    store.plan_milestone("openscience", "technical_meeting_held", dt.date(2026, 1, 1))
    sent: list = []

    first = defer(sensor(store, "technical_meeting_held", sent))
    second = defer(sensor(store, "technical_meeting_held", sent))  # e.g. a retry

    assert len(sent) == 1
    assert "overdue" in sent[0]["Subject"].lower()
    assert first.trigger.remind_at is None
    assert second.trigger.remind_at is None


def test_a_notice_that_could_not_be_sent_is_reminded_an_hour_later(store):
    from engagements.hooks.smtp import EmailDeliveryError

    store.plan_milestone("openscience", "technical_meeting_held", dt.date(2026, 1, 1))
    op = sensor(store, "technical_meeting_held", [])

    def refuse(message):
        raise EmailDeliveryError("SMTP server 127.0.0.1:1: refused; NOT sent")

    op.deliver = refuse
    before = dt.datetime.now(dt.UTC)
    deferred = defer(op)

    remind_at = dt.datetime.fromisoformat(deferred.trigger.remind_at)
    assert before + dt.timedelta(minutes=59) < remind_at < before + dt.timedelta(minutes=61)


def test_resumed_by_a_recording_returns_it_without_reading_the_store(store):
    counting = CountingStore(store)
    op = sensor(counting, "technical_meeting_held", [])
    event = {
        "status": RECORDED,
        "waiting_since": "2027-01-04T00:00:00+00:00",
        "done_by": "ada",
        "done_at": "2027-01-05T10:00:00+00:00",
        "note": "held",
    }
    assert op.execute_complete({}, event) == {
        "done_by": "ada",
        "done_at": "2027-01-05T10:00:00+00:00",
        "note": "held",
    }
    assert counting.calls == []


def test_resumed_to_remind_notifies_and_waits_on_with_the_time_left(store):
    store.plan_milestone("openscience", "technical_meeting_held", dt.date(2026, 1, 1))
    sent: list = []
    op = sensor(store, "technical_meeting_held", sent)
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)

    with pytest.raises(TaskDeferred) as deferred:
        op.execute_complete({}, {"status": REMIND, "waiting_since": since.isoformat()})

    assert len(sent) == 1
    assert deferred.value.trigger.remind_at is None
    assert deferred.value.trigger.waiting_since == since.isoformat()
    left = DEFAULT_TIMEOUT - dt.timedelta(days=30)
    assert deferred.value.timeout == pytest.approx(left, abs=dt.timedelta(seconds=5))


def test_a_wait_past_its_timeout_fails(store):
    op = sensor(store, "configuration_completed", [])
    since = dt.datetime.now(dt.UTC) - DEFAULT_TIMEOUT - dt.timedelta(seconds=1)
    with pytest.raises(AirflowSensorTimeout, match="configuration_completed"):
        op.execute_complete({}, {"status": REMIND, "waiting_since": since.isoformat()})


def test_defer_then_trigger_then_resume_as_the_triggerer_would(store):
    """The trigger is rebuilt from its serialized form, as the triggerer does."""
    from airflow.sdk._shared.module_loading import import_string

    store.plan_milestone("openscience", "rollout_meeting_held", None)
    op = sensor(store, "rollout_meeting_held", [])
    deferred = defer(op)
    store.record_milestone("openscience", "rollout_meeting_held", by="ada", note="went well")
    classpath, kwargs = deferred.trigger.serialize()

    async def first_event():
        return await anext(import_string(classpath)(**kwargs).run())

    event = asyncio.run(first_event())
    result = getattr(op, deferred.method_name)({}, event=event.payload)

    assert result["done_by"] == "ada"
    assert result["note"] == "went well"


# settings read when the task runs


@pytest.mark.parametrize("value", ["30s", "0", "-5", "1e3", "", "99999999"])
def test_a_bad_poll_interval_fails_the_task_naming_the_setting(store, monkeypatch, value):
    monkeypatch.setenv("ENGAGEMENTS_MILESTONE_POLL_INTERVAL", value)
    op = sensor(store, "technical_meeting_held", [])
    with pytest.raises(AirflowFailException) as failed:
        op.execute({})
    message = str(failed.value)
    assert message.startswith(
        "engagements_milestone_poll_interval (ENGAGEMENTS_MILESTONE_POLL_INTERVAL):"
    )
    assert repr(value) in message


def test_without_a_triggerer_it_reschedules_at_the_poke_interval_setting(store, monkeypatch):
    monkeypatch.setenv("ENGAGEMENTS_POKE_INTERVAL", "600")
    op = MilestoneSensor(
        task_id="wait",
        milestone="configuration_completed",
        community_id="openscience",
        deferrable=False,
    )
    op.store = store
    context = {"ti": FirstTry(), "task_reschedule_count": 0}
    before = dt.datetime.now(dt.UTC)

    with pytest.raises(AirflowRescheduleException) as rescheduled:
        op.execute(context)

    delay = rescheduled.value.reschedule_date - before
    assert dt.timedelta(seconds=599) < delay < dt.timedelta(seconds=610)


def test_a_bad_poke_interval_fails_the_reschedule_sensor_naming_it(store, monkeypatch):
    monkeypatch.setenv("ENGAGEMENTS_POKE_INTERVAL", "two hours")
    op = MilestoneSensor(
        task_id="wait", milestone="technical_meeting_held", community_id="openscience",
        deferrable=False,
    )  # fmt: skip
    op.store = store
    with pytest.raises(AirflowFailException, match=r"^engagements_poke_interval .*'two hours'"):
        op.execute({"ti": FirstTry(), "task_reschedule_count": 0})


class FirstTry:
    def get_first_reschedule_date(self, context):
        return None
