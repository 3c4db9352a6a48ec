"""End-to-end: the quarterly check-in run by Airflow for the 2027Q2 check-in.

The run uses its own embedded store, a real SMTP server on loopback (the outbox) and AWS Cost
Explorer in moto (its answers queued by the test); an engineer records the check-in meeting
with the CLI while its sensor waits. The outcome form is marked success (``dag.test`` cannot
answer it); its answer path is covered in ``tests/checkin/test_operators.py``.

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

from tests.dags.e2e import WaitWatcher, cli, own_environment, parse_dag

pytestmark = pytest.mark.e2e

DAG_ID = "engagement_quarterly_checkin"
RUN = dt.datetime(2027, 4, 1, 6, tzinfo=dt.UTC)
OUTCOME_FORM = r"checkin\.checkin_outcome"
DUE = ("openscience", "nocost")
CE_RESULTS = "http://motoapi.amazonaws.com/moto-api/static/ce/cost-and-usage-results"


class MeetingClerk(WaitWatcher):
    """Records each check-in meeting with the CLI once the sensors have waited once."""

    def __init__(self) -> None:
        super().__init__(DAG_ID)
        self.results: list[subprocess.CompletedProcess] = []

    def on_waiting(self, task_ids: set[str]) -> None:
        if "checkin.checkin_held.wait" in task_ids:
            for community in DUE:
                self.results.append(
                    cli("milestone", "mark", community, "checkin_held_2027q2", "--note", "held")
                )
            self.stop.set()


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
            run = dag.test(logical_date=RUN, run_after=RUN, mark_success_pattern=OUTCOME_FORM)
    finally:
        clerk.stop.set()
        clerk.join(10)
    assert [r.returncode for r in clerk.results] == [0, 0], [r.stderr for r in clerk.results]
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
        if ti.task_id == "checkin.record_follow_up_issues" and ti.state == "success"
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
        assert "engagements CLI" in record.done_by
        assert record.due == dt.date(2027, 4, 30)
    assert seeded.get_milestone("newhub", "checkin_held_2027q2") is None


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
