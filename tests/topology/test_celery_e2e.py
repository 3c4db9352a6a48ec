"""End-to-end on the production topology: PostgreSQL, Redis, CeleryExecutor, real processes.

``scripts/topology.sh up`` (what ``make topology-up`` runs) starts a private topology on free
loopback ports; then, as a user would, through the REST API with a token from
``POST /auth/token``: unpause ``engagement_onboarding``, check that a bad conf is refused with
HTTP 400 naming its key, and trigger it for the example community with the conf printed by
``engagements trigger-conf``. While the run goes, milestones are recorded with the
``engagements`` CLI while their waits are deferred to the triggerer, one by marking its
deferred wait success through the REST API, and the two human-in-the-loop forms are answered
through the REST API. Nothing here mocks Airflow:
the scheduler queues to Redis and the Celery worker runs every task. Every process the
topology started is stopped at the end, also when something fails.
"""

from __future__ import annotations

import email
import email.policy
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engagements.milestones import ONBOARDING_MILESTONES
from tests.topology.harness import Api, Topology

pytestmark = [pytest.mark.topology, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "include" / "communities" / "openscience.yaml"
DAG_ID = "engagement_onboarding"
COMMUNITY = "openscience"
MARKED_IN_UI = "rollout_deck_reviewed"
"""The milestone recorded by marking its waiting sensor success, instead of with the CLI."""
REQUIREMENT = "A GPU profile for the summer school"
MERGE_WAITS = {
    "deploy_infrastructure.cluster_pull_request_merged": f"onboard-{COMMUNITY}",
    "deploy_infrastructure.hubs_pull_request_merged": f"onboard-{COMMUNITY}-hubs",
}
"""Each infrastructure change (the cluster, then the hubs) is a branch of the local repository
until an engineer merges it."""
RUN_TIMEOUT = 1200


@pytest.fixture(scope="module")
def topology() -> Iterator[Topology]:
    with Topology(poke_interval=2, poll_interval=5).running() as topology:
        yield topology


@pytest.fixture(scope="module")
def api(topology: Topology) -> Iterator[Api]:
    api = topology.client()
    api.wait_for_dag(DAG_ID)
    yield api
    api.close()


@pytest.fixture(scope="module")
def conf(topology: Topology) -> dict[str, Any]:
    seeded = topology.cli("seed", str(EXAMPLE))  # topology.sh seeded it already: left alone
    assert seeded.stdout.startswith("left alone openscience: already in the store as Closed-Won")
    return topology.trigger_conf(EXAMPLE)


class Operator:
    """What the engineers do while the run waits: milestones, one mark-success, two forms."""

    def __init__(self, topology: Topology, api: Api, run_id: str) -> None:
        self.topology = topology
        self.api = api
        self.run_id = run_id
        self.recorded_with_cli: list[str] = []
        self.marked_success: list[str] = []
        self.forms: dict[str, dict[str, Any]] = {}
        self.merged: list[str] = []

    def step(self) -> dict[str, str]:
        states = {ti["task_id"]: ti["state"] for ti in self.api.task_instances(DAG_ID, self.run_id)}
        for task_id, state in states.items():
            if state == "deferred" and task_id.endswith(".wait"):
                self.milestone_waiting(task_id.split(".")[-2], task_id)
            elif state == "up_for_reschedule" and MERGE_WAITS.get(task_id, "") not in (
                "",
                *self.merged,
            ):
                self.merge_infrastructure_change(MERGE_WAITS[task_id])
            elif state == "awaiting_input" and task_id not in self.forms:
                self.answer(task_id)
        return states

    def merge_infrastructure_change(self, branch: str) -> None:
        """What the reviewing engineer does: ``git merge`` the proposed branch."""
        repo = Path(self.topology.env["AIRFLOW_HOME"]) / "infrastructure"
        merged = subprocess.run(
            ["git", "-C", str(repo), "-c", "user.name=Engineer", "-c", "user.email=eng@2i2c.org",
             "merge", "--no-ff", "-m", f"Merge {branch}", branch],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert merged.returncode == 0, merged.stderr
        self.merged.append(branch)

    def milestone_waiting(self, milestone: str, task_id: str) -> None:
        if milestone == MARKED_IN_UI:
            if milestone not in self.marked_success:
                self.api.set_state(DAG_ID, self.run_id, task_id, "success")
                self.marked_success.append(milestone)
        elif milestone not in self.recorded_with_cli:
            done = self.topology.cli("milestone", "mark", COMMUNITY, milestone, "--note", "e2e")
            assert "recorded done" in done.stdout, done.stdout
            self.recorded_with_cli.append(milestone)

    def answer(self, task_id: str) -> None:
        form = self.api.hitl_details(DAG_ID, self.run_id, task_id)
        option = "OK" if "OK" in form["options"] else "Approve"
        # Every field of the form, at the value it shows (the engagement's current one) ...
        answer = {key: param["value"] for key, param in form["params"].items()}
        if task_id == "rollout_outcome":  # ... and what the rollout meeting taught.
            answer.update(
                notes="The summer school needs GPUs.",
                workflows=["Pangeo tutorial"],
                requirements=[REQUIREMENT],
            )
        response = self.api.answer_hitl(DAG_ID, self.run_id, task_id, [option], answer)
        assert response["chosen_options"] == [option]
        self.forms[task_id] = {"form": form, "answer": answer}


@pytest.fixture(scope="module")
def finished_run(topology: Topology, api: Api, conf: dict[str, Any]) -> dict[str, Any]:
    api.unpause(DAG_ID)
    response = api.trigger(DAG_ID, conf)
    assert response.status_code == 200, response.text
    run_id = response.json()["dag_run_id"]
    operator = Operator(topology, api, run_id)
    deadline = time.monotonic() + RUN_TIMEOUT
    while (run := api.dag_run(DAG_ID, run_id))["state"] in ("queued", "running"):
        states = operator.step()
        if time.monotonic() > deadline:
            pytest.fail(f"{DAG_ID} still {run['state']} after {RUN_TIMEOUT}s: {states}")
        time.sleep(2)
    tasks = {ti["task_id"]: ti["state"] for ti in api.task_instances(DAG_ID, run_id)}
    return {"run": run, "tasks": tasks, "operator": operator}


def test_a_bad_conf_is_refused_with_400_naming_the_key(api: Api, conf: dict[str, Any]) -> None:
    response = api.trigger(DAG_ID, {**conf, "tier": "platinum"})
    assert response.status_code == 400, response.text
    assert "Invalid input for param tier" in response.json()["detail"]


def test_the_onboarding_run_succeeds_on_celery(finished_run: dict[str, Any]) -> None:
    assert finished_run["run"]["state"] == "success", finished_run["tasks"]
    tasks = finished_run["tasks"]
    assert tasks["mark_active"] == "success"
    assert tasks["premium_tier"] == "skipped"
    operator = finished_run["operator"]
    assert operator.marked_success == [MARKED_IN_UI]
    assert operator.merged == list(MERGE_WAITS.values())  # the cluster, then the hubs
    deploy = {k.removeprefix("deploy_infrastructure."): v for k, v in tasks.items()}
    assert deploy["open_hubs_pull_request"] == "success"
    assert deploy["record_if_deployed"] == "skipped"  # nothing verified without accounts
    assert {"technical_meeting_held", "configuration_completed"} <= set(operator.recorded_with_cli)
    assert MARKED_IN_UI not in operator.recorded_with_cli
    assert {"technical_decisions", "rollout_outcome"} <= set(operator.forms)


def test_the_technical_decisions_form_showed_every_decision(finished_run: dict[str, Any]) -> None:
    from engagements.operators.hitl import DECISION_KEYS

    form = finished_run["operator"].forms["technical_decisions"]["form"]
    assert set(form["params"]) == set(DECISION_KEYS)
    assert form["params"]["cloud.region"]["value"] == "us-west-2"


def test_the_store_shows_what_the_pipeline_did(topology: Topology, finished_run) -> None:
    from engagements.store.local import LocalStore

    store = LocalStore(topology.store_path)
    engagement = store.get_engagement(COMMUNITY)
    assert engagement.status == "Active"
    assert engagement.onboarding_run_id == finished_run["run"]["dag_run_id"]
    milestones = {m.milestone: m for m in store.list_milestones(COMMUNITY)}
    for m in ONBOARDING_MILESTONES:
        assert milestones[m.key].done, m.key
    for key in finished_run["operator"].recorded_with_cli:
        assert "engagements CLI" in milestones[key].done_by, key
    # The milestone marked success over REST was recorded by the pipeline's `record` task,
    # naming the Airflow user from the API server's event log of that state change.
    assert milestones[MARKED_IN_UI].done_by == "admin (Airflow user)"
    assert "success in Airflow at " in milestones[MARKED_IN_UI].note
    decisions = store.get_action(COMMUNITY, "technical-decisions")
    assert decisions.detail["decisions"]["cloud.region"] == "us-west-2"
    assert decisions.detail["responded_by"] == "admin"
    follow_ups = store.list_actions(COMMUNITY, kind="follow_up_issue")
    assert [f.detail.get("title") for f in follow_ups] == [f"[{COMMUNITY}] {REQUIREMENT}"]


def test_the_emails_arrived_in_the_outbox(topology: Topology, finished_run) -> None:
    messages = [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(topology.outbox.glob("*.eml"))
    ]
    by_kind = {str(m["Message-ID"]).strip("<").split(".")[0]: m for m in messages}
    assert {"welcome", "rollout-invitation", "onboarding"} <= set(by_kind)
    assert by_kind["welcome"]["To"] == "ada@openscience.example.org"
    onboarding = by_kind["onboarding"].get_body(("plain",)).get_content()
    assert "https://workshop.openscience.2i2c.cloud" in onboarding


# apache/airflow#72716: milestones recorded right at deferral, many at once


def test_milestones_recorded_right_at_deferral_fail_no_run_on_celery(
    topology: Topology, api: Api
) -> None:
    from tests.topology.race import (
        run_checkins_recording_at_deferral,
        seed_active,
        state_mismatches,
    )

    communities = seed_active(topology, RACE_COMMUNITIES)
    result = run_checkins_recording_at_deferral(topology, api, communities)

    print(  # the figures of the proof, in the test output (pytest -s)
        f"Celery: {len(result.recorded)} recorded at deferral {result.recorded}; "
        f"states {result.states()}; retried {result.retried()}; "
        f"scheduler state mismatches {state_mismatches(topology)}"
    )
    assert result.run["state"] == "success", result.states()
    assert set(result.recorded) == set(communities)
    assert "deferred" in set(result.recorded.values()) <= {"running", "deferred"}
    assert not {"failed", "upstream_failed"} & set(result.states())


RACE_COMMUNITIES = 8
