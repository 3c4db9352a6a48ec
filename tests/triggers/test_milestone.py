"""The milestone trigger and the poller its instances share, as Airflow's providers test their
triggers: serialization round trips, then ``run()`` driven in an event loop. The loop's clock
is virtual (``tests/triggers/virtual_time.py``), so hours of waiting take milliseconds and
every count below is exact; the store is a real SQLite file, or Airtable through the HTTP fake
with the connection looked up as the triggerer does."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk._shared.module_loading import import_string
from airflow.sdk.serde import deserialize, serialize

from engagements.store.base import StoreError, StoreUnavailable
from engagements.store.local import LocalStore
from engagements.triggers import milestone as module
from engagements.triggers.milestone import (
    OVERLAP,
    RECORDED,
    REMIND,
    MilestoneTrigger,
    poller_for,
)
from tests.store.conftest import BASE_ID, TOKEN
from tests.store.fake_airtable import FakeAirtable

from .virtual_time import EPOCH, VirtualTimeLoop, virtual_clock

INTERVAL = 30.0


@pytest.fixture
def loop() -> Iterator[VirtualTimeLoop]:
    loop = VirtualTimeLoop()
    with virtual_clock(loop):
        yield loop
    loop.close()


@pytest.fixture
def local(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "engagements.sqlite")


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[dt.datetime]:
    """The ``since`` of every store read the pollers make (whatever the backend)."""
    seen: list[dt.datetime] = []
    opened = module.open_store

    async def counted(reference: dict[str, str]) -> Any:
        store = await opened(reference)
        method = store.list_milestones_recorded_since

        def read(since: dt.datetime) -> Any:
            seen.append(since)
            return method(since)

        store.list_milestones_recorded_since = read
        return store

    monkeypatch.setattr(module, "open_store", counted)
    return seen


def trigger(store: Any, community_id: str, milestone: str = "technical_meeting_held", **kw: Any):
    at = kw.pop("at", EPOCH)
    return MilestoneTrigger(
        community_id=community_id,
        milestone=milestone,
        store=store.reference,
        checked_at=at.isoformat(),
        interval=kw.pop("interval", INTERVAL),
        waiting_since=kw.pop("waiting_since", at.isoformat()),
        **kw,
    )


def start(loop: VirtualTimeLoop, t: MilestoneTrigger) -> asyncio.Task:
    """What the triggerer does: run the trigger until its first event."""
    return loop.create_task(anext(t.run()))


def at(loop: VirtualTimeLoop, seconds: float, action: Any) -> None:
    loop.call_at(seconds, action)


async def current_poller(store: Any) -> Any:
    return poller_for(store.reference)


# serialization


def test_serialize_round_trips_through_the_class_path_and_airflow_serde(local) -> None:
    original = trigger(local, "openscience", remind_at="2027-01-09T00:21:00+00:00")
    classpath, kwargs = original.serialize()

    assert classpath == "engagements.triggers.milestone.MilestoneTrigger"
    assert kwargs == {
        "community_id": "openscience",
        "milestone": "technical_meeting_held",
        "store": {"backend": "local", "path": str(local.path)},
        "checked_at": "2027-01-04T00:00:00+00:00",
        "interval": 30.0,
        "waiting_since": "2027-01-04T00:00:00+00:00",
        "remind_at": "2027-01-09T00:21:00+00:00",
    }
    json.dumps(kwargs)  # stored by the triggerer as JSON
    rebuilt = import_string(classpath)(**deserialize(serialize(kwargs)))
    assert rebuilt.serialize() == (classpath, kwargs)


# one read for every wait


def test_waits_share_one_read_per_interval_and_only_recorded_ones_fire(loop, local, reads) -> None:
    communities = [f"c{i:02d}" for i in range(20)]
    for c in communities:
        local.plan_milestone(c, "technical_meeting_held", dt.date(2027, 3, 1))
    tasks = {c: start(loop, trigger(local, c)) for c in communities}
    at(loop, 95, lambda: local.record_milestone("c03", "technical_meeting_held", by="ada"))
    at(loop, 100, lambda: local.record_milestone("c07", "technical_meeting_held", by="bob"))

    loop.run_until_complete(asyncio.sleep(3590))

    fired = {c: t.result() for c, t in tasks.items() if t.done()}
    assert set(fired) == {"c03", "c07"}
    assert fired["c03"].payload["status"] == RECORDED
    assert fired["c03"].payload["done_by"] == "ada"
    # One read every 30 s for all 20 waits (at 0, 30, ..., 3570), not 20.
    assert len(reads) == 120
    assert reads[0] == EPOCH - OVERLAP
    assert reads[5] == EPOCH + dt.timedelta(seconds=120) - OVERLAP
    for t in tasks.values():
        t.cancel()
    loop.run_until_complete(asyncio.sleep(1))


def test_a_recording_is_noticed_at_the_next_read(loop, local, reads) -> None:
    local.plan_milestone("openscience", "technical_meeting_held", None)
    task = start(loop, trigger(local, "openscience"))
    at(loop, 4000, lambda: local.record_milestone("openscience", "technical_meeting_held", by="a"))

    event = loop.run_until_complete(task)

    assert event.payload["status"] == RECORDED
    assert loop.time() == 4020  # the read at 4,020 s (every 30 s from 0) saw it


def test_a_recording_made_before_the_trigger_started_is_found(loop, local, reads) -> None:
    """Recorded after the task's check but before the triggerer ran the trigger (a busy
    triggerer, or one restarted): the first read reaches back to the check."""
    local.plan_milestone("openscience", "technical_meeting_held", None)
    checked = EPOCH - dt.timedelta(minutes=10)
    local.record_milestone(
        "openscience", "technical_meeting_held", by="ada", at=checked + dt.timedelta(minutes=1)
    )
    loop.run_until_complete(asyncio.sleep(5))

    event = loop.run_until_complete(start(loop, trigger(local, "openscience", at=checked)))

    assert event.payload["status"] == RECORDED
    assert reads[0] <= checked - OVERLAP


def test_a_trigger_fires_no_earlier_than_one_interval_after_the_check(loop, local) -> None:
    """apache/airflow#72716: a trigger firing within seconds of the deferral can fail the
    resumed task; the milestone recorded right at deferral waits for the first interval."""
    local.plan_milestone("openscience", "technical_meeting_held", None)
    local.record_milestone("openscience", "technical_meeting_held", by="ada")

    event = loop.run_until_complete(start(loop, trigger(local, "openscience", interval=30)))

    assert event.payload["status"] == RECORDED
    assert loop.time() == 30


def test_the_reminder_fires_when_due_and_reads_nothing_more(loop, local, reads) -> None:
    local.plan_milestone("openscience", "technical_meeting_held", dt.date(2027, 1, 3))
    remind_at = EPOCH + dt.timedelta(hours=2, seconds=15)
    task = start(loop, trigger(local, "openscience", remind_at=remind_at.isoformat()))

    event = loop.run_until_complete(task)

    assert event.payload == {"status": REMIND, "waiting_since": EPOCH.isoformat()}
    assert loop.utcnow() == remind_at
    assert len(reads) == (2 * 3600 + 15) // 30 + 1, "the interval's reads, no more"


def test_a_cancelled_trigger_leaves_the_poll_and_the_last_one_stops_it(loop, local, reads) -> None:
    """Marking a deferred task success (or clearing it) cancels its trigger."""
    first, second = (start(loop, trigger(local, c)) for c in ("a", "b"))
    loop.run_until_complete(asyncio.sleep(60))
    poller = loop.run_until_complete(current_poller(local))

    first.cancel()
    loop.run_until_complete(asyncio.sleep(60))
    assert set(poller.waiters) == {("b", "technical_meeting_held")}
    second.cancel()
    loop.run_until_complete(asyncio.sleep(1))
    counted = len(reads)
    loop.run_until_complete(asyncio.sleep(3600))

    assert len(reads) == counted, "no one waits: no reads"
    assert loop.run_until_complete(current_poller(local)) is not poller, "a new poll next time"


def test_a_poll_survives_an_unavailable_store_and_reads_again(
    loop, local, reads, monkeypatch
) -> None:
    local.plan_milestone("openscience", "technical_meeting_held", None)
    real = LocalStore.list_milestones_recorded_since
    failures = iter([True, True])

    def flaky(self: LocalStore, since: dt.datetime) -> Any:
        if next(failures, False):
            raise StoreUnavailable("Airtable Milestones: HTTP 429, after retries")
        return real(self, since)

    monkeypatch.setattr(LocalStore, "list_milestones_recorded_since", flaky)
    at(loop, 10, lambda: local.record_milestone("openscience", "technical_meeting_held", by="a"))

    event = loop.run_until_complete(start(loop, trigger(local, "openscience")))

    assert event.payload["status"] == RECORDED
    assert loop.time() == 60, "the reads at 0 and 30 s failed; the one at 60 s found it"
    assert reads[2] == reads[0], "a failed read is asked again from the same moment"


# the production store, its connection looked up as in the triggerer


@pytest.fixture
def airtable(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAirtable]:
    with FakeAirtable(TOKEN, BASE_ID) as fake:
        conn = {"conn_type": "airtable", "password": TOKEN, "extra": {"base_id": BASE_ID}}
        conn["extra"]["endpoint_url"] = fake.url
        monkeypatch.setenv("AIRFLOW_CONN_AIRTABLE_DEFAULT", json.dumps(conn))
        yield fake


def test_on_airtable_one_request_per_read_finds_a_recording_made_in_the_base(airtable) -> None:
    """Airtable stamps the change with its own (here: the real) clock; the loop starts now."""
    from engagements.hooks.airtable import AirtableHook

    store = AirtableHook(backoff=0).get_store()
    assert store.reference == {
        "backend": "airtable",
        "base_id": BASE_ID,
        "conn_id": "airtable_default",
    }
    for c in ("openscience", "othersci"):
        store.plan_milestone(c, "technical_meeting_held", dt.date(2027, 1, 20))
    now = dt.datetime.now(dt.UTC)
    loop = VirtualTimeLoop(start=now)
    first = len(airtable.requests)
    with virtual_clock(loop):
        tasks = [start(loop, trigger(store, c, at=now)) for c in ("openscience", "othersci")]
        loop.run_until_complete(asyncio.sleep(1))
        airtable.edit(
            "Milestones",
            {"Key": "openscience/technical_meeting_held"},
            {"Done at": "2027-01-04T00:00:00.000Z", "Done by": "Ada (in Airtable)"},
        )
        event = loop.run_until_complete(tasks[0])
        tasks[1].cancel()
        loop.run_until_complete(asyncio.sleep(1))
    loop.close()

    assert event.payload["done_by"] == "Ada (in Airtable)"
    polls = airtable.requests_to("Milestones")[first - len(airtable.requests) :]
    assert len(polls) == 2, "the reads at 0 and 30 s, one request each for both waits"
    assert tasks[1].cancelled()


def test_a_store_that_refuses_the_token_fails_the_waits_naming_airtable(
    loop, airtable, monkeypatch
) -> None:
    conn = {"conn_type": "airtable", "password": "patWRONG", "extra": {"base_id": BASE_ID}}
    conn["extra"]["endpoint_url"] = airtable.url
    monkeypatch.setenv("AIRFLOW_CONN_AIRTABLE_DEFAULT", json.dumps(conn))
    reference = {"backend": "airtable", "base_id": BASE_ID, "conn_id": "airtable_default"}
    t = MilestoneTrigger(
        community_id="openscience",
        milestone="technical_meeting_held",
        store=reference,
        checked_at=EPOCH.isoformat(),
        interval=INTERVAL,
        waiting_since=EPOCH.isoformat(),
    )

    with pytest.raises(StoreError, match="Airtable Milestones: could not list milestones") as e:
        loop.run_until_complete(start(loop, t))
    assert "401" in str(e.value)
    assert "patWRONG" not in str(e.value)
