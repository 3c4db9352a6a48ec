"""Deferred milestone waits: one trigger per wait, one store read per interval for all of them.

Every :class:`MilestoneTrigger` in a triggerer process registers its (community, milestone)
with the :class:`MilestonePoller` of its store (one per Airtable base or SQLite file, per event
loop) and awaits it. The poller asks the store, once per interval, for the milestones recorded
since its previous read (:meth:`~engagements.store.base.EngagementStore.
list_milestones_recorded_since`: one paginated request on Airtable, one indexed query on
SQLite) and wakes exactly the triggers whose milestone is among them. A trigger also knows
when to remind (the milestone's due date passing): then it fires without reading anything.

A trigger never fires earlier than one full interval after the store check that preceded its
deferral. Airflow 3.3 can fail a task whose trigger fires within seconds of the deferral (a
stale executor "success" of the deferring attempt arrives after the resumed attempt started:
apache/airflow#72716); by then the executor has long reported that attempt.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from airflow.sdk import timezone
from airflow.triggers.base import BaseTrigger, TriggerEvent

from engagements.store.base import EngagementStore, MilestoneRecord, StoreError, StoreUnavailable

log = logging.getLogger(__name__)

RECORDED = "recorded"
"""Event status: the milestone was recorded done (the event carries who, when and the note)."""
REMIND = "remind"
"""Event status: the reminder time passed (the milestone became overdue) and nothing was seen."""
OVERLAP = dt.timedelta(seconds=60)
"""Each read goes back this far before the previous one began, so that a recording committed
while that read ran, or stamped by a clock slightly behind this one, is still seen."""


async def open_store(reference: dict[str, str]) -> EngagementStore:
    """The store a task named in its trigger, opened without blocking the event loop."""
    backend = reference.get("backend")
    if backend == "local":
        from engagements.store.local import LocalStore

        return LocalStore(reference["path"])
    if backend == "airtable":
        from engagements.hooks.airtable import AirtableHook

        hook = AirtableHook(reference.get("conn_id") or AirtableHook.default_conn_name)
        store = await hook.aget_store()
        if store.base_id != reference["base_id"]:
            raise StoreError(
                f"Airflow connection {hook.airtable_conn_id!r} now names Airtable base"
                f" {store.base_id}, not {reference['base_id']} as when the task waited on it"
            )
        return store
    raise StoreError(f"unknown store {reference!r}")


@dataclass(eq=False)
class Waiter:
    """One trigger's registration: resolved with the record, or with the store's error."""

    community_id: str
    milestone: str
    checked_at: dt.datetime
    """When the task last read the milestone: recordings after it must be seen."""
    interval: float
    found: asyncio.Future[MilestoneRecord] = field(repr=False)

    @property
    def key(self) -> tuple[str, str]:
        return self.community_id, self.milestone


class MilestonePoller:
    """The one poll of a store in one event loop; runs while at least one trigger waits."""

    def __init__(self, key: str, reference: dict[str, str]) -> None:
        self.key = key
        self.reference = reference
        self.waiters: dict[tuple[str, str], set[Waiter]] = {}
        self.reads = 0
        self._since: dt.datetime | None = None
        """The next read asks for recordings after this moment."""
        self._store: EngagementStore | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def interval(self) -> float:
        return min(w.interval for waiting in self.waiters.values() for w in waiting)

    def register(self, waiter: Waiter) -> None:
        """Wait with the others; the next read reaches back to this waiter's last check."""
        self.waiters.setdefault(waiter.key, set()).add(waiter)
        start = waiter.checked_at - OVERLAP
        self._since = start if self._since is None else min(self._since, start)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.key)

    def unregister(self, waiter: Waiter) -> None:
        waiting = self.waiters.get(waiter.key, set())
        waiting.discard(waiter)
        if not waiting:
            self.waiters.pop(waiter.key, None)
        if not self.waiters:  # nobody waits: stop reading, let the store go
            if self._task is not None:
                self._task.cancel()
            _pollers().pop(self.key, None)

    async def _run(self) -> None:
        while self.waiters:
            await self.read()
            await asyncio.sleep(self.interval)

    async def read(self) -> None:
        """One request for every waiting trigger; wakes those whose milestone was recorded."""
        assert self._since is not None
        since, began = self._since, timezone.utcnow()
        try:
            if self._store is None:
                self._store = await open_store(self.reference)
            records = await asyncio.to_thread(self._store.list_milestones_recorded_since, since)
        except StoreUnavailable as exc:  # rate limit, outage: read again at the next interval
            log.warning("%s; reading again in %g s", exc, self.interval)
            return
        except Exception as exc:  # a store that cannot be read: fail the waits, naming why
            log.error("Cannot read recorded milestones from %s: %s", self.key, exc)
            self._resolve_all(exc if isinstance(exc, StoreError) else StoreError(repr(exc)))
            return
        self.reads += 1
        # A waiter registered during the read may have asked to reach back further.
        self._since = began - OVERLAP if self._since == since else min(self._since, began - OVERLAP)
        for record in records:
            for waiter in self.waiters.get((record.community_id, record.milestone), ()):
                if record.done and not waiter.found.done():
                    waiter.found.set_result(record)

    def _resolve_all(self, exc: StoreError) -> None:
        for waiting in self.waiters.values():
            for waiter in waiting:
                if not waiter.found.done():
                    waiter.found.set_exception(exc)


_POLLERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, MilestonePoller]] = (
    weakref.WeakKeyDictionary()
)
"""The pollers of each running event loop (the triggerer has one loop; ``dag.test()`` runs each
trigger in a loop of its own), by store."""


def _pollers() -> dict[str, MilestonePoller]:
    return _POLLERS.setdefault(asyncio.get_running_loop(), {})


def store_key(reference: dict[str, str]) -> str:
    """One poller per store: an Airtable base, or a SQLite file."""
    if reference.get("backend") == "airtable":
        return f"airtable:{reference['base_id']}"
    return json.dumps(reference, sort_keys=True)


def poller_for(reference: dict[str, str]) -> MilestonePoller:
    """This event loop's poller of the store (created on first use)."""
    pollers = _pollers()
    key = store_key(reference)
    if key not in pollers:
        pollers[key] = MilestonePoller(key, reference)
    return pollers[key]


class MilestoneTrigger(BaseTrigger):
    """Fire when the milestone is recorded done, or when ``remind_at`` passes.

    ``checked_at`` is when the task found the milestone not done; ``interval`` the seconds
    between the poller's reads (also the least time between ``checked_at`` and firing);
    ``waiting_since`` is handed back in the event, for the sensor's timeout.
    """

    def __init__(
        self,
        *,
        community_id: str,
        milestone: str,
        store: dict[str, str],
        checked_at: str,
        interval: float,
        waiting_since: str,
        remind_at: str | None = None,
    ) -> None:
        super().__init__()
        self.community_id = community_id
        self.milestone = milestone
        self.store = dict(store)
        self.checked_at = checked_at
        self.interval = float(interval)
        self.waiting_since = waiting_since
        self.remind_at = remind_at

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "community_id": self.community_id,
                "milestone": self.milestone,
                "store": self.store,
                "checked_at": self.checked_at,
                "interval": self.interval,
                "waiting_since": self.waiting_since,
                "remind_at": self.remind_at,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        checked_at = dt.datetime.fromisoformat(self.checked_at)
        loop = asyncio.get_running_loop()
        waiter = Waiter(
            self.community_id, self.milestone, checked_at, self.interval, loop.create_future()
        )
        poller = poller_for(self.store)
        poller.register(waiter)
        self.log.info(
            "Waiting for %s of %s; %d wait(s) share one read of %s every %g s",
            self.milestone,
            self.community_id,
            sum(map(len, poller.waiters.values())),
            poller.key,
            poller.interval,
        )
        try:
            remind = _seconds_until(self.remind_at) if self.remind_at else None
            done, _ = await asyncio.wait({waiter.found}, timeout=remind)
            record = waiter.found.result() if done else None
            # Never within the first interval after the check (apache/airflow#72716).
            not_before = checked_at + dt.timedelta(seconds=self.interval)
            if (delay := (not_before - timezone.utcnow()).total_seconds()) > 0:
                await asyncio.sleep(delay)
        finally:
            poller.unregister(waiter)
        yield TriggerEvent(self._payload(record))

    def _payload(self, record: MilestoneRecord | None) -> dict[str, Any]:
        if record is None:
            self.log.info("%s is overdue (reminder due %s)", self.milestone, self.remind_at)
            return {"status": REMIND, "waiting_since": self.waiting_since}
        self.log.info("%s recorded by %s at %s", self.milestone, record.done_by, record.done_at)
        return {
            "status": RECORDED,
            "waiting_since": self.waiting_since,
            "done_by": record.done_by,
            "done_at": record.done_at.isoformat() if record.done_at else None,
            "note": record.note,
        }


def _seconds_until(moment: str) -> float:
    return max(0.0, (dt.datetime.fromisoformat(moment) - timezone.utcnow()).total_seconds())
