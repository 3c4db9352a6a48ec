"""End-to-end: the onboarding DAG run by Airflow for the example community.

The run uses the embedded store, a real SMTP server on loopback (the outbox) and records each
milestone through the CLI while its sensor is waiting, as an engineer would. The two
human-in-the-loop forms are marked success (``dag.test`` cannot answer them); their answer
path is covered in ``tests/operators/test_hitl.py``. The deployment group proposes the
infrastructure change in the repository's two steps, each a branch of the embedded local git
repository: the cluster (``onboard-openscience``), merged by the clerk with ``git merge`` while
``cluster_pull_request_merged`` waits, then the hubs written with the example cluster outputs
(``onboard-openscience-hubs``), merged while ``hubs_pull_request_merged`` waits, as an engineer
would after reviewing each.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from engagements.milestones import ONBOARDING_MILESTONES
from tests.dags.e2e import WaitWatcher, cli, parse_dag

pytestmark = pytest.mark.e2e

DAG_ID = "engagement_onboarding"
HITL_TASKS = "^(technical_decisions|rollout_outcome)$"
LOGICAL_DATE = dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC)
RUN_AFTER = LOGICAL_DATE
BRANCH = "onboard-openscience"
HUBS_BRANCH = "onboard-openscience-hubs"
MERGE_WAITS = {
    "deploy_infrastructure.cluster_pull_request_merged": BRANCH,
    "deploy_infrastructure.hubs_pull_request_merged": HUBS_BRANCH,
}
CLUSTER = "config/clusters/openscience"
HUB_FILES = {
    f"{CLUSTER}/{name}.values.yaml" for name in ("common", "staging", "prod", "workshop", "binder")
}


def infra_repo() -> Path:
    return Path(os.environ["AIRFLOW_HOME"]) / "infrastructure"


def git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", "-C", str(infra_repo()), *args], capture_output=True, text=True, check=False
    )


class MilestoneClerk(WaitWatcher):
    """Records a milestone with the CLI once its sensor has waited at least once, and merges
    each proposed infrastructure branch once its ``*_pull_request_merged`` waits for it."""

    def __init__(self) -> None:
        super().__init__(DAG_ID)
        self.recorded: list[str] = []
        self.errors: list[str] = []

    def on_waiting(self, task_ids: set[str]) -> None:
        for wait, branch in MERGE_WAITS.items():
            if wait in task_ids and f"merge {branch}" not in self.recorded:
                merged = git("-c", "user.name=Engineer", "-c", "user.email=eng@2i2c.org",
                             "merge", "--no-ff", "-m", f"Merge {branch}", branch)  # fmt: skip
                if merged.returncode:
                    self.errors.append(merged.stderr)
                self.recorded.append(f"merge {branch}")
        for task_id in task_ids:
            if not task_id.endswith(".wait"):
                continue
            milestone = task_id.split(".")[-2]
            if milestone in self.recorded:
                continue
            result = cli("milestone", "mark", "openscience", milestone, "--note", "e2e")
            if result.returncode:
                self.errors.append(result.stderr)
            self.recorded.append(milestone)


@pytest.fixture(scope="module")
def dag():
    return parse_dag(DAG_ID)


@pytest.fixture(scope="module")
def finished_run(airflow_db, outbox, dag, tmp_path_factory):
    from engagements.config import load_config
    from engagements.params import flatten_config
    from tests.conftest import EXAMPLE

    seeded = cli("seed", str(EXAMPLE))
    assert seeded.returncode == 0, seeded.stderr
    conf = flatten_config(load_config(EXAMPLE).to_dict())
    clerk = MilestoneClerk()
    clerk.start()
    try:
        run = dag.test(
            logical_date=LOGICAL_DATE,
            run_after=RUN_AFTER,
            run_conf=conf,
            mark_success_pattern=HITL_TASKS,
        )
    finally:
        clerk.stop.set()
        clerk.join(10)
    assert not clerk.errors, clerk.errors
    return {"run": run, "conf": conf, "clerk": clerk}


def _by_subject(messages, word):
    return [m for m in messages if word.lower() in m["Subject"].lower()]


def test_onboarding_run_succeeds(finished_run):
    assert finished_run["run"].state == "success"
    assert set(finished_run["clerk"].recorded) == {m.key for m in ONBOARDING_MILESTONES} | {
        f"merge {BRANCH}",
        f"merge {HUBS_BRANCH}",
    }
    # The cluster was merged before the hubs were proposed.
    recorded = finished_run["clerk"].recorded
    assert recorded.index(f"merge {BRANCH}") < recorded.index(f"merge {HUBS_BRANCH}")


def tree(branch: str) -> set[str]:
    return set(git("ls-tree", "-r", "--name-only", branch).stdout.split())


def test_the_cluster_is_the_first_branch_with_no_hubs(finished_run):
    from engagements.hooks.store import get_store

    listed = tree(BRANCH)
    assert {
        f"{CLUSTER}/cluster.yaml",
        f"{CLUSTER}/support.values.yaml",
        "terraform/aws/projects/openscience.tfvars",
        "eksctl/openscience.jsonnet",
    } <= listed
    assert not listed & HUB_FILES
    assert not [path for path in listed if "secret" in path]
    cluster = yaml.safe_load(git("show", f"{BRANCH}:{CLUSTER}/cluster.yaml").stdout)
    assert cluster["hubs"] == []
    assert cluster["metadata"]["2i2c"]["hubspot_deal_id"] == 96602996427
    message = git("log", "-1", "--format=%B", BRANCH).stdout
    assert message.startswith("Deploy Open Science Collective (openscience): cluster")
    assert "Step 1 of 2" in message
    assert git("merge-base", "--is-ancestor", BRANCH, "main").returncode == 0

    change = get_store().get_action("openscience", "infra-pr").detail
    assert (change["kind"], change["branch"]) == ("local_branch", BRANCH)
    assert change["commit"] == git("rev-parse", BRANCH).stdout.strip()


def test_the_hubs_are_the_second_branch_written_with_the_example_outputs(finished_run):
    from engagements.hooks.store import get_store

    listed = tree(HUBS_BRANCH)
    assert listed >= HUB_FILES
    assert not [path for path in listed if "secret" in path]
    # Proposed on top of the merged cluster.
    assert git("merge-base", "--is-ancestor", BRANCH, HUBS_BRANCH).returncode == 0
    cluster = yaml.safe_load(git("show", f"{HUBS_BRANCH}:{CLUSTER}/cluster.yaml").stdout)
    assert [h["name"] for h in cluster["hubs"]] == ["staging", "prod", "workshop", "binder"]

    # The example outputs file the engineer can edit, and the values written from it.
    path = Path(os.environ["AIRFLOW_HOME"]) / "cluster-outputs" / "openscience.yaml"
    outputs = yaml.safe_load(path.read_text())
    assert outputs["_note"].startswith("EXAMPLE outputs")
    for hub in ("staging", "prod", "workshop"):
        values = yaml.safe_load(git("show", f"{HUBS_BRANCH}:{CLUSTER}/{hub}.values.yaml").stdout)
        assert values["nfs"]["pv"]["serverIP"] == outputs["nfs_server_ip"][hub]
        assert (
            values["jupyterhub-home-nfs"]["eks"]["volumeId"] == (outputs["ebs_volume_id_map"][hub])
        )
    for name in listed & HUB_FILES:
        assert "PENDING" not in git("show", f"{HUBS_BRANCH}:{name}").stdout, name

    # The pull request (here the commit message) says first that the outputs are examples.
    message = git("log", "-1", "--format=%B", HUBS_BRANCH).stdout
    assert message.startswith("Deploy Open Science Collective (openscience): hubs")
    assert "Step 2 of 2" in message
    assert "> **Note**: EXAMPLE outputs" in message
    assert f"EXAMPLE values from {path}" in message
    assert git("merge-base", "--is-ancestor", HUBS_BRANCH, "main").returncode == 0

    store = get_store()
    recorded = store.get_action("openscience", "cluster-outputs").detail
    assert recorded["example"] is True
    assert recorded["outputs"] == {k: v for k, v in outputs.items() if k != "_note"}
    change = store.get_action("openscience", "infra-hubs-pr").detail
    assert (change["kind"], change["branch"]) == ("local_branch", HUBS_BRANCH)
    assert change["commit"] == git("rev-parse", HUBS_BRANCH).stdout.strip()
    assert change["hubs"]["binder"] == "hub.binder.openscience.2i2c.cloud"


def test_deployment_steps_without_accounts_skip_and_onboarding_goes_on(finished_run):
    from engagements.hooks.store import get_store

    states = {ti.task_id: ti.state for ti in finished_run["run"].get_task_instances()}
    group = {k.removeprefix("deploy_infrastructure."): v for k, v in states.items() if "." in k}
    for done in (
        "open_cluster_pull_request",
        "cluster_pull_request_merged",
        "cluster_outputs",
        "open_hubs_pull_request",
        "hubs_pull_request_merged",
        "infrastructure_deployed.wait",
        "infrastructure_deployed.record",
    ):
        assert group[done] == "success", done
    for plan_only in (
        "approve_provisioning",
        "provision_cluster",
        "verify_cluster",
        "hubs_healthy",
        "github_org_ready",
        "community_github_org",
        "quay_image_repository",
    ):
        assert group[plan_only] == "skipped", plan_only
    # Nothing was verified, so nothing is recorded as deployed by the pipeline: it skips and
    # says why; the engineer's confirmation (recorded with the CLI here) stands.
    assert group["record_if_deployed"] == "skipped"
    store = get_store()
    not_verified = store.get_action("openscience", "deployment-not-verified").detail
    assert not_verified["state"] == "not_verified"
    assert not_verified["reason"].startswith(
        "Nothing recorded as deployed: the pipeline did not verify every hub healthy"
    )
    assert not_verified["missing"] == [
        "every hub healthy (hubs_healthy)",
        "the GitHub org work",
        "the Quay image repository",
    ]
    deployed = store.get_milestone("openscience", "infrastructure_deployed")
    assert deployed.done
    assert "engagements CLI" in deployed.done_by
    # Nothing to open (no requirement was recorded): skipped, not green for nothing; the
    # configuration is still waited for.
    assert states["open_follow_up_issues"] == "skipped"
    assert states["configuration_completed.wait"] == "success"
    quay = store.get_action("openscience", "quay-image").detail
    assert quay["state"] == "planned"


def test_emails_and_deck_say_only_what_happened(finished_run, outbox):
    """The plan-only steps skipped: nothing says they were deployed."""
    from engagements.settings import load_settings

    messages = outbox.messages()
    (invitation,) = [m for m in messages if m["Message-ID"].startswith("<rollout-invitation.")]
    text = " ".join(invitation.get_body(("plain",)).get_content().split())
    assert "demo of the infrastructure we deployed" not in text  # sent before the deployment
    assert "the Community hub, being deployed" in text

    (onboarding,) = [m for m in messages if m["Message-ID"].startswith("<onboarding.")]
    text = " ".join(onboarding.get_body(("plain",)).get_content().split())
    still = text.split("Still being set up by 2i2c")[1].split("Configuration you asked for")[0]
    for part in ("GitHub organization teams", "JupyterBook companion site repository",
                 "Quay image repository"):  # fmt: skip
        assert part in still, part
    assert "Set up for your community ------------------------- - Nothing beyond the hubs" in text
    assert "memory per user server, to choose from: ~4 GB RAM, ~0.5 CPUs" in text
    assert "Dask Gateway" in text

    (welcome,) = [m for m in messages if m["Message-ID"].startswith("<welcome.")]
    sent = dt.datetime.now(dt.UTC).date()
    text = " ".join(welcome.get_body(("plain",)).get_content().split())
    start = text.split("the next one runs from ")[1].split(" to ")[0]
    assert dt.datetime.strptime(start, "%A %d %B %Y").date() > sent

    deck = load_settings().artifacts_path / "openscience" / "rollout-deck-v2.md"
    slides = deck.read_text()
    assert "## Platform components: deployed, and still to do" in slides
    assert "Quay image repository: not yet (planned only)" in slides
    assert "Community hub: https://openscience.2i2c.cloud: deployed (confirmed by" in slides
    v1 = (deck.parent / "rollout-deck-v1.md").read_text()
    assert "## Platform components to deploy" in v1


def test_store_shows_onboarding_complete(finished_run):
    from engagements.hooks.store import get_store

    store = get_store()
    engagement = store.get_engagement("openscience")
    assert engagement.status == "Active"
    assert engagement.onboarding_run_id == finished_run["run"].run_id
    milestones = {m.milestone: m for m in store.list_milestones("openscience")}
    for m in ONBOARDING_MILESTONES:
        assert milestones[m.key].done, m.key
        assert "engagements CLI" in milestones[m.key].done_by
    training = [k for k in milestones if k.startswith("training_")]
    assert len(training) == 8
    actions = {a.key for a in store.list_actions("openscience")}
    assert {
        "email:welcome",
        "email:rollout-invitation",
        "email:onboarding",
        "deck:v1",
        "deck:v2",
    } <= actions


def test_emails_arrive_with_the_right_recipients(finished_run, outbox):
    messages = outbox.messages()
    reps = {"ada@openscience.example.org", "grace@openscience.example.org"}

    (welcome,) = [m for m in messages if m["Message-ID"].startswith("<welcome.")]
    assert welcome["To"] == "ada@openscience.example.org"
    assert welcome["Cc"] == "grace@openscience.example.org"

    for kind in ("rollout-invitation", "onboarding"):
        (mail,) = [m for m in messages if m["Message-ID"].startswith(f"<{kind}.")]
        recipients = {
            a.strip() for h in ("To", "Cc") for a in str(mail.get(h, "")).split(",") if a.strip()
        }
        assert reps <= recipients, kind

    (onboarding,) = [m for m in messages if m["Message-ID"].startswith("<onboarding.")]
    body = onboarding.get_body(("plain",)).get_content()
    assert "https://workshop.openscience.2i2c.cloud" in body
    assert "https://grafana.openscience.2i2c.cloud" in body
    assert onboarding.get_body(("html",)) is not None


def test_overdue_milestones_are_notified_once(finished_run, outbox):
    today = dt.datetime.now(dt.UTC).date()
    expected = {
        m.key for m in ONBOARDING_MILESTONES if m.due_days is not None and today > m.due(_config())
    }
    overdue = [m for m in outbox.messages() if m["Message-ID"].startswith("<milestone-overdue.")]
    assert len(overdue) == len(expected)
    assert all(m["To"] == "support@2i2c.org" for m in overdue)


def _config():
    from engagements.config import load_config
    from tests.conftest import EXAMPLE

    return load_config(EXAMPLE)


def clear_whole_run(run_id: str) -> None:
    """What "Clear" on a finished run does: the run is running again (its tasks are cleared
    by ``dag.test`` itself), so every task executes a second time in the same run."""
    from airflow import settings
    from airflow.models.dagrun import DagRun

    with settings.Session() as session:
        run = session.query(DagRun).filter_by(dag_id=DAG_ID, run_id=run_id).one()
        run.state = "running"
        session.commit()


def test_rerunning_every_task_sends_nothing_twice(finished_run, outbox, dag):
    from engagements.hooks.store import get_store

    store = get_store()
    sent_before = len(outbox.messages())
    actions_before = store.list_actions("openscience")
    milestones_before = store.list_milestones("openscience")

    clear_whole_run(finished_run["run"].run_id)
    rerun = dag.test(
        logical_date=LOGICAL_DATE,
        run_after=RUN_AFTER,
        run_conf=finished_run["conf"],
        mark_success_pattern=HITL_TASKS,
    )

    assert rerun.run_id == finished_run["run"].run_id
    assert rerun.state == "success"
    assert len(outbox.messages()) == sent_before
    assert store.list_actions("openscience") == actions_before
    assert store.list_milestones("openscience") == milestones_before


def test_second_onboarding_for_the_same_community_stops_at_register(finished_run, dag):
    other = dag.test(
        logical_date=LOGICAL_DATE + dt.timedelta(hours=1),
        run_after=RUN_AFTER + dt.timedelta(hours=1),
        run_conf=finished_run["conf"],
        mark_success_pattern=HITL_TASKS,
    )
    assert other.state == "failed"
    states = {ti.task_id: ti.state for ti in other.get_task_instances()}
    assert states["register"] == "failed"
    assert states["bd_signoff_check"] in ("upstream_failed", None)
