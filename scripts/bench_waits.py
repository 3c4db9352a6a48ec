"""Waiting at scale: 1,000 engagements each waiting on a milestone, simulated in virtual time.

Deferred waits (the default): the real ``MilestoneSensor`` (as ``milestone_gate`` builds it)
runs its ``execute`` as a task would: one store read, then ``TaskDeferred``. Its trigger is
serialized and rebuilt from the class path, as the triggerer does, and run in one event loop
(the triggerer's): the real ``MilestoneTrigger`` instances, sharing the real
``MilestonePoller``. When a trigger fires, the task resumes ``dispatch`` seconds later
(``execute_complete``: done, or the overdue notice and a new deferral). The loop's clock is
virtual (``tests/triggers/virtual_time.py``): hours pass in seconds, and Airflow's
``timezone.utcnow`` and the store's clock follow it. The store is a real ``LocalStore`` file
behind a wrapper that counts every call (one Airtable request each, one per 100 records for
the poll). What a deferred task costs a worker: ``--task-seconds`` per execution (measured
on the Celery topology), and nothing while deferred.

Reschedule-mode waits (``deferrable=False``, ``--reschedule``): the sensor's poke through
``BaseSensorOperator.execute`` (``AirflowRescheduleException``, the task ends, the scheduler
queues it again ``dispatch`` seconds after the reschedule date), at ``poke_interval``.

The settings measured are the production defaults (``Settings()``), whatever the environment
says (``make`` exports ``make run``'s 30 s poke interval); they are printed.

Scenarios: ``on-time`` (due in 60 days), ``overdue`` (every milestone already past due: the
notice at the first check), and for deferred waits ``due-passes`` (every due date passes
during the steady window: each task resumes once to notify). Phases: the waits start over
``--start-window`` seconds; steady state (nothing recorded) over ``--steady`` seconds; then
each milestone is recorded once at a random moment within ``--record-window`` seconds and the
delay until its task runs again and finds it is measured.

    .venv/bin/python scripts/bench_waits.py            # 1,000 deferred waits; the JSON line
    .venv/bin/python scripts/bench_waits.py --reschedule 1800 3600 7200
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as dt
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from tests.triggers.virtual_time import EPOCH, VirtualTimeLoop, virtual_clock  # noqa: E402

MILESTONE = "technical_meeting_held"


class CountingStore:
    """Forwards to a real store; records (virtual time, method) of every call."""

    def __init__(self, inner: Any, clock: Callable[[], float]) -> None:
        self._inner = inner
        self._clock = clock
        self.calls: list[tuple[float, str]] = []

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if not callable(target):
            return target

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((self._clock(), name))
            return target(*args, **kwargs)

        return counted


@dataclass
class Wait:
    community_id: str
    recorded_at: float | None = None
    noticed_at: float | None = None
    resumes: int = 0
    first_reschedule: dt.datetime | None = None
    reschedules: int = 0


@dataclass
class Run:
    """One scenario's timeline and counts."""

    waits: list[Wait]
    store: CountingStore
    busy: list[tuple[float, int]] = field(default_factory=list)
    emails: collections.Counter[str] = field(default_factory=collections.Counter)
    held_between_checks: set[int] = field(default_factory=set)
    executions: int = 0

    def task(self, at: float, seconds: float) -> None:
        self.busy += [(at, +1), (at + seconds, -1)]
        self.executions += 1


def seed(store: Any, n: int, due: dt.date) -> list[str]:
    from engagements.config import load_config

    base = load_config(ROOT / "include" / "communities" / "openscience.yaml").to_dict()
    ids = []
    for i in range(n):
        community_id = f"community{i:04d}"
        config = json.loads(json.dumps(base))
        config["community_id"] = community_id
        config["name"] = f"Community {i}"
        store.upsert_engagement(community_id, config["name"], config)
        store.plan_milestone(community_id, MILESTONE, due)
        ids.append(community_id)
    return ids


def sensor_for(run: Run, wait: Wait, settings: Any, *, deferrable: bool) -> Any:
    """A fresh task process's sensor, as ``milestone_gate`` builds it."""
    from engagements.sensors.milestone import MilestoneSensor

    sensor = MilestoneSensor(
        task_id=f"{MILESTONE}.wait",
        milestone=MILESTONE,
        community_id=wait.community_id,
        deferrable=deferrable,
    )
    sensor.__dict__.update(store=run.store, settings=settings)
    sensor.deliver = lambda message: run.emails.update([str(message["Message-ID"])])
    return sensor


@contextlib.contextmanager
def no_sleeping_in_tasks(run: Run, current: list[int]) -> Iterator[None]:
    """A sensor that waited inside its task (poke mode) would hold its worker slot."""

    def slept(seconds: float) -> None:
        run.held_between_checks.add(current[0])
        raise RuntimeError("the sensor waited inside its task")

    with mock.patch("airflow.sdk.bases.sensor.time.sleep", slept):
        yield


def simulate_deferred(args: argparse.Namespace, scenario: str, workdir: Path) -> dict[str, Any]:
    from airflow.sdk._shared.module_loading import import_string
    from airflow.sdk.exceptions import TaskDeferred

    import engagements.triggers.milestone as triggers
    from engagements.sensors.milestone import REMINDER_SPREAD
    from engagements.settings import Settings
    from engagements.store.local import LocalStore

    settings = Settings()  # the production defaults, not this environment's
    interval = settings.milestone_poll_seconds
    rng = random.Random(args.seed)
    steady_from = args.start_window
    steady = args.steady
    start = EPOCH
    if scenario == "due-passes":  # midnight (the first overdue day) an hour into the window
        steady = max(steady, (REMINDER_SPREAD + dt.timedelta(hours=2)).total_seconds())
        start = EPOCH - dt.timedelta(seconds=steady_from + 3600)
    steady_to = steady_from + steady
    loop = VirtualTimeLoop(start)
    store = CountingStore(LocalStore(workdir / f"deferred-{scenario}.sqlite"), loop.time)
    due = EPOCH + dt.timedelta(days=60 if scenario == "on-time" else -1)
    run = Run([Wait(c) for c in seed(store._inner, args.waits, due.date())], store)
    current = [-1]

    def execute(index: int, method: str | None = None, event: dict | None = None) -> None:
        """One task process on a worker: the first execute, or a resume after an event."""
        wait, now = run.waits[index], loop.time()
        current[0] = index
        run.task(now, args.task_seconds)
        sensor = sensor_for(run, wait, settings, deferrable=True)
        try:
            result = sensor.execute({}) if method is None else getattr(sensor, method)({}, event)
        except TaskDeferred as deferred:
            classpath, kwargs = deferred.trigger.serialize()
            trigger = import_string(classpath)(**json.loads(json.dumps(kwargs)))
            loop.create_task(hold(index, trigger, deferred.method_name))
            return
        if result is not None and wait.recorded_at is not None:
            wait.noticed_at = now

    async def hold(index: int, trigger: Any, method: str) -> None:
        """The triggerer: run the trigger until its event, then the scheduler queues the task."""
        event = await anext(trigger.run())
        run.waits[index].resumes += 1
        loop.call_later(args.dispatch_seconds, execute, index, method, event.payload)

    def record(index: int) -> None:
        wait = run.waits[index]
        store._inner.record_milestone(wait.community_id, MILESTONE, by="bench")
        wait.recorded_at = loop.time()

    for i in range(args.waits):
        loop.call_at(rng.uniform(0, args.start_window), execute, i)
    for i in range(args.waits):
        loop.call_at(steady_to + rng.uniform(0, args.record_window), record, i)

    async def until_all_noticed() -> None:
        deadline = steady_to + args.record_window + 10 * interval
        while any(w.noticed_at is None for w in run.waits) and loop.time() < deadline:
            await asyncio.sleep(interval)

    async def cancel_the_rest() -> None:
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def counted_store(reference: dict[str, str]) -> Any:
        return store  # the poller's store: the same file, counted

    started = time.perf_counter()
    with (
        virtual_clock(loop),
        mock.patch.object(triggers, "open_store", counted_store),
        no_sleeping_in_tasks(run, current),
    ):
        store.calls.clear()
        loop.run_until_complete(until_all_noticed())
        loop.run_until_complete(cancel_the_rest())
    loop.close()
    result = summarize(run, steady_from, steady_to, time.perf_counter() - started)
    polls = [t for t, name in store.calls if name == "list_milestones_recorded_since"]
    result.update(
        mode="deferred",
        scenario=scenario,
        interval=interval,
        polls=len(polls),
        task_executions=run.executions,
        requests_per_task_execution=(len(store.calls) - len(polls)) / run.executions,
        triggers_fired=sum(w.resumes for w in run.waits),
    )
    return result


def simulate_reschedule(
    args: argparse.Namespace, interval: int, scenario: str, workdir: Path
) -> dict[str, Any]:
    """``deferrable=False``: a poke per interval per wait, through BaseSensorOperator."""
    from airflow.sdk.exceptions import AirflowRescheduleException

    from engagements.settings import Settings
    from engagements.store.local import LocalStore

    settings = Settings(poke_interval=str(interval))
    rng = random.Random(args.seed)
    loop = VirtualTimeLoop(EPOCH)  # only its clock: pokes are callbacks at their times
    store = CountingStore(
        LocalStore(workdir / f"reschedule-{interval}-{scenario}.sqlite"), loop.time
    )
    due = (EPOCH + dt.timedelta(days=60 if scenario == "on-time" else -1)).date()
    run = Run([Wait(c) for c in seed(store._inner, args.waits, due)], store)
    steady_from = interval + args.dispatch_seconds + args.task_seconds
    steady_to = steady_from + args.reschedule_intervals * interval
    current = [-1]

    class FakeTI:
        def __init__(self, wait: Wait) -> None:
            self.wait = wait

        def get_first_reschedule_date(self, context: Any) -> dt.datetime | None:
            return self.wait.first_reschedule

    def poke(index: int) -> None:
        wait, now = run.waits[index], loop.time()
        current[0] = index
        run.task(now, args.task_seconds)
        sensor = sensor_for(run, wait, settings, deferrable=False)
        context = {"ti": FakeTI(wait), "task_reschedule_count": wait.reschedules}
        try:
            sensor.execute(context)
        except AirflowRescheduleException as reschedule:
            wait.first_reschedule = wait.first_reschedule or loop.utcnow()
            wait.reschedules += 1
            at = (reschedule.reschedule_date - EPOCH).total_seconds()
            loop.call_at(at + args.dispatch_seconds, poke, index)
        else:
            wait.noticed_at = now

    def record(index: int) -> None:
        store._inner.record_milestone(run.waits[index].community_id, MILESTONE, by="bench")
        run.waits[index].recorded_at = loop.time()

    for i in range(args.waits):
        loop.call_at(rng.uniform(0, interval), poke, i)
        loop.call_at(steady_to + rng.uniform(0, interval), record, i)

    async def until_all_noticed() -> None:
        while any(w.noticed_at is None for w in run.waits):
            await asyncio.sleep(60)

    started = time.perf_counter()
    with virtual_clock(loop), no_sleeping_in_tasks(run, current):
        store.calls.clear()
        loop.run_until_complete(until_all_noticed())
    loop.close()
    result = summarize(run, steady_from, steady_to, time.perf_counter() - started)
    result.update(mode="reschedule", scenario=scenario, interval=interval)
    return result


def summarize(run: Run, steady_from: float, steady_to: float, cpu: float) -> dict[str, Any]:
    window = steady_to - steady_from
    in_window = [name for t, name in run.store.calls if steady_from <= t < steady_to]
    delays = [w.noticed_at - w.recorded_at for w in run.waits if w.noticed_at and w.recorded_at]
    if len(delays) != len(run.waits):
        raise RuntimeError(f"only {len(delays)} of {len(run.waits)} recordings were noticed")
    level = peak = 0
    slot_seconds, last = 0.0, steady_from
    peak_in_window = 0
    for t, change in sorted(run.busy):
        if steady_from <= t <= steady_to:
            slot_seconds += level * (t - last)
            last = t
        level += change
        peak = max(peak, level)
        if steady_from <= t < steady_to:
            peak_in_window = max(peak_in_window, level)
    slot_seconds += level * (steady_to - last) if last < steady_to else 0.0
    return {
        "waits": len(run.waits),
        "requests_per_second": len(in_window) / window,
        "requests_by_method": dict(collections.Counter(in_window)),
        "requests_total": len(run.store.calls),
        "steady_window_s": window,
        "notice_median_s": statistics.median(delays),
        "notice_p95_s": percentile(delays, 0.95),
        "worker_slots_between_checks": len(run.held_between_checks),
        "task_processes_in_steady_window_max": peak_in_window,
        "mean_slots_busy": slot_seconds / window,
        "peak_slots_busy": peak,
        "overdue_emails": sum(run.emails.values()),
        "overdue_emails_max_per_wait": max(run.emails.values(), default=0),
        "cpu_seconds": cpu,
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    # Thousands of task executions: only errors (the sensor's and trigger's info lines, and
    # Airflow's warning that execute() runs outside its task runner, the point of a harness).
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "ERROR"
    logging.disable(logging.WARNING)
    from engagements.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--waits", type=int, default=1000)
    parser.add_argument("--start-window", type=float, default=3600)
    parser.add_argument("--steady", type=float, default=4 * 3600, help="seconds, deferred")
    parser.add_argument("--record-window", type=float, default=3600)
    parser.add_argument(
        "--reschedule",
        type=int,
        nargs="*",
        metavar="INTERVAL",
        help="also simulate deferrable=False at these poke intervals (none given: the default)",
    )
    parser.add_argument("--reschedule-intervals", type=int, default=4)
    # Measured on the 2-core machine by scripts/bench_topology.py (Celery worker, busy): a
    # task's execution took 7 s on the worker, and started 12 s after it was due.
    parser.add_argument("--task-seconds", type=float, default=7.0)
    parser.add_argument("--dispatch-seconds", type=float, default=12.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    defaults = Settings()
    ignored = {
        name: os.environ[name]
        for name in ("ENGAGEMENTS_MILESTONE_POLL_INTERVAL", "ENGAGEMENTS_POKE_INTERVAL")
        if name in os.environ
    }
    print(
        f"settings measured (production defaults): milestone_poll_interval="
        f"{defaults.milestone_poll_interval} s, poke_interval={defaults.poke_interval} s"
        + (f"; ignored from the environment: {ignored}" if ignored else "")
    )
    print(
        f"{args.waits} waits; a task's execution holds a worker slot {args.task_seconds:g} s and "
        f"starts {args.dispatch_seconds:g} s after it is due"
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-waits-") as tmp:
        for scenario in ("on-time", "overdue", "due-passes"):
            results.append(simulate_deferred(args, scenario, Path(tmp)))
        if args.reschedule is not None:
            for interval in args.reschedule or [defaults.poke_seconds]:
                for scenario in ("on-time", "overdue"):
                    results.append(simulate_reschedule(args, interval, scenario, Path(tmp)))
    print(
        f"{'mode':>10} {'interval':>8} {'scenario':>10} {'req/s':>7} {'slots between':>13} "
        f"{'mean slots':>10} {'peak':>4} {'notice median':>13} {'p95':>7} {'emails':>6}"
    )
    for r in results:
        print(
            f"{r['mode']:>10} {r['interval']:>7g}s {r['scenario']:>10} "
            f"{r['requests_per_second']:>7.4f} {r['worker_slots_between_checks']:>13} "
            f"{r['mean_slots_busy']:>10.2f} {r['peak_slots_busy']:>4} "
            f"{r['notice_median_s']:>11.1f} s {r['notice_p95_s']:>5.1f} s "
            f"{r['overdue_emails']:>6}"
        )
    for r in results:
        print(json.dumps(r), file=sys.stderr)
    on_time, overdue = results[0], results[1]
    delays_median = max(on_time["notice_median_s"], overdue["notice_median_s"])
    delays_p95 = max(on_time["notice_p95_s"], overdue["notice_p95_s"])
    print(
        json.dumps(
            {
                "waits": args.waits,
                "requests_per_s_on_time": round(on_time["requests_per_second"], 4),
                "requests_per_s_overdue": round(overdue["requests_per_second"], 4),
                "notice_median_s": round(delays_median, 1),
                "notice_p95_s": round(delays_p95, 1),
                "worker_slots_between_checks": max(
                    on_time["worker_slots_between_checks"]
                    + on_time["task_processes_in_steady_window_max"],
                    overdue["worker_slots_between_checks"]
                    + overdue["task_processes_in_steady_window_max"],
                ),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
