"""Fan-out: the quarterly check-in and the renewal scans over 500 communities.

Drives the real operators of the two DAGs, in this process, against two stores:

- the production ``AirtableStore`` over HTTP to the fake Airtable of ``tests/store`` (a real
  server on loopback that pages at 100 records and evaluates formulas): every HTTP request is
  counted, which is what Airtable's 5 requests per second per base is about;
- the embedded ``LocalStore`` (SQLite), whose calls are counted by a wrapper.

Steps, for ``--communities`` engagements (all Active; contract ends spread over a year; each
with the history an onboarding leaves in the store: 15 milestones done and 20 actions, so that
a pass over a table reads as many pages as it would in production):

1. ``engagement_quarterly_checkin.select_engagements`` (``SelectCheckinOperator``) on the first
   day of a quarter: who is due a check-in; one pass per table, the meeting milestones
   planned in batches, each community's records handed to its mapped check-in;
2. the first task of each mapped check-in, ``report_and_invite`` (``CheckinReportOperator``),
   with the records the scan gave it: report, invitation email (delivered to a counter). Cost
   APIs are left out (no cost connection: the report says so), they are not the store;
3. ``engagement_renewal_scan.find_due`` (``DueRenewalsOperator``): engagements ending within
   60 days whose renewal is not open yet; their decision milestones planned in batches;
4. the scan's mapped ``start_decision_runs`` (``StartDagRunOperator``, one task per due
   community): each starts one decision run of ``engagement_renewal``. Here the real operator
   (through the standard provider's ``TriggerDagRunOperator``) raises its
   ``DagRunTriggerException`` (the request to start the run) and the requests are
   counted; the API server creating the runs is not part of this harness;
5. the first task of each decision run the scan starts, ``open_renewal``
   (``OpenRenewalOperator``), with the run's conf as the scan wrote it: status Renewal, the
   "opened" record and the email to BD.

The figure the design is held to: store requests per community, writes included (check-in:
steps 1-2 over the communities checked in; renewal: steps 3-5 over the renewals opened).

Measured: the store requests of each step and its wall time in this process (the median of
``--repeat`` runs, each on a fresh store): the scans' store reads and the fan-outs' work, the
mapped tasks one after another, against the fake Airtable on loopback (no network latency, no
rate limit) and against SQLite. Not measured, estimated: real Airtable's floor of requests / 5
per second per base, and the parallel wall time on a topology (up to ``max_active_tasks`` per
run and the Celery worker's slots, each mapped task also paying its task start-up).

    .venv/bin/python scripts/bench_fanout.py [--communities 500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

TOKEN = "patBENCHtoken0123456789.abcdefFANOUT"
BASE_ID = "appBENCHbase01234"
CHECKIN_AT = dt.datetime(2027, 4, 1, 6, tzinfo=dt.UTC)
RENEWAL_AT = dt.datetime(2027, 9, 1, 6, tzinfo=dt.UTC)
AIRTABLE_REQUESTS_PER_SECOND = 5


class CountingStore:
    """Forwards to a store; counts the calls."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls: collections.Counter[str] = collections.Counter()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if not callable(target):
            return target

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return target(*args, **kwargs)

        return counted


class FakeTI:
    """What the operators ask of their task instance: XCom pushes, whether the run exists, and
    the target DAG's state (the renewal DAG, unpaused as in production)."""

    try_number = 1

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value

    def get_dr_count(self, dag_id: str, run_ids: list[str]) -> int:
        return 0  # fresh stores: no run was started before

    def get_dag(self, dag_id: str) -> Any:
        from types import SimpleNamespace

        return SimpleNamespace(dag_id=dag_id, is_paused=False)


def configs(n: int) -> list[dict[str, Any]]:
    """``n`` copies of the example, contracts started 2026-12-01, ends over a year from 2027-09."""
    from engagements.config import load_config

    base = load_config(ROOT / "include" / "communities" / "openscience.yaml").to_dict()
    out = []
    for i in range(n):
        config = json.loads(json.dumps(base, default=str))
        config["community_id"] = f"community{i:03d}"
        config["name"] = f"Community {i}"
        config["contract"]["start"] = "2026-12-01"
        config["contract"]["end"] = (
            RENEWAL_AT.date() + dt.timedelta(days=i * 365 // n)
        ).isoformat()
        out.append(config)
    return out


class Meter:
    """Requests and wall time of one step."""

    def __init__(self, count: Callable[[], dict[str, int]]) -> None:
        self.count = count

    def measure(self, step: Callable[[], Any]) -> tuple[Any, dict[str, Any]]:
        before = self.count()
        started = time.perf_counter()
        value = step()
        seconds = time.perf_counter() - started
        after = self.count()
        by = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        by = {k: v for k, v in by.items() if v}
        return value, {"requests": sum(by.values()), "by": by, "seconds": seconds}


def run_steps(store: Any, meter: Meter, artifacts: Path) -> dict[str, Any]:
    from airflow.sdk.exceptions import DagRunTriggerException

    from engagements.costs import NoCostSource
    from engagements.operators.checkin import CheckinReportOperator, SelectCheckinOperator
    from engagements.operators.renewal import DueRenewalsOperator, OpenRenewalOperator
    from engagements.operators.runs import StartDagRunOperator
    from engagements.renewal import RENEWAL_DAG_ID
    from engagements.settings import Settings

    settings = Settings(artifacts_dir=str(artifacts))
    emails: list[str] = []

    def prepare(op: Any) -> Any:
        op.__dict__.update(store=store, settings=settings)
        op.deliver = lambda message: emails.append(str(message["To"]))
        return op

    def no_costs(*args: Any, **kwargs: Any) -> Any:
        raise NoCostSource("benchmark: cost APIs are not measured here")

    results: dict[str, Any] = {}

    select = prepare(
        SelectCheckinOperator(task_id="select_engagements", community_id="", quarter="")
    )
    selected, results["checkin_scan"] = meter.measure(
        lambda: select.execute({"logical_date": CHECKIN_AT, "ti": FakeTI()})  # type: ignore[arg-type]
    )
    results["checkin_scan"]["selected"] = len(selected)

    def checkins() -> int:
        for item in selected:
            op = prepare(
                CheckinReportOperator(
                    task_id="checkin.report_and_invite",
                    community_id=item["community_id"],
                    quarter=item["quarter"],
                    shared_account=item["shared_account"],
                    records=item["records"],
                )
            )
            op.fetch_costs = no_costs  # type: ignore[method-assign]
            op.execute({"logical_date": CHECKIN_AT, "ti": FakeTI()})  # type: ignore[arg-type]
        return len(selected)

    sent = len(emails)
    tasks, results["checkin_fanout"] = meter.measure(checkins)
    results["checkin_fanout"].update(tasks=tasks, emails=len(emails) - sent)

    with mock.patch("engagements.operators.renewal.clock_now", return_value=RENEWAL_AT):
        find_due = prepare(DueRenewalsOperator(task_id="find_due"))
        due, results["renewal_scan"] = meter.measure(
            lambda: find_due.execute({"ti": FakeTI()})  # type: ignore[arg-type]
        )
        results["renewal_scan"]["due"] = len(due)

        started: list[str] = []

        def start_runs() -> int:
            # expand_kwargs(due.output): one mapped task per due community.
            for item in due:
                op = StartDagRunOperator(
                    task_id="start_decision_runs", trigger_dag_id=RENEWAL_DAG_ID, **item
                )
                try:
                    op.execute({"ti": FakeTI()})  # type: ignore[arg-type]
                except DagRunTriggerException as request:
                    started.append(request.dag_run_id)
            return len(due)

        tasks, results["renewal_start"] = meter.measure(start_runs)
        results["renewal_start"].update(tasks=tasks, runs=len(set(started)))

        def renewals() -> int:
            for item in due:
                conf = item["conf"]
                op = prepare(
                    OpenRenewalOperator(
                        task_id="open_renewal",
                        decision_task_id="renewal_decided",
                        community_id=conf["community_id"],
                    )
                )
                op.execute({"params": conf, "run_id": item["trigger_run_id"], "ti": FakeTI()})  # type: ignore[arg-type]
            return len(due)

        sent = len(emails)
        tasks, results["renewal_fanout"] = meter.measure(renewals)
        results["renewal_fanout"].update(tasks=tasks, emails=len(emails) - sent)
    return results


HISTORY_ACTIONS = 20
DONE = "2027-01-15T12:00:00.000Z"


def history(community_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What an onboarding leaves in the store, as Airtable rows: 15 milestones done (the seven
    of onboarding, the eight trainings) and 20 actions (emails, documents, follow-ups)."""
    from engagements.milestones import ONBOARDING_MILESTONES, TRAINING_MILESTONES

    milestones = [
        {"Key": f"{community_id}/{m.key}", "Community ID": community_id, "Milestone": m.key,
         "Done at": DONE, "Done by": "bench"}
        for m in ONBOARDING_MILESTONES + TRAINING_MILESTONES
    ]  # fmt: skip
    actions = [
        {"Key": f"{community_id}/history:{n:02d}", "Community ID": community_id,
         "Action": f"history:{n:02d}", "Kind": "email", "Created at": DONE,
         "Detail": json.dumps({"n": n})}
        for n in range(HISTORY_ACTIONS)
    ]  # fmt: skip
    return milestones, actions


def seed(store: Any, items: list[dict[str, Any]], fake: Any = None) -> None:
    """Active engagements with their history: into the fake's tables directly (as if entered
    over the years), or into the SQLite file in one transaction."""
    import sqlite3

    for config in items:
        store.upsert_engagement(config["community_id"], config["name"], config, status="Active")
    rows = [history(config["community_id"]) for config in items]
    if fake is not None:
        fake.seed("Milestones", [m for milestones, _ in rows for m in milestones])
        fake.seed("Actions", [a for _, actions in rows for a in actions])
        return
    store.get_engagement(items[0]["community_id"])  # the file and its schema exist
    done = DONE.replace("Z", "+00:00")
    with sqlite3.connect(store.path) as db:
        db.executemany(
            "INSERT INTO milestones (community_id, milestone, done_at, done_by, recorded_at)"
            " VALUES (?, ?, ?, ?, ?)",
            [(m["Community ID"], m["Milestone"], done, "bench", done)
             for milestones, _ in rows for m in milestones],
        )  # fmt: skip
        db.executemany(
            "INSERT INTO actions (community_id, key, kind, created_at, detail)"
            " VALUES (?, ?, ?, ?, ?)",
            [(a["Community ID"], a["Action"], a["Kind"], done, a["Detail"])
             for _, actions in rows for a in actions],
        )  # fmt: skip


def bench_airtable(items: list[dict[str, Any]], artifacts: Path) -> dict[str, Any]:
    from engagements.store.airtable import AirtableStore
    from tests.store.fake_airtable import FakeAirtable

    with FakeAirtable(TOKEN, BASE_ID) as fake:
        store = AirtableStore.from_credentials(
            TOKEN, BASE_ID, endpoint_url=fake.url, backoff=0, timeout=(5.0, 30.0)
        )
        seed(store, items, fake)

        def count() -> dict[str, int]:
            return dict(collections.Counter(r.path.split("/")[3] for r in list(fake.requests)))

        return run_steps(store, Meter(count), artifacts / "airtable")


def bench_local(items: list[dict[str, Any]], artifacts: Path) -> dict[str, Any]:
    from engagements.store.local import LocalStore

    local = LocalStore(artifacts / "local" / "store.sqlite")
    seed(local, items)
    store = CountingStore(local)
    return run_steps(store, Meter(lambda: dict(store.calls)), artifacts / "local")


STEPS = ("checkin_scan", "checkin_fanout", "renewal_scan", "renewal_start", "renewal_fanout")


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One result per step: the counts (the same in every run) and the median wall time."""
    out: dict[str, Any] = {}
    for step in STEPS:
        first = runs[0][step]
        for run in runs[1:]:
            counts = {k: v for k, v in run[step].items() if k != "seconds"}
            if counts != {k: v for k, v in first.items() if k != "seconds"}:
                raise RuntimeError(f"{step}: the counts differ between runs: {counts} != {first}")
        seconds = [run[step]["seconds"] for run in runs]
        out[step] = {**first, "seconds": statistics.median(seconds), "all_seconds": seconds}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--communities", type=int, default=500)
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs on fresh stores; wall times are the median"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.pop("AIRFLOW_CONN_SMTP_DEFAULT", None)
    # Only errors: each task's info lines, and Airflow's warning that execute() runs outside
    # its task runner (which is the point of this harness).
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "ERROR"
    logging.disable(logging.WARNING)

    items = configs(args.communities)
    airtable_runs, local_runs = [], []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
            airtable_runs.append(bench_airtable(items, Path(tmp)))
            local_runs.append(bench_local(items, Path(tmp)))
    results = {
        "communities": args.communities,
        "repeat": args.repeat,
        "airtable": median_of(airtable_runs),
        "local": median_of(local_runs),
    }
    a = results["airtable"]
    summary = {
        "communities": args.communities,
        "checkin_requests_per_community": round(
            (a["checkin_scan"]["requests"] + a["checkin_fanout"]["requests"])
            / a["checkin_scan"]["selected"],
            3,
        ),
        "renewal_requests_per_renewal": round(
            sum(a[step]["requests"] for step in ("renewal_scan", "renewal_start", "renewal_fanout"))
            / a["renewal_fanout"]["tasks"],
            3,
        ),
    }
    if args.json:
        print(json.dumps(results | {"summary": summary}, indent=2))
        return 0
    print(
        f"{args.communities} Active communities; mapped tasks run one after another in this "
        f"process; wall = median of {args.repeat} measured runs"
    )
    print(
        f"{'step':<15} {'tasks':>5} {'Airtable req':>12} {'req/task':>8} {'wall (fake)':>11} "
        f"{'ms/task':>7} {'SQLite calls':>12} {'wall (SQLite)':>13} {'est. 5 req/s':>12}"
    )
    for step in STEPS:
        a, local = results["airtable"][step], results["local"][step]
        tasks = 1 if step.endswith("scan") else a["tasks"]
        print(
            f"{step:<15} {tasks:>5} {a['requests']:>12} {a['requests'] / tasks:>8.1f} "
            f"{a['seconds']:>10.2f}s {a['seconds'] * 1000 / tasks:>7.0f} "
            f"{local['requests']:>12} {local['seconds']:>12.2f}s "
            f"{a['requests'] / AIRTABLE_REQUESTS_PER_SECOND:>11.0f}s"
        )
    scan = results["airtable"]
    print(
        f"check-in: {scan['checkin_scan']['selected']} selected; "
        f"renewal: {scan['renewal_scan']['due']} due within 60 days of {RENEWAL_AT.date()}, "
        f"{scan['renewal_start']['runs']} decision runs started (distinct run ids)"
    )
    print("Airtable requests by table:", json.dumps({k: v["by"] for k, v in scan.items()}))
    print(
        "Measured: requests and wall times above (fake Airtable on loopback: no network "
        "latency, no rate limit). Estimated, not measured: 'est. 5 req/s' = requests / "
        f"{AIRTABLE_REQUESTS_PER_SECOND}, real Airtable's floor for one base."
    )
    print(
        "Airtable requests per community, writes included (targets: check-in <= 2 per "
        "community checked in, renewal <= 3 per renewal opened):"
    )
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
