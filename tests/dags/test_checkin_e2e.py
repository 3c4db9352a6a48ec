"""End-to-end: the quarterly check-in run by Airflow for the 2027Q2 check-in.

The run uses its own embedded store, a real SMTP server on loopback (the outbox) and AWS Cost
Explorer in moto (its answers queued by the test); an engineer records the check-in meeting
with the CLI while its sensor waits. The outcome form is marked success (``dag.test`` cannot
answer it); its answer path is covered in ``tests/checkin/test_operators.py``.

The meeting waits run here as reschedule-mode sensors (``deferrable=False``): ``dag.test()``
runs a deferred wait's trigger inline, so a wait marked success over the API while deferred
would never be seen; between two pokes it is. Deferred waits run end to end in
``test_onboarding_e2e.py`` and under the real triggerer in ``tests/topology/``.

- openscience: Active since December 2026, AWS: reported and invited;
- nocost: Active, AWS without an account id: reported without figures and invited;
- newhub: Active since 20 March 2027: skipped, with the reason.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pytest

from tests.dags.e2e import AirflowApi, WaitWatcher, cli, own_environment, parse_dag

pytestmark = pytest.mark.e2e

DAG_ID = "engagement_quarterly_checkin"
RUN = dt.datetime(2027, 4, 1, 6, tzinfo=dt.UTC)
OUTCOME_FORM = r"checkin\.checkin_outcome"
DUE = ("openscience", "nocost")
CE_RESULTS = "http://motoapi.amazonaws.com/moto-api/static/ce/cost-and-usage-results"


MARKED_IN_UI = "nocost"
"""Its meeting is recorded by marking its waiting sensor success as bea, over Airflow's API."""


class MeetingClerk(WaitWatcher):
    """Records openscience's check-in meeting with the CLI once the sensors have waited once;
    bea marks nocost's waiting sensor success through Airflow's REST API (the UI's route).

    Between two pokes the sensor is ``up_for_reschedule`` until its reschedule date, one second
    here; in production two hours. Before bea marks it, that date is moved an hour ahead (as
    a longer poke interval would have it), so that no poke can start while she marks it.
    """

    def __init__(self) -> None:
        super().__init__(DAG_ID)
        self.results: list[subprocess.CompletedProcess] = []
        self.marked: list[dict] = []
        self.errors: list[str] = []

    def on_waiting(self, task_ids: set[str]) -> None:
        if "checkin.checkin_held.wait" not in task_ids:
            return
        if not self.results:
            self.results.append(
                cli("milestone", "mark", "openscience", "checkin_held_2027q2", "--note", "held")
            )
        try:
            waiting = self.hold_between_pokes()
            if waiting is not None:
                api = AirflowApi("bea")
                self.marked.append(api.mark_success(DAG_ID, *waiting))
                self.stop.set()
        except Exception as exc:
            self.errors.append(repr(exc))
            self.stop.set()

    def hold_between_pokes(self) -> tuple[str, str, int] | None:
        """(run id, task id, map index) of nocost's wait, held an hour before its next poke;
        None if it is not between two pokes right now."""
        from airflow import settings
        from airflow.models.taskinstance import TaskInstance
        from airflow.models.taskreschedule import TaskReschedule
        from sqlalchemy import update

        task_id = "checkin.checkin_held.wait"
        with settings.Session() as session:
            ti = (
                session.query(TaskInstance)
                .filter_by(dag_id=DAG_ID, task_id=task_id, rendered_map_index=MARKED_IN_UI)
                .one()
            )
            # The write first: it takes the database's write lock, so the state checked
            # here cannot change before the reschedule date moves.
            held = session.execute(
                update(TaskInstance)
                .where(TaskInstance.id == ti.id, TaskInstance.state == "up_for_reschedule")
                .values(state="up_for_reschedule")
            ).rowcount
            if not held:
                session.rollback()
                return None
            session.execute(
                update(TaskReschedule)
                .where(TaskReschedule.ti_id == ti.id)
                .values(reschedule_date=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
            )
            session.commit()
            return ti.run_id, task_id, ti.map_index


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """This module's own store, artifacts and connections; the environment is restored after."""
    values = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws"}),
    }
    with own_environment(tmp_path_factory.mktemp("checkin"), DAG_ID, values) as home:
        yield home


@pytest.fixture(scope="module")
def cost_explorer(env):
    """October 2026 to March 2027 for openscience's account, in one answer."""
    import requests
    from moto import mock_aws

    months = ["2026-10", "2026-11", "2026-12", "2027-01", "2027-02", "2027-03"]
    amounts = ["0", "0", "900", "1000", "1100", "1200"]
    ends = [*months[1:], "2027-04"]
    results = [
        {
            "TimePeriod": {"Start": f"{month}-01", "End": f"{end}-01"},
            "Total": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}},
        }
        for month, end, amount in zip(months, ends, amounts, strict=True)
    ]
    with mock_aws():
        answer = requests.post(
            CE_RESULTS, json={"results": [{"ResultsByTime": results}]}, timeout=5
        )
        assert answer.status_code == 201
        yield


@pytest.fixture(scope="module")
def seeded(env):
    from engagements.checkin import Quarter, record_follow_ups
    from engagements.config import load_config
    from engagements.onboarding import register
    from engagements.store import get_store
    from tests.conftest import EXAMPLE

    example = load_config(EXAMPLE)
    store = get_store()
    register(store, example, run_id="onboarding", run_state=lambda _: None)
    store.update_engagement("openscience", status="Active")
    for community_id, changes in {
        "nocost": {"cloud.account": None},
        "newhub": {"contract.signed_on": "2027-03-10", "contract.start": "2027-03-20"},
    }.items():
        config = example.with_decisions({"community_id": community_id, **changes})
        store.upsert_engagement(community_id, config.name, config.to_dict(), status="Active")
    record_follow_ups(store, "openscience", Quarter(2027, 1), ["Shared data bucket"])
    hours = cli(
        "support-hours", "add", "openscience", "1.5", "--note", "Pangeo pin", "--date", "2027-02-10"
    )
    assert hours.returncode == 0, hours.stderr
    return store


@pytest.fixture(scope="module")
def dag(env):
    return parse_dag(DAG_ID)


@pytest.fixture(scope="module")
def milestone_listings() -> list[str | None]:
    """Whose milestones each listing read during the run (tasks run in this process)."""
    return []


@pytest.fixture(scope="module")
def finished_run(airflow_db, outbox, cost_explorer, seeded, dag, milestone_listings):
    from engagements.store.local import LocalStore

    listed = LocalStore.list_milestones

    def counted(self, community_id=None):
        milestone_listings.append(community_id)
        return listed(self, community_id)

    clerk = MeetingClerk()
    clerk.start()
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(LocalStore, "list_milestones", counted)
            patch.setattr(dag.get_task("checkin.checkin_held.wait"), "deferrable", False)
            run = dag.test(logical_date=RUN, run_after=RUN, mark_success_pattern=OUTCOME_FORM)
    finally:
        clerk.stop.set()
        clerk.join(10)
    assert [r.returncode for r in clerk.results] == [0], [r.stderr for r in clerk.results]
    assert not clerk.errors, clerk.errors
    return run


def test_each_check_in_used_what_the_scan_read(finished_run, milestone_listings):
    """One pass over the milestones for every community; no report read its own."""
    assert milestone_listings == [None]


def xcom(run, task_id: str, key: str = "return_value"):
    from airflow import settings
    from airflow.models.xcom import XComModel

    with settings.Session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=DAG_ID, run_id=run.run_id, task_id=task_id, map_index=-1, key=key)
            .one()
        )
        return XComModel.deserialize_value(row)


def invitations(outbox) -> dict[str, object]:
    return {
        m["Message-ID"].split(".")[1]: m
        for m in outbox.messages()
        if m["Message-ID"].startswith("<checkin-invitation.")
    }


def test_run_succeeds_and_covers_the_due_communities(finished_run):
    assert finished_run.state == "success"
    done = {
        ti.rendered_map_index
        for ti in finished_run.get_task_instances()
        if ti.task_id == "checkin.checkin_held.record" and ti.state == "success"
    }
    assert done == set(DUE)


def test_recent_engagement_is_skipped_with_the_reason(finished_run):
    assert xcom(finished_run, "select_engagements", "skipped") == {
        "newhub": "the engagement started on 2027-03-20, less than a month before 2027-04-01"
    }


def test_reports_are_written(finished_run, env):
    folder = Path(env) / "artifacts"
    markdown = (folder / "openscience" / "checkin-2027q2.md").read_text()
    for needle in (
        "Reviews Q1 2027 (January to March)",
        "| March 2027 | $1,200.00 |",
        "2027Q1 total: $3,300.00",
        "2026Q4 total: $900.00",
        "1.5 of 4 hours",
        "Pangeo pin",
        "[openscience] Shared data bucket",
        "Expected (contract): 120",
        "Ends on Tuesday 30 November 2027: 243 days",
    ):
        assert needle in markdown, needle
    assert (folder / "openscience" / "checkin-2027q2.html").is_file()
    bare = (folder / "nocost" / "checkin-2027q2.md").read_text()
    assert "No cost figures: no cost source is configured: cloud.account is empty" in bare
    assert not (folder / "newhub").exists()


def test_invitations_go_to_the_representatives_once(finished_run, outbox):
    sent = invitations(outbox)
    assert set(sent) == set(DUE)
    mail = sent["openscience"]
    assert mail["To"] == "ada@openscience.example.org, grace@openscience.example.org"
    body = mail.get_body(("plain",)).get_content()
    assert "$3,300.00 for the quarter" in body
    assert "before Friday 30 April 2027" in body
    assert "https://cal.com/2i2c/quarterly-check-in" in body


def test_meetings_were_recorded_by_the_engineer(finished_run, seeded):
    for community in DUE:
        record = seeded.get_milestone(community, "checkin_held_2027q2")
        assert record.done
        assert record.due == dt.date(2027, 4, 30)
    assert "engagements CLI" in seeded.get_milestone("openscience", "checkin_held_2027q2").done_by
    assert seeded.get_milestone("newhub", "checkin_held_2027q2") is None


def test_a_meeting_marked_in_the_ui_records_who_marked_it(finished_run, seeded):
    """Airflow's event log of the state change names bea; the record task stores her."""
    from airflow import settings
    from airflow.models.log import Log

    record = seeded.get_milestone(MARKED_IN_UI, "checkin_held_2027q2")
    assert record.done_by == "bea (Airflow user)"
    assert "marked checkin.checkin_held.wait success in Airflow at " in record.note
    with settings.Session() as session:
        events = session.query(Log).filter_by(
            dag_id=DAG_ID, task_id="checkin.checkin_held.wait", event="patch_task_instance"
        )
        assert {event.owner for event in events} == {"bea"}


def run_note(run_id: str) -> str | None:
    """The run's note as Airflow stores it (and the UI shows it)."""
    from airflow import settings
    from airflow.models.dagrun import DagRun

    with settings.Session() as session:
        return session.query(DagRun).filter_by(dag_id=DAG_ID, run_id=run_id).one().note


def test_the_runs_note_names_who_was_skipped_and_the_rule(finished_run):
    note = run_note(finished_run.run_id)
    assert note.startswith(
        "No 2027Q2 check-in for newhub: the engagement started on 2027-03-20, less than a month "
        "before 2027-04-01.\nRule: a quarterly check-in is held with each Active engagement"
    )


def test_a_check_in_triggered_by_hand_too_early_says_why(finished_run, dag, seeded):
    """Every step is skipped, and the task log and the run's note say which rule skipped it."""
    when = RUN + dt.timedelta(days=3)
    run = dag.test(logical_date=when, run_after=when, run_conf={"community_id": "newhub"})
    assert run.state == "success"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states["select_engagements"] == "skipped"
    note = run_note(run.run_id)
    assert note.startswith("No 2027Q2 check-in for newhub: the engagement started on 2027-03-20")
    assert "less than a month before 2027-04-04" in note
    assert "Rule: a quarterly check-in is held" in note


def test_rerunning_every_task_sends_nothing_twice(finished_run, outbox, dag, seeded):
    from airflow import settings
    from airflow.models.dagrun import DagRun

    sent_before = len(outbox.messages())
    actions_before = {c: seeded.list_actions(c) for c in DUE}
    with settings.Session() as session:
        run = session.query(DagRun).filter_by(dag_id=DAG_ID, run_id=finished_run.run_id).one()
        run.state = "running"
        session.commit()

    rerun = dag.test(logical_date=RUN, run_after=RUN, mark_success_pattern=OUTCOME_FORM)

    assert rerun.state == "success"
    assert len(outbox.messages()) == sent_before
    for community, actions in actions_before.items():
        after = seeded.list_actions(community)
        assert [(a.key, a.kind) for a in after] == [(a.key, a.kind) for a in actions]


def test_in_the_scheduler_the_note_is_written_in_its_own_session(finished_run):
    """The scheduler finishes a run in a session holding it: the listener writes the note
    there (appended after a person's note), never through a second connection."""
    from airflow import settings
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel

    from engagements.listeners import RUN_NOTE_XCOM, write_run_notes

    with settings.Session() as session:
        run = session.query(DagRun).filter_by(dag_id=DAG_ID, run_id=finished_run.run_id).one()
        run.note = "Looked at by Jo."
        ti = next(t for t in run.get_task_instances(session=session) if "select" not in t.task_id)
        XComModel.set(RUN_NOTE_XCOM, "No 2027Q2 check-in for latesci: rule.", dag_id=DAG_ID,
                      task_id=ti.task_id, run_id=run.run_id, map_index=ti.map_index,
                      serialize=False, session=session)  # fmt: skip
        write_run_notes(run)
        session.commit()
    note = run_note(finished_run.run_id)
    assert note.startswith("Looked at by Jo.\n\nNo 2027Q2 check-in for ")
    assert "No 2027Q2 check-in for latesci: rule." in note
    assert "No 2027Q2 check-in for newhub" in note
