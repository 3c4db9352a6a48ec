"""Waiting at scale: 1,000 engagements each waiting on a milestone, simulated in virtual time.

The harness drives the real ``MilestoneSensor`` (the ``wait`` task of every milestone gate,
built with the same defaults as in the DAG: reschedule mode, ``DEFAULT_POKE_INTERVAL``) through
the real ``BaseSensorOperator.execute``: a poke that finds nothing raises
``AirflowRescheduleException(reschedule_date)``, the task ends and its worker slot is free
until the scheduler queues it again at ``reschedule_date``. The store is a real ``LocalStore``
behind a wrapper that counts every call the sensor makes (each is one Airtable request with
the Airtable store). Time is virtual: ``timezone.utcnow`` (the sensor's reschedule and timeout
arithmetic) and the sensor's "today" (the overdue check) follow the simulation clock.

For each poke interval and scenario:

1. N sensors start at random moments within one interval (runs are triggered at any time);
2. steady state: store requests per second over K intervals in which nothing is recorded;
3. then each milestone is recorded once, at a random moment within one interval, and the
   delay until its sensor notices it is measured (median, 95th percentile);
4. worker slots: a poke holds a slot for ``--task-seconds`` (a task process on a Celery worker,
   measured on the local topology by ``scripts/bench_topology.py``); between pokes the sensor
   is ``up_for_reschedule`` and holds none. A poke starts ``--dispatch-seconds`` after its
   reschedule date (scheduler loop + Celery queue + task start, also measured there).

Scenarios: ``on-time`` (milestones not yet due: one store read per poke) and ``overdue``
(every milestone past due: after the one overdue email, each poke also reads the engagement and
the action log, three reads per poke), the two bounds of any real mix.

    .venv/bin/python scripts/bench_waits.py            # 1,000 waits; the default interval
    .venv/bin/python scripts/bench_waits.py --intervals 1800 3600 7200
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import datetime as dt
import heapq
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

EPOCH = dt.datetime(2027, 1, 4, tzinfo=dt.UTC)
MILESTONE = "technical_meeting_held"


class Clock:
    """The simulation's time; what ``utcnow`` and the sensor's ``now`` return."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> dt.datetime:
        return EPOCH + dt.timedelta(seconds=self.t)


class CountingStore:
    """A store that forwards to a real one and counts the calls made while counting is on."""

    def __init__(self, inner: Any, clock: Clock) -> None:
        self._inner = inner
        self._clock = clock
        self.counting = False
        self.calls: list[tuple[float, str]] = []

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if not callable(target):
            return target

        def counted(*args: Any, **kwargs: Any) -> Any:
            if self.counting:
                self.calls.append((self._clock.t, name))
            return target(*args, **kwargs)

        return counted


@dataclass(order=True)
class Event:
    at: float
    seq: int
    kind: str = field(compare=False)  # "poke" or "record"
    wait: int = field(compare=False)


@dataclass
class Wait:
    community_id: str
    first_reschedule: dt.datetime | None = None
    reschedules: int = 0
    recorded_at: float | None = None
    noticed_at: float | None = None
    pokes: list[float] = field(default_factory=list)


class FakeTI:
    """What ``BaseSensorOperator.execute`` asks of the task instance in reschedule mode."""

    def __init__(self, wait: Wait) -> None:
        self.wait = wait

    def get_first_reschedule_date(self, context: Any) -> dt.datetime | None:
        return self.wait.first_reschedule


@contextlib.contextmanager
def virtual_time(clock: Clock) -> Iterator[None]:
    import airflow.sdk.timezone

    import engagements.sensors.milestone as milestone_module

    class VirtualDatetime(dt.datetime):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> dt.datetime:  # type: ignore[override]
            now = clock.now()
            return now if tz is None else now.astimezone(tz)

    shim = types.SimpleNamespace(
        datetime=VirtualDatetime, date=dt.date, timedelta=dt.timedelta, UTC=dt.UTC
    )
    with (
        mock.patch.object(airflow.sdk.timezone, "utcnow", clock.now),
        mock.patch.object(milestone_module, "dt", shim),
    ):
        yield


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


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def simulate(
    *,
    n: int,
    interval: float,
    overdue: bool,
    steady_intervals: int,
    task_seconds: float,
    dispatch_seconds: float,
    seed_value: int,
    workdir: Path,
) -> dict[str, Any]:
    from airflow.sdk.exceptions import AirflowRescheduleException

    from engagements.sensors.milestone import MilestoneSensor
    from engagements.settings import load_settings
    from engagements.store.local import LocalStore

    rng = random.Random(seed_value)
    clock = Clock()
    store = CountingStore(LocalStore(workdir / f"store-{interval:g}-{overdue}.sqlite"), clock)
    due = (
        (EPOCH - dt.timedelta(days=1)).date() if overdue else (EPOCH + dt.timedelta(days=60)).date()
    )
    waits = [Wait(cid) for cid in seed(store, n, due)]
    settings = load_settings()
    emails: collections.Counter[str] = collections.Counter()
    busy: list[tuple[float, int]] = []  # (time, +1/-1) worker slot taken / released

    def deliver(message: Any) -> None:
        emails[str(message["Message-ID"])] += 1

    events: list[Event] = []
    seq = 0

    def push(at: float, kind: str, index: int) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, Event(at, seq, kind, index))

    for i in range(n):
        push(rng.uniform(0, interval), "poke", i)
    steady_from = interval + dispatch_seconds + task_seconds
    steady_to = steady_from + steady_intervals * interval
    for i in range(n):
        push(steady_to + rng.uniform(0, interval), "record", i)

    reschedule_raised = 0
    held_between_pokes: set[int] = set()

    def slept_in_execute(seconds: float) -> None:
        # Poke mode sleeps inside execute between pokes: the task, and its slot, stay taken.
        held_between_pokes.add(current)
        raise RuntimeError("the sensor waited inside its task (poke mode)")

    current = -1
    started = time.perf_counter()
    with virtual_time(clock), mock.patch("airflow.sdk.bases.sensor.time.sleep", slept_in_execute):
        while events:
            event = heapq.heappop(events)
            clock.t = event.at
            wait = waits[event.wait]
            current = event.wait
            if event.kind == "record":
                store.record_milestone(wait.community_id, MILESTONE, by="bench", at=clock.now())
                wait.recorded_at = clock.t
                continue
            # A fresh task process runs the sensor, as on a worker; it holds a slot meanwhile.
            sensor = MilestoneSensor(
                task_id=f"{MILESTONE}.wait", milestone=MILESTONE, community_id=wait.community_id
            )
            assert sensor.mode == "reschedule", sensor.mode
            if interval != sensor.poke_interval:
                sensor.poke_interval = interval
            sensor.__dict__.update(store=store, settings=settings)
            sensor.deliver = deliver  # type: ignore[method-assign]
            context = {"ti": FakeTI(wait), "task_reschedule_count": wait.reschedules}
            wait.pokes.append(clock.t)
            busy.append((clock.t, +1))
            busy.append((clock.t + task_seconds, -1))
            store.counting = True
            try:
                sensor.execute(context)  # type: ignore[arg-type]
            except AirflowRescheduleException as reschedule:
                reschedule_raised += 1
                if wait.first_reschedule is None:
                    wait.first_reschedule = clock.now()
                wait.reschedules += 1
                # The task ends here: its slot is free until the scheduler queues it again.
                next_at = (reschedule.reschedule_date - EPOCH).total_seconds()
                push(next_at + dispatch_seconds, "poke", event.wait)
            except RuntimeError:
                if event.wait not in held_between_pokes:
                    raise
                push(clock.t + interval, "poke", event.wait)  # it would have kept its slot
            else:
                wait.noticed_at = clock.t
            finally:
                store.counting = False
    elapsed = time.perf_counter() - started

    in_window = [name for t, name in store.calls if steady_from <= t < steady_to]
    window = steady_to - steady_from
    delays = [w.noticed_at - w.recorded_at for w in waits if w.noticed_at is not None]
    assert len(delays) == n, "every recorded milestone must be noticed"
    # Slots in use over time: the most at once, and the average over the steady window.
    level = peak = 0
    slot_seconds = 0.0
    last = steady_from
    for t, change in sorted(busy):
        if steady_from <= t <= steady_to:
            slot_seconds += level * (t - last)
            last = t
        level += change
        peak = max(peak, level)
    slot_seconds += level * (steady_to - last) if last < steady_to else 0.0
    pokes_in_window = sum(1 for w in waits for t in w.pokes if steady_from <= t < steady_to)
    return {
        "n": n,
        "interval": interval,
        "scenario": "overdue" if overdue else "on-time",
        "requests_per_second": len(in_window) / window,
        "requests_by_method": dict(collections.Counter(in_window)),
        "pokes_per_second": pokes_in_window / window,
        "requests_per_poke": len(in_window) / pokes_in_window,
        "slots_held_between_pokes": len(held_between_pokes),
        "mean_slots_busy": slot_seconds / window,
        "peak_slots_busy": peak,
        "delay_median_s": statistics.median(delays),
        "delay_p95_s": percentile(delays, 0.95),
        "overdue_emails": sum(emails.values()),
        "overdue_emails_max_per_engagement": max(emails.values(), default=0),
        "reschedules": reschedule_raised,
        "cpu_seconds": elapsed,
    }


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    # Thousands of pokes: only errors (the sensor's per-poke info lines, and Airflow's warning
    # that execute() runs outside its task runner, which is the point of a harness).
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "ERROR"
    logging.disable(logging.WARNING)
    from engagements.sensors.milestone import DEFAULT_POKE_INTERVAL

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--waits", type=int, default=1000)
    parser.add_argument(
        "--intervals",
        type=float,
        nargs="+",
        default=[DEFAULT_POKE_INTERVAL],
        help=f"poke intervals, seconds (default: DEFAULT_POKE_INTERVAL = {DEFAULT_POKE_INTERVAL})",
    )
    parser.add_argument("--steady-intervals", type=int, default=4)
    # Measured by scripts/bench_topology.py on the 2-core machine (busy): a poke's task took
    # 7.3 s on the Celery worker, and started 12 s after its reschedule date.
    parser.add_argument("--task-seconds", type=float, default=7.0)
    parser.add_argument("--dispatch-seconds", type=float, default=12.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)

    results = []
    with tempfile.TemporaryDirectory(prefix="bench-waits-") as tmp:
        for interval in args.intervals:
            for overdue in (False, True):
                results.append(
                    simulate(
                        n=args.waits,
                        interval=interval,
                        overdue=overdue,
                        steady_intervals=args.steady_intervals,
                        task_seconds=args.task_seconds,
                        dispatch_seconds=args.dispatch_seconds,
                        seed_value=args.seed,
                        workdir=Path(tmp),
                    )
                )
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(
        f"{args.waits} waits, reschedule mode, {args.task_seconds:g} s per poke on a worker, "
        f"{args.dispatch_seconds:g} s dispatch; steady state over {args.steady_intervals} intervals"
    )
    header = (
        f"{'interval':>8} {'scenario':>8} {'req/s':>6} {'req/poke':>8} {'slots between':>13} "
        f"{'mean slots':>10} {'peak':>4} {'delay median':>12} {'delay p95':>9} {'emails':>6}"
    )
    print(header)
    for r in results:
        print(
            f"{r['interval']:>7g}s {r['scenario']:>8} {r['requests_per_second']:>6.3f} "
            f"{r['requests_per_poke']:>8.2f} {r['slots_held_between_pokes']:>13} "
            f"{r['mean_slots_busy']:>10.2f} {r['peak_slots_busy']:>4} "
            f"{r['delay_median_s'] / 60:>10.1f} m {r['delay_p95_s'] / 60:>7.1f} m "
            f"{r['overdue_emails']:>6}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
