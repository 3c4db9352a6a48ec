"""50 concurrent onboarding runs on the local Celery topology, measured while they wait.

Starts a private topology (``scripts/topology.sh`` through ``tests/topology/harness.py``: its
own folder and free loopback ports; everything it started is stopped at the end), seeds 50
communities (copies of the example with their own ids), triggers ``engagement_onboarding`` for
each through the REST API, and once every run waits on its first milestones measures:

- worker slots in use: task instances ``running`` (each holds a Celery worker slot) against
  those ``up_for_reschedule`` (waiting, holding nothing), sampled every few seconds;
- store requests per second: every call into the store, counted by a wrapper that
  ``sitecustomize`` puts around ``LocalStore`` in every process of the topology;
- the delay between recording a milestone (``engagements milestone mark``) and its sensor's
  task succeeding;
- the per-poke cost on a worker (task duration) and the dispatch delay (reschedule date to the
  next poke), the two inputs of ``scripts/bench_waits.py``.

    .venv/bin/python scripts/bench_topology.py [--runs 50] [--poke-interval 180]
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import itertools
import json
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from tests.topology.harness import Api, Topology  # noqa: E402

DAG_ID = "engagement_onboarding"
FIRST_WAITS = ("rollout_coordinator_identified", "technical_meeting_scheduled")
RECORDED = "rollout_coordinator_identified"

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


def community_configs(n: int, folder: Path) -> list[Path]:
    import yaml

    base = yaml.safe_load((ROOT / "include" / "communities" / "openscience.yaml").read_text())
    paths = []
    for i in range(1, n + 1):
        config = json.loads(json.dumps(base, default=str))
        config["community_id"] = f"bench{i:02d}"
        config["name"] = f"Bench Community {i}"
        config["github_org"] = f"bench{i:02d}-org"
        config["hubs"]["community"]["allowed_teams"] = [f"bench{i:02d}-org:hub-users"]
        path = folder / f"bench{i:02d}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        paths.append(path)
    return paths


def read_calls(path: Path, since: float, until: float) -> list[tuple[float, str, str]]:
    calls = []
    if not path.exists():
        return calls
    for line in path.read_text().splitlines():
        parts = line.split(" ", 3)
        t = float(parts[0])
        if since <= t < until:
            calls.append((t, parts[2], parts[3] if len(parts) > 3 else ""))
    return calls


COUNTED_STATES = ("queued", "running", "up_for_reschedule", "scheduled")


def states(api: Api) -> dict[str, int]:
    """How many task instances of every onboarding run are in each state."""
    counts = {}
    for state in COUNTED_STATES:
        data = api.call(
            "GET", f"/dags/{DAG_ID}/dagRuns/~/taskInstances", params={"state": state, "limit": 1}
        )
        counts[state] = data["total_entries"]
    return counts


def tis(api: Api, **params: Any) -> list[dict[str, Any]]:
    data = api.call(
        "GET", f"/dags/{DAG_ID}/dagRuns/~/taskInstances", params={"limit": 1000, **params}
    )
    return data["task_instances"]


def parse_time(value: str) -> float:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def run(args: argparse.Namespace) -> dict[str, Any]:
    from engagements.config import load_config
    from engagements.params import flatten_config

    work = Path(tempfile.mkdtemp(prefix="bench-topology-"))
    work.chmod(0o755)
    (work / "site").mkdir()
    (work / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    calls_log = work / "store-calls.log"
    topology = Topology(work / "topology", poke_interval=args.poke_interval)
    topology.script_env["PYTHONPATH"] = str(work / "site")
    topology.script_env["BENCH_STORE_CALLS_LOG"] = str(calls_log)
    topology.script_env["TOPOLOGY_WORKER_CONCURRENCY"] = str(args.concurrency)
    result: dict[str, Any] = {"runs": args.runs, "poke_interval": args.poke_interval}

    with topology.running(keep_on_failure=True):
        api = topology.client()
        api.wait_for_dag(DAG_ID)
        api.unpause(DAG_ID)
        configs = community_configs(args.runs, work)
        topology.cli("seed", *map(str, configs))
        started = time.time()
        run_ids = {}
        for path in configs:
            config = load_config(path)
            response = api.trigger(DAG_ID, flatten_config(config.to_dict()))
            assert response.status_code == 200, response.text
            run_ids[config.community_id] = response.json()["dag_run_id"]
        print(f"triggered {len(run_ids)} runs", flush=True)

        # Every run waits on its first two milestones.
        wanted = {f"{m}.wait" for m in FIRST_WAITS}
        deadline = time.monotonic() + args.settle_timeout
        while True:
            waiting = [
                ti
                for task_id in sorted(wanted)
                for ti in tis(api, state="up_for_reschedule", task_id=task_id)
            ]
            welcomed = tis(api, state="success", task_id="send_welcome_email")
            if len(waiting) >= len(wanted) * args.runs and len(welcomed) >= args.runs:
                break  # only the waits are left: the steady state
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(waiting)} waits after {args.settle_timeout}s")
            time.sleep(5)
        result["seconds_to_all_waiting"] = time.time() - started
        print(f"all {len(waiting)} waits up for reschedule after "
              f"{result['seconds_to_all_waiting']:.0f}s", flush=True)  # fmt: skip

        # Steady state: nothing recorded; sample what holds a worker slot.
        window_start = time.time()
        samples = []
        while time.time() - window_start < args.window:
            counts = states(api)
            samples.append(counts)
            time.sleep(args.sample_every)
        window_end = time.time()
        calls = read_calls(calls_log, window_start, window_end)
        window = window_end - window_start
        running = [s["running"] for s in samples]
        queued = [s["queued"] for s in samples]
        result["steady"] = {
            "window_s": window,
            "samples": len(samples),
            "up_for_reschedule_mean": statistics.mean(s["up_for_reschedule"] for s in samples),
            "scheduled_mean": statistics.mean(s["scheduled"] for s in samples),
            "running_mean": statistics.mean(running),
            "running_max": max(running),
            "queued_mean": statistics.mean(queued),
            "queued_max": max(queued),
            "worker_slots": args.concurrency,
            "store_requests": len(calls),
            "store_requests_per_second": len(calls) / window,
            "by_method": dict(collections.Counter(name for _, name, _ in calls)),
        }
        pokes: dict[str, list[float]] = collections.defaultdict(list)
        for t, name, key in calls:
            if name == "get_milestone":
                pokes[key].append(t)
        gaps = [b - a for ts in pokes.values() for a, b in itertools.pairwise(ts)]
        result["steady"]["poke_period_median_s"] = statistics.median(gaps) if gaps else None
        # Each poke reads the milestone; an overdue one also the engagement and action log.
        result["steady"]["pokes_per_second"] = sum(map(len, pokes.values())) / window
        print(json.dumps(result["steady"], indent=2), flush=True)

        # Recording latency: record one milestone per community, see its wait succeed.
        recorded_at = {}
        for community_id in run_ids:
            topology.cli("milestone", "mark", community_id, RECORDED, "--note", "bench")
            recorded_at[community_id] = time.time()
        deadline = time.monotonic() + args.poke_interval * 2 + 300
        done: dict[str, float] = {}
        while len(done) < len(run_ids) and time.monotonic() < deadline:
            for ti in tis(api, state="success", task_id=f"{RECORDED}.wait"):
                if ti["end_date"]:
                    community = next(c for c, r in run_ids.items() if r == ti["dag_run_id"])
                    done[community] = parse_time(ti["end_date"])
            time.sleep(5)
        delays = sorted(done[c] - recorded_at[c] for c in done)
        waits = tis(api, state="success", task_id=f"{RECORDED}.wait")
        durations = [ti["duration"] for ti in waits if ti["duration"]]
        result["recording"] = {
            "recorded": len(recorded_at),
            "noticed": len(done),
            "delay_median_s": statistics.median(delays) if delays else None,
            "delay_p95_s": delays[min(len(delays) - 1, round(0.95 * (len(delays) - 1)))]
            if delays
            else None,
            "delay_max_s": max(delays) if delays else None,
            "last_poke_task_seconds_median": statistics.median(durations) if durations else None,
        }
        if result["steady"]["poke_period_median_s"]:
            result["recording"]["dispatch_seconds_estimate"] = (
                result["steady"]["poke_period_median_s"] - args.poke_interval
            )
        print(json.dumps(result["recording"], indent=2), flush=True)
        api.close()
    shutil.rmtree(work, ignore_errors=True)  # kept (with the logs) when something failed
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--poke-interval", type=int, default=180)
    parser.add_argument("--window", type=float, default=360, help="steady-state seconds")
    parser.add_argument("--sample-every", type=float, default=5)
    parser.add_argument("--concurrency", type=int, default=16, help="Celery worker slots")
    parser.add_argument("--settle-timeout", type=float, default=1200)
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
