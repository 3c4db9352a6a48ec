"""Milestones recorded right as their waits defer, many at once, on a real topology.

Airflow 3.3 can fail a deferred task whose trigger fires within seconds of the deferral: the
executor's "success" of the deferring attempt is processed after the resumed attempt started
(apache/airflow#72716, open). The design around it: the task reads the store once before
deferring (a milestone already recorded never defers), a trigger never fires within its first
interval, and tasks keep their retries. This scenario is what provokes the race: one
quarterly check-in run over several communities whose meeting milestones are recorded in the
store the moment each wait is seen running (just before its check) or deferred (just after),
while the poll interval is the production default; then every outcome form is answered. The
run is the one the scheduler starts when the DAG is unpaused (the latest quarter's).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

import yaml

from engagements.store.local import LocalStore
from tests.topology.harness import ROOT, Api, Topology

DAG_ID = "engagement_quarterly_checkin"
WAIT = "checkin.checkin_held.wait"
OUTCOME = "checkin.checkin_outcome"
TIMEOUT = 1200
READING = 20
"""Seconds a person takes to read an outcome form before answering it."""


@dataclass
class RaceResult:
    run: dict[str, Any]
    tasks: list[dict[str, Any]]
    recorded: dict[str, str] = field(default_factory=dict)
    """Community id: the state its wait was in when its milestone was recorded."""
    marked: str | None = None
    """The community whose deferred wait was marked success instead."""

    def states(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for ti in self.tasks:
            counts[ti["state"]] = counts.get(ti["state"], 0) + 1
        return counts

    def retried(self) -> list[str]:
        return [f"{ti['task_id']}[{ti['rendered_map_index']}]" for ti in self.tasks
                if ti["try_number"] > 1]  # fmt: skip


def seed_active(topology: Topology, count: int) -> list[str]:
    """``count`` copies of the example, Active since half a year, in the topology's store."""
    base = yaml.safe_load((ROOT / "include" / "communities" / "openscience.yaml").read_text())
    today = dt.datetime.now(dt.UTC).date()
    folder = topology.directory / "race"
    folder.mkdir(exist_ok=True)
    ids = []
    for i in range(count):
        config = dict(base)
        config["community_id"] = community_id = f"race{i:02d}"
        config["github_org"] = f"race{i:02d}-org"
        config["contract"] = {
            **base["contract"],
            "signed_on": str(today - dt.timedelta(days=200)),
            "start": str(today - dt.timedelta(days=180)),
            "end": str(today + dt.timedelta(days=300)),
        }
        path = folder / f"{community_id}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        ids.append(community_id)
    topology.cli("seed", *(str(folder / f"{c}.yaml") for c in ids))
    store = LocalStore(topology.store_path)
    for community_id in ids:
        store.update_engagement(community_id, status="Active")
    return ids


def run_checkins_recording_at_deferral(
    topology: Topology,
    api: Api,
    communities: list[str],
    *,
    mark_last: bool = False,
    poll_interval: int = 30,
) -> RaceResult:
    """Unpause the check-in (the scheduler starts the latest quarter's run for every Active
    engagement), record each meeting milestone the moment its wait is seen (even map indexes:
    running, about to check, or deferred if that is seen first; odd ones: deferred), answer
    each outcome form, and return the finished run and its task instances. With
    ``mark_last``, the last community's deferred wait is marked success through the REST API
    instead (what "Mark success" in the UI sends). ``poll_interval``: the setting, 30 s
    (the production default) unless an experiment asks for less."""
    from engagements.checkin import Quarter
    from engagements.milestones import CHECKIN_HELD

    api.wait_for_dag(DAG_ID)
    api.set_variable("engagements_milestone_poll_interval", str(poll_interval))
    api.unpause(DAG_ID)
    store = LocalStore(topology.store_path)
    deadline = time.monotonic() + TIMEOUT
    while not (runs := api.call("GET", f"/dags/{DAG_ID}/dagRuns")["dag_runs"]):
        assert time.monotonic() < deadline, f"no run of {DAG_ID} after unpausing it"
        time.sleep(1)
    (started,) = runs
    run_id = started["dag_run_id"]
    logical = dt.datetime.fromisoformat(started["logical_date"].replace("Z", "+00:00"))
    milestone = CHECKIN_HELD.key(str(Quarter.of(logical.date())))
    result = RaceResult(run={}, tasks=[])
    waiting: dict[tuple[int, int], float] = {}  # (map index, try): first seen awaiting input
    while (run := api.dag_run(DAG_ID, run_id))["state"] in ("queued", "running"):
        for ti in mapped(api, run_id, WAIT):
            community_id = ti["rendered_map_index"]  # the map index until the task renders it
            if community_id not in communities or community_id in result.recorded:
                continue
            if community_id == result.marked:
                continue
            if mark_last and community_id == communities[-1]:
                if ti["state"] == "deferred":
                    api.call(
                        "PATCH",
                        f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{WAIT}/{ti['map_index']}",
                        json={"new_state": "success"},
                    )
                    result.marked = community_id
            elif ti["state"] == "deferred" or (
                ti["state"] == "running" and ti["map_index"] % 2 == 0
            ):
                store.record_milestone(community_id, milestone, by="race test")
                result.recorded[community_id] = ti["state"]
        for ti in mapped(api, run_id, OUTCOME):
            form = (ti["map_index"], ti["try_number"])
            if ti["state"] != "awaiting_input":
                continue
            # A person reads the form before answering it: a form answered within a second
            # of opening meets Airflow's stale-event race on its own (a retry recovers it).
            if time.monotonic() - waiting.setdefault(form, time.monotonic()) > READING:
                answer = {"notes": "", "satisfaction": None, "requests": [], "observed_maus": None}
                api.answer_hitl(DAG_ID, run_id, OUTCOME, ["OK"], answer, map_index=form[0])
                waiting[form] = float("inf")
        if time.monotonic() > deadline:
            raise AssertionError(f"{DAG_ID} still running after {TIMEOUT}s: {result.recorded}")
        time.sleep(0.3)
    result.run = run
    result.tasks = api.task_instances(DAG_ID, run_id)
    return result


def mapped(api: Api, run_id: str, task_id: str) -> list[dict[str, Any]]:
    data = api.call(
        "GET",
        f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances",
        params={"task_id": task_id, "limit": 100},
    )
    return data["task_instances"]


def state_mismatches(topology: Topology) -> int:
    """How often the scheduler saw an executor event contradict a task's state."""
    log = topology.directory / "logs" / "scheduler.log"
    return log.read_text(errors="replace").count("state mismatch") if log.exists() else 0
