"""200 milestone waits deferred to the triggerer of the local Celery topology, measured.

Starts a private topology (``scripts/topology.sh`` through ``tests/topology/harness.py``: its
own folder and free loopback ports, the production default settings; everything it started is
stopped at the end), seeds ``--waits`` Active communities, and unpauses
``engagement_quarterly_checkin``: the scheduler starts the latest quarter's check-in, one mapped
check-in per community, each of which reports, invites and then waits on its meeting
milestone, deferred to the triggerer. Once every wait is deferred it measures, over
``--window`` seconds with nothing recorded:

- the triggerer: resident memory (every process of its group) and CPU time, against the same
  figures taken before the run started;
- store requests per second: every call into the store by every process of the topology,
  counted by a wrapper that ``sitecustomize`` puts around ``LocalStore``;
- what holds a worker slot: task instances running (and deferred), sampled every few seconds;

then records ``--recorded`` of the milestones with ``engagements milestone mark``, one after
another, and measures for each the delay from the CLI's return to its wait's task instance
ending in success (median, 95th percentile).

    .venv/bin/python scripts/bench_topology.py [--waits 200] [--recorded 50]
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from tests.topology.harness import Api, Topology  # noqa: E402
from tests.topology.race import seed_active  # noqa: E402

DAG_ID = "engagement_quarterly_checkin"
WAIT = "checkin.checkin_held.wait"
POLL = "list_milestones_recorded_since"

SITECUSTOMIZE = textwrap.dedent(
    '''
    """Benchmark only: log every LocalStore call (time, pid, method, community, key)."""
    import os

    _LOG = os.environ.get("BENCH_STORE_CALLS_LOG")
    if _LOG:
        try:
            import functools
            import time

            from engagements.store.local import LocalStore

            def _wrap(name, method):
                @functools.wraps(method)
                def counted(self, *args, **kwargs):
                    line = "%.3f %d %s %s\\n" % (
                        time.time(), os.getpid(), name, " ".join(map(str, args[:2]))
                    )
                    fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                    try:
                        os.write(fd, line.encode())
                    finally:
                        os.close(fd)
                    return method(self, *args, **kwargs)

                return counted

            for _name in [n for n in vars(LocalStore) if not n.startswith("_")]:
                if callable(getattr(LocalStore, _name)):
                    setattr(LocalStore, _name, _wrap(_name, getattr(LocalStore, _name)))
        except Exception as exc:  # never break a process over a benchmark
            print("bench sitecustomize: not counting:", exc)
    '''
)


def read_calls(path: Path, since: float, until: float) -> list[tuple[float, str]]:
    calls = []
    if path.exists():
        for line in path.read_text().splitlines():
            parts = line.split(" ", 3)
            if since <= float(parts[0]) < until:
                calls.append((float(parts[0]), parts[2]))
    return calls


def group_usage(topology: Topology, component: str) -> tuple[float, float]:
    """Resident MB and CPU seconds of every process in a component's process group."""
    pid = int((topology.directory / "run" / f"{component}.pid").read_text().split()[0])
    tick = os.sysconf("SC_CLK_TCK")
    rss = cpu = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) != pid:  # process group id
                continue
            cpu += (int(fields[11]) + int(fields[12])) / tick
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1]) / 1024
        except (OSError, ValueError):
            continue
    return rss, cpu


def mapped(api: Api, run_id: str, **params: Any) -> list[dict[str, Any]]:
    tis, offset = [], 0
    while True:
        data = api.call(
            "GET",
            f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances",
            params={"limit": 100, "offset": offset, **params},
        )
        tis += data["task_instances"]
        offset += 100
        if offset >= data["total_entries"]:
            return tis


def count(api: Api, run_id: str, state: str) -> int:
    data = api.call(
        "GET",
        f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances",
        params={"state": state, "limit": 1},
    )
    return data["total_entries"]


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run(args: argparse.Namespace) -> dict[str, Any]:
    from engagements.checkin import Quarter
    from engagements.milestones import CHECKIN_HELD

    work = Path(tempfile.mkdtemp(prefix="bench-topology-"))
    work.chmod(0o755)
    (work / "site").mkdir()
    (work / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    calls_log = work / "store-calls.log"
    topology = Topology(work / "topology", poke_interval=7200)  # production intervals
    topology.script_env["PYTHONPATH"] = str(work / "site")
    topology.script_env["BENCH_STORE_CALLS_LOG"] = str(calls_log)
    topology.script_env["TOPOLOGY_WORKER_CONCURRENCY"] = str(args.concurrency)
    result: dict[str, Any] = {"waits": args.waits, "load_average_start": load_average()}

    with topology.running(keep_on_failure=True):
        api = topology.client()
        api.wait_for_dag(DAG_ID)
        communities = seed_active(topology, args.waits)
        time.sleep(5)
        idle_rss, _ = group_usage(topology, "triggerer")
        started = time.time()
        api.unpause(DAG_ID)
        while not (runs := api.call("GET", f"/dags/{DAG_ID}/dagRuns")["dag_runs"]):
            time.sleep(2)
        (checkin,) = runs
        run_id = checkin["dag_run_id"]
        logical = dt.datetime.fromisoformat(checkin["logical_date"].replace("Z", "+00:00"))
        milestone = CHECKIN_HELD.key(str(Quarter.of(logical.date())))
        deadline = time.monotonic() + args.settle_timeout
        while (deferred := count(api, run_id, "deferred")) < args.waits:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {deferred} waits deferred after {args.settle_timeout}s")
            time.sleep(5)
        result["seconds_to_all_deferred"] = time.time() - started
        print(f"all {deferred} waits deferred after {result['seconds_to_all_deferred']:.0f} s",
              flush=True)  # fmt: skip

        window_start = time.time()
        _, cpu_before = group_usage(topology, "triggerer")
        samples = []
        while time.time() - window_start < args.window:
            rss, _ = group_usage(topology, "triggerer")
            samples.append(
                {
                    "running": count(api, run_id, "running"),
                    "deferred": count(api, run_id, "deferred"),
                    "rss": rss,
                }
            )
            time.sleep(args.sample_every)
        window_end = time.time()
        _, cpu_after = group_usage(topology, "triggerer")
        calls = read_calls(calls_log, window_start, window_end)
        window = window_end - window_start
        result["steady"] = {
            "window_s": window,
            "load_average": load_average(),
            "triggerer_rss_mb_idle": idle_rss,
            "triggerer_rss_mb_mean": statistics.mean(s["rss"] for s in samples),
            "triggerer_rss_mb_max": max(s["rss"] for s in samples),
            "triggerer_cpu_percent": 100 * (cpu_after - cpu_before) / window,
            "store_requests": len(calls),
            "store_requests_per_second": len(calls) / window,
            "by_method": dict(collections.Counter(name for _, name in calls)),
            "deferred_mean": statistics.mean(s["deferred"] for s in samples),
            "running_mean": statistics.mean(s["running"] for s in samples),
            "running_max": max(s["running"] for s in samples),
        }
        polls = sorted(t for t, name in calls if name == POLL)
        gaps = [b - a for a, b in itertools.pairwise(polls)]
        result["steady"]["poll_period_median_s"] = statistics.median(gaps) if gaps else None
        print(json.dumps(result["steady"], indent=2), flush=True)

        recorded_at: dict[str, float] = {}
        for community_id in communities[: args.recorded]:
            subprocess.run(
                [str(ROOT / ".venv" / "bin" / "engagements"), "milestone", "mark",
                 community_id, milestone, "--note", "bench"],
                env=topology.env, check=True, capture_output=True, timeout=120,
            )  # fmt: skip
            recorded_at[community_id] = time.time()
        deadline = time.monotonic() + 600
        done: dict[str, float] = {}
        while len(done) < len(recorded_at) and time.monotonic() < deadline:
            for ti in mapped(api, run_id, task_id=WAIT, state="success"):
                community_id = ti["rendered_map_index"]
                if community_id in recorded_at and ti["end_date"]:
                    end = dt.datetime.fromisoformat(ti["end_date"].replace("Z", "+00:00"))
                    done[community_id] = end.timestamp()
            time.sleep(3)
        delays = sorted(done[c] - recorded_at[c] for c in done)
        result["recording"] = {
            "recorded": len(recorded_at),
            "succeeded": len(done),
            "delay_median_s": statistics.median(delays) if delays else None,
            "delay_p95_s": delays[round(0.95 * (len(delays) - 1))] if delays else None,
            "delay_max_s": max(delays) if delays else None,
            "load_average": load_average(),
        }
        print(json.dumps(result["recording"], indent=2), flush=True)
        api.close()
    shutil.rmtree(work, ignore_errors=True)  # kept (with the logs) when something failed
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--waits", type=int, default=200)
    parser.add_argument("--recorded", type=int, default=50)
    parser.add_argument("--window", type=float, default=300, help="steady-state seconds")
    parser.add_argument("--sample-every", type=float, default=5)
    parser.add_argument("--concurrency", type=int, default=16, help="Celery worker slots")
    parser.add_argument("--settle-timeout", type=float, default=2400)
    parser.add_argument("--out", type=Path, help="also write the results here as JSON")
    args = parser.parse_args(argv)
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
