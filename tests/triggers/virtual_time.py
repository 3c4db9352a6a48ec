"""An asyncio event loop whose clock is virtual: hours of trigger time pass in milliseconds.

The loop is a real ``SelectorEventLoop``; only its clock and its waiting change. When nothing
is ready and no thread is busy, waiting ``t`` seconds moves the clock ``t`` seconds at once.
While a thread started with ``asyncio.to_thread`` (a store read) works, the loop waits for it
in real time and the virtual clock stands still: a read takes no virtual time. ``utcnow()``
gives the wall-clock moment of the virtual clock, for code that reads the time of day
(patch ``airflow.sdk.timezone.utcnow`` with it).

Used by the trigger tests and by ``scripts/bench_waits.py`` (1,000 waits in virtual time).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import selectors
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

EPOCH = dt.datetime(2027, 1, 4, tzinfo=dt.UTC)


class _Selector(selectors.DefaultSelector):
    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeLoop | None = None

    def select(self, timeout: float | None = None) -> list[Any]:
        ready = super().select(0)
        loop = self.loop
        if ready or loop is None or timeout == 0:
            return ready
        if loop.busy_threads:  # a store read runs in a thread: wait for it in real time
            return super().select(0.01 if timeout is None else min(timeout, 0.01))
        if timeout is None:
            raise RuntimeError("virtual time: nothing scheduled and nothing running (deadlock)")
        loop.now += timeout
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self, start: dt.datetime = EPOCH) -> None:
        selector = _Selector()
        super().__init__(selector)
        selector.loop = self
        self.start = start
        self.now = 0.0
        self.busy_threads = 0

    def time(self) -> float:
        return self.now

    def utcnow(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=self.now)

    def run_in_executor(self, executor: Any, func: Callable[..., Any], *args: Any) -> Any:
        future = super().run_in_executor(executor, func, *args)
        self.busy_threads += 1

        def done(_: Any) -> None:
            self.busy_threads -= 1

        future.add_done_callback(done)
        return future


@contextlib.contextmanager
def virtual_clock(loop: VirtualTimeLoop) -> Iterator[VirtualTimeLoop]:
    """Airflow's ``timezone.utcnow`` (what the sensor and the trigger read) and the embedded
    store's clock (when it stamps a recording) follow the loop."""
    import airflow.sdk.timezone

    import engagements.store.base
    import engagements.store.local

    def store_now() -> dt.datetime:
        return engagements.store.base.as_utc(loop.utcnow())

    with (
        mock.patch.object(airflow.sdk.timezone, "utcnow", loop.utcnow),
        mock.patch.object(engagements.store.local, "utc_now", store_now),
    ):
        yield loop
