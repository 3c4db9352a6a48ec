"""End-to-end: the platform upkeep on the embedded default, with the seeded fleet file.

No cloud or GitHub connection: every observation reads the fleet file that ``make run`` seeds
(``include/fleet.yaml``), the issue is recorded in the store and its step skips with the plan,
and the notice goes to the loopback SMTP outbox. An engineer upgrades the cluster while the
milestone waits: writes the new versions into the fleet file (as the cloud would then report
them) and records both milestones with the CLI.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess

import pytest
import yaml

from tests.dags.e2e import WaitWatcher, cli, own_environment, parse_dag

pytestmark = pytest.mark.e2e

DAG_ID = "engagement_platform_upkeep"
RUN = dt.datetime(2026, 12, 7, 6, tzinfo=dt.UTC)
MILESTONES = ("upgraded_openscience_1.32", "upgraded_openscience_chart-4.3.3")


WAITS = {
    "upgrade.kubernetes_upgraded.wait": "upgraded_openscience_1.32",
    "upgrade.chart_upgraded.wait": "upgraded_openscience_chart-4.3.3",
}
"""Each milestone wait and the milestone it waits on."""


class Engineer(WaitWatcher):
    """Upgrades openscience when the first of its two milestones is waited on, and records each
    milestone once its own wait waits (``dag.test()`` runs one wait at a time, either first):
    the Kubernetes upgrade, overdue, is waited on before it is recorded."""

    def __init__(self, fleet) -> None:
        super().__init__(DAG_ID)
        self.fleet = fleet
        self.results: list[subprocess.CompletedProcess] = []
        self.recorded: set[str] = set()

    def on_waiting(self, task_ids: set[str]) -> None:
        for task_id in sorted(task_ids & WAITS.keys() - self.recorded):
            if not self.recorded:
                self.upgrade()
            self.results.append(
                cli("milestone", "mark", "openscience", WAITS[task_id], "--note", "done")
            )
            self.recorded.add(task_id)
        if self.recorded == WAITS.keys():
            self.stop.set()

    def upgrade(self) -> None:
        """The new versions in the fleet file, as the cloud would then report them."""
        data = yaml.safe_load(self.fleet.read_text())
        (cluster,) = data["clusters"]
        cluster["control_plane"] = {"version": "1.32", "upgraded_on": "2026-12-15"}
        cluster["node_pools"][0] = {"name": "core", "version": "1.32", "upgraded_on": "2026-12-15"}
        cluster["chart"] = "4.3.3"
        self.fleet.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from engagements.settings import PROJECT_ROOT

    home = tmp_path_factory.mktemp("upkeep-embedded")
    fleet = home / "fleet.yaml"
    shutil.copy(PROJECT_ROOT / "include" / "fleet.yaml", fleet)  # what `make run` seeds
    values = {
        "ENGAGEMENTS_UPKEEP_FLEET_FILE": str(fleet),
        "ENGAGEMENTS_INFRA_REPO_PATH": str(home / "infrastructure"),
    }
    with own_environment(home, DAG_ID, values) as root:
        yield root


@pytest.fixture(scope="module")
def store(env):
    from engagements.config import load_config
    from engagements.hooks.store import get_store
    from engagements.onboarding import register
    from tests.conftest import EXAMPLE

    store = get_store()
    register(store, load_config(EXAMPLE), run_id="onboarding", run_state=lambda _: None)
    store.update_engagement("openscience", status="Active")
    return store


@pytest.fixture(scope="module")
def finished_run(airflow_db, outbox, store, env):
    engineer = Engineer(env / "fleet.yaml")
    engineer.start()
    try:
        run = parse_dag(DAG_ID).test(logical_date=RUN, run_after=RUN)
    finally:
        engineer.stop.set()
        engineer.join(10)
    assert [r.returncode for r in engineer.results] == [0, 0], [r.stderr for r in engineer.results]
    return run


def task_states(run) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


def test_the_run_succeeds_with_the_issue_planned_only(finished_run):
    assert finished_run.state == "success"
    states = task_states(finished_run)
    assert states["upgrade.upgrade_issue"] == "skipped"
    for task in ("observe", "plan", "upgrade.notify_community", "upgrade.verify"):
        assert states[task] == "success", task


def test_observation_says_it_read_the_fleet_file(finished_run, store, env):
    detail = store.get_action("openscience", "upkeep-observation").detail
    fleet = str(env / "fleet.yaml")
    assert detail["sources"]["kubernetes"] == (
        f"the fleet file {fleet} (no 'aws_default' connection)"
    )
    assert detail["sources"]["chart"].startswith(f"the fleet file {fleet} (")
    assert detail["cluster"]["control_plane"] == {"version": "1.31", "upgraded_on": "2026-06-01"}


def test_the_plan_is_the_one_the_cli_gives_for_the_written_observation(finished_run, env, run):
    folder = env / "artifacts" / "upkeep" / "2026-12-07"
    result = run("upkeep", "plan", str(folder / "observation.yaml"), "--today", "2026-12-07")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads((folder / "plan.json").read_text())
    assert json.loads(result.stdout)["batches"] == [["openscience"]]


def test_the_issue_is_recorded_with_the_checklist(finished_run, store):
    issue = store.get_action("openscience", "upkeep-issue:1.32+chart-4.3.3").detail
    assert issue["state"] == "planned"
    assert issue["title"] == (
        "Platform upkeep: upgrade openscience to Kubernetes 1.32 and JupyterHub chart 4.3.3"
    )
    body = issue["body"]
    assert body.index("Control plane: 1.31 → 1.32") < body.index("Node pool `core`: 1.30 → 1.32")
    assert "**due 2026-11-26**" in body
    assert "`outside-window`" in body
    assert "engagements milestone mark openscience upgraded_openscience_1.32" in body


def test_one_notice_with_a_window_a_week_ahead(finished_run, outbox):
    notices = [m for m in outbox.messages() if m["Message-ID"].startswith("<upkeep-notice.")]
    assert len(notices) == 1
    (notice,) = notices
    assert notice["To"] == "grace@openscience.example.org"
    assert notice["Cc"] == "ada@openscience.example.org"
    start = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=7)
    assert f"{start:%A} {start.day} {start:%B %Y}" in str(notice["Subject"])
    body = notice.get_body(("plain",)).get_content()
    assert "from Kubernetes 1.31 to 1.32" in body


def test_the_overdue_upgrade_emails_support_once(finished_run, outbox):
    overdue = [m for m in outbox.messages() if m["Message-ID"].startswith("<milestone-overdue.")]
    assert [m["To"] for m in overdue] == ["support@2i2c.org"]
    assert "openscience upgraded to Kubernetes 1.32" in str(overdue[0]["Subject"]) + str(
        overdue[0].get_body(("plain",)).get_content()
    )


def test_the_upgrade_is_verified_from_the_fleet_file(finished_run, store):
    result = store.get_action("openscience", "upkeep-result:1.32+chart-4.3.3").detail
    assert result["state"] == "verified"
    assert result["versions"]["control_plane"]["version"] == "1.32"
    assert result["hubs"] == {
        "not checked": "the versions come from the fleet file (plan only: nothing is deployed)"
    }
    for milestone in MILESTONES:
        assert store.get_milestone("openscience", milestone).done


def test_rerunning_the_run_sends_and_records_nothing_new(finished_run, outbox, store):
    from airflow import settings
    from airflow.models.dagrun import DagRun

    sent = len(outbox.messages())
    actions = [(a.key, a.kind) for a in store.list_actions("openscience")]
    with settings.Session() as session:
        row = session.query(DagRun).filter_by(dag_id=DAG_ID, run_id=finished_run.run_id).one()
        row.state = "running"
        session.commit()
    rerun = parse_dag(DAG_ID).test(logical_date=RUN, run_after=RUN)
    assert rerun.state == "success"
    assert len(outbox.messages()) == sent
    assert [(a.key, a.kind) for a in store.list_actions("openscience")] == actions
