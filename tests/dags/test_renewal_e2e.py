"""End-to-end: the renewal scan and decision DAGs run by Airflow, renewed and not renewed.

The embedded store (a file of this module's own), the loopback SMTP outbox, and the decision
form answered through the function behind the REST API's ``PATCH .../hitlDetails`` while
``dag.test()`` waits, so the branch really branches.

Order, enforced by the fixtures: the daily scan (``engagement_renewal_scan``) starts the
decision runs of ``engagement_renewal`` (queued, as the API server creates them); a second scan the same day, while those runs have not run yet (the
engagements are still Active and not opened, so still due), must start nothing; then the
runs the scan started are executed, with their own run ids and conf.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading

import pytest

from tests.dags.e2e import parse_dag, states
from tests.renewal.responder import FormResponder, SeenForm

pytestmark = pytest.mark.e2e

SCAN_DAG_ID = "engagement_renewal_scan"
DAG_ID = "engagement_renewal"
TODAY = dt.datetime.now(dt.UTC).date()
END = TODAY + dt.timedelta(days=30)
NEW_END = END + dt.timedelta(days=365)
LOGICAL_DATE = dt.datetime.combine(TODAY, dt.time(6), tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from engagements.config import load_config
    from engagements.store.base import EngagementStatus
    from engagements.store.local import LocalStore
    from tests.conftest import EXAMPLE

    path = tmp_path_factory.mktemp("renewal-store") / "engagements.sqlite"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ENGAGEMENTS_STORE_PATH", str(path))
        store = LocalStore(path)
        example = load_config(EXAMPLE).to_dict()
        for community_id, end in (
            ("renewsci", END),
            ("endsci", END),
            ("farsci", TODAY + dt.timedelta(days=200)),
        ):
            data = json.loads(json.dumps(example))
            data["community_id"] = community_id
            data["contract"]["end"] = end.isoformat()
            store.upsert_engagement(
                community_id, f"{community_id} lab", data, status=EngagementStatus.ACTIVE
            )
        yield store


def reminded(community_id: str) -> bool:
    from engagements.hooks.store import get_store

    return any(
        a.key.startswith(f"email:renewal-reminder:{END}:")
        for a in get_store().list_actions(community_id)
    )


def decide(form: SeenForm):
    """renewsci is renewed at once; endsci's form times out first (nobody answers by the
    deadline), and BD answers "Not renewed" only after the reminder."""
    if "renewsci" in form.subject:
        return ["Renewed"], {"new_end": NEW_END.isoformat(), "new_start": None, "note": "signed"}
    if not reminded("endsci"):
        return None
    return ["Not renewed"], {"new_end": None, "new_start": None, "note": "funding ended"}


class DeadlinePasser(threading.Thread):
    """Lets endsci's form reach its deadline once: the waiting task's timeout is moved to the
    past, then the scheduler's own sweep (``check_awaiting_input_timeouts``) resolves it, as
    it does every loop."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.passed: list[str] = []
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set() and not self.passed:
            try:
                self._pass_deadline()
            except Exception as exc:  # a locked database: try again, but report it
                self.errors.append(repr(exc))
            self.stop.wait(0.5)

    def _pass_deadline(self) -> None:
        from airflow import settings
        from airflow.jobs.job import Job
        from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
        from airflow.models.taskinstance import TaskInstance

        with settings.Session() as session:
            ti = (
                session.query(TaskInstance)
                .filter(
                    TaskInstance.dag_id == DAG_ID,
                    TaskInstance.run_id == f"renewal__endsci__{END}",
                    TaskInstance.task_id == "renewal_decided",
                    TaskInstance.state == "awaiting_input",
                )
                .one_or_none()
            )
            if ti is None:
                return
            ti.trigger_timeout = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
            session.commit()
        SchedulerJobRunner(job=Job()).check_awaiting_input_timeouts()
        self.passed.append(ti.run_id)


def runs_of(dag_id: str) -> dict[str, dict]:
    from airflow import settings
    from airflow.models.dagrun import DagRun

    with settings.Session() as session:
        return {r.run_id: r.conf for r in session.query(DagRun).filter(DagRun.dag_id == dag_id)}


def renewal_runs() -> dict[str, dict]:
    return {k: v for k, v in runs_of(DAG_ID).items() if k.startswith("renewal__")}


def mapped_states(run, task_id: str) -> dict[str, str | None]:
    """Rendered map index (the community) to state, for the mapped task ``task_id``."""
    tis = [ti for ti in run.get_task_instances() if ti.task_id == task_id]
    assert all(ti.map_index >= 0 for ti in tis), [(ti.map_index, ti.state) for ti in tis]
    return {ti.rendered_map_index: ti.state for ti in tis}


@contextlib.contextmanager
def executing_started_run(run_id: str):
    """Make ``dag.test()`` execute the existing queued run ``run_id`` instead of a new one.

    ``dag.test()`` takes no run id: it builds a manual run id from the logical date and calls
    ``get_or_create_dagrun``, which deletes any run at that logical date and creates a new
    one with the conf it is given. Replacing that one call with "take the queued run and
    start it" (what the scheduler does to a queued run) runs the very run the scan started:
    its run id, logical date, conf and task instances; the rest of ``dag.test()`` is as is.
    """
    from airflow.models import dagrun
    from airflow.utils.state import DagRunState
    from sqlalchemy import select

    def start_queued(*, dag, session, **_):
        run = session.scalar(
            select(dagrun.DagRun).where(
                dagrun.DagRun.dag_id == dag.dag_id, dagrun.DagRun.run_id == run_id
            )
        )
        assert run is not None, f"{run_id} was never started"
        assert run.state == DagRunState.QUEUED, f"{run_id} is {run.state}, not queued"
        run.dag = dag  # as the scheduler sets it on a run it loads
        run.set_state(DagRunState.RUNNING)
        session.commit()
        return run

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dagrun, "get_or_create_dagrun", start_queued)
        yield


@pytest.fixture(scope="module")
def scan(store, airflow_db, outbox):
    return parse_dag(SCAN_DAG_ID).test(logical_date=LOGICAL_DATE, run_after=LOGICAL_DATE)


@pytest.fixture(scope="module")
def started(scan):
    """The decision runs the scan started, before anything else can start or change one."""
    return renewal_runs()


@pytest.fixture(scope="module")
def same_day_rescan(started, store):
    """The scan again the same day, before the decision runs have run."""
    later = LOGICAL_DATE + dt.timedelta(hours=1)
    return parse_dag(SCAN_DAG_ID).test(logical_date=later, run_after=later)


@pytest.fixture(scope="module")
def openings() -> list[str]:
    """The communities whose ``open_renewal`` ran during the decision runs."""
    return []


@pytest.fixture(scope="module")
def action_listings() -> list[str | None]:
    """Whose actions each listing read during the decision runs' ``open_renewal`` (tasks run
    in this process). The reminder on a timeout reads its community's renewal records, as it
    must: a decision recorded elsewhere closes the form."""
    return []


@pytest.fixture(scope="module")
def decisions(same_day_rescan, started, store, action_listings, openings):
    """The decision runs the scan started, executed with their own run ids and conf."""
    from airflow import settings
    from airflow.models.dagrun import DagRun

    from engagements.operators.renewal import OpenRenewalOperator
    from engagements.store.local import LocalStore

    listed = LocalStore.list_actions
    open_execute = OpenRenewalOperator.execute
    opening: list[bool] = []

    def counted(self, community_id=None, kind=None):
        if opening:
            action_listings.append(community_id)
        return listed(self, community_id, kind)

    def execute_opening(self, *args, **kwargs):
        openings.append(self.community_id)
        opening.append(True)
        try:
            return open_execute(self, *args, **kwargs)
        finally:
            opening.pop()

    ids = {conf["community_id"]: run_id for run_id, conf in started.items()}
    runs = {}
    deadline = DeadlinePasser()
    deadline.start()
    try:
        with (
            FormResponder(DAG_ID, {"renewal_decided": decide}) as responder,
            pytest.MonkeyPatch.context() as patch,
        ):
            patch.setattr(LocalStore, "list_actions", counted)
            patch.setattr(OpenRenewalOperator, "execute", execute_opening)
            for community_id in ("renewsci", "endsci"):
                run_id = ids[community_id]
                with settings.Session() as session:
                    queued = DagRun.find(dag_id=DAG_ID, run_id=run_id, session=session)[0]
                    logical_date = queued.logical_date
                with executing_started_run(run_id):
                    runs[community_id] = parse_dag(DAG_ID).test(
                        logical_date=logical_date, run_after=logical_date
                    )
    finally:
        deadline.stop.set()
        deadline.join(10)
    assert not responder.errors, responder.errors
    assert deadline.passed == [ids["endsci"]], deadline.errors
    return runs, responder.seen


def test_scan_starts_one_decision_run_per_due_engagement(scan, started):
    assert scan.state == "success"
    # The scan decides nothing itself: its only tasks are the listing and the starts.
    assert set(states(scan)) == {"find_due", "start_decision_runs"}
    assert mapped_states(scan, "start_decision_runs") == {
        "renewsci": "success",
        "endsci": "success",
    }
    scanned = {
        run_id: conf.pop("engagement") for run_id, conf in json.loads(json.dumps(started)).items()
    }
    assert {
        run_id: {k: v for k, v in conf.items() if k != "engagement"}
        for run_id, conf in started.items()
    } == {
        f"renewal__renewsci__{END}": {"community_id": "renewsci", "contract_end": str(END)},
        f"renewal__endsci__{END}": {"community_id": "endsci", "contract_end": str(END)},
    }
    # Each run carries the engagement as the scan read it, for its first task to start from.
    assert scanned[f"renewal__endsci__{END}"]["community_id"] == "endsci"
    assert scanned[f"renewal__endsci__{END}"]["status"] == "Active"


def test_same_day_rescan_starts_no_second_run(same_day_rescan, started, store):
    """Still due (Active, renewal not opened), so listed again; the runs exist, so skipped."""
    from airflow import settings
    from airflow.models.dagrun import DagRun

    assert same_day_rescan.state == "success"
    assert {store.get_engagement(c).status for c in ("renewsci", "endsci")} == {"Active"}
    assert mapped_states(same_day_rescan, "start_decision_runs") == {
        "renewsci": "skipped",
        "endsci": "skipped",
    }
    assert renewal_runs() == started
    with settings.Session() as session:
        runs = DagRun.find(dag_id=DAG_ID, session=session)
        assert {r.run_id: r.state for r in runs if r.run_id in started} == dict.fromkeys(
            started, "queued"
        )


def test_decision_runs_are_the_runs_the_scan_started(decisions, started, action_listings, openings):
    runs = decisions[0]
    assert {run.run_id: run.conf for run in runs.values()} == started
    assert openings == ["renewsci", "endsci"]
    # Their open_renewal started from the scan's reading: no run listed its actions again.
    assert action_listings == []


def test_renewed_path_extends_the_contract_and_never_decommissions(decisions, store, outbox):
    runs, seen = decisions
    run = runs["renewsci"]
    assert run.state == "success"
    assert {
        "open_renewal": "success",
        "renewal_decided": "success",
        "apply_renewal": "success",
        "hand_over": "skipped",
        "trigger_decommission": "skipped",
    }.items() <= states(run).items()
    engagement = store.get_engagement("renewsci")
    assert engagement.status == "Active"
    assert engagement.config["contract"]["end"] == NEW_END.isoformat()
    assert engagement.config["contract"]["start"] == (END + dt.timedelta(days=1)).isoformat()
    milestone = store.get_milestone("renewsci", f"renewal_decided_{END:%Y_%m_%d}")
    assert milestone.done_by == "bea"
    assert not any("renewsci" in run_id for run_id in runs_of("engagement_decommission"))
    (form,) = [f for f in seen if "renewsci" in f.subject]
    assert f"**{END}**" in form.body


def test_a_form_past_its_deadline_reminds_bd_and_only_an_answer_decides(decisions, outbox, store):
    """The scheduler timed endsci's form out: BD was reminded and the form waited again; the
    decision that handed it over is BD's answer, never the silence."""
    (reminder,) = [
        m for m in outbox.messages() if m["Message-ID"].strip().startswith("<renewal-reminder.")
    ]
    assert (reminder["To"], reminder["Cc"]) == ("bd@2i2c.org", "support@2i2c.org")
    assert "endsci" in reminder["Subject"]
    body = " ".join(reminder.get_body(("plain",)).get_content().split())
    assert "it is not decommissioned" in body
    (form,) = [f for f in decisions[1] if "endsci" in f.subject]
    assert form.answer[0] == ["Not renewed"]
    milestone = store.get_milestone("endsci", f"renewal_decided_{END:%Y_%m_%d}")
    assert (milestone.done_by, milestone.note) == ("bea", "funding ended")


def test_not_renewed_path_hands_over_to_decommission(decisions, store):
    run = decisions[0]["endsci"]
    assert run.state == "success"
    assert {
        "apply_renewal": "skipped",
        "hand_over": "success",
        "trigger_decommission": "success",
    }.items() <= states(run).items()
    assert store.get_engagement("endsci").status == "Decommissioning"
    triggered = runs_of("engagement_decommission")
    assert triggered[f"decommission__endsci__{END}"] == {
        "community_id": "endsci",
        "end_date": END.isoformat(),
    }


def test_bd_is_emailed_once_per_renewal(decisions, outbox):
    opened = [
        m for m in outbox.messages() if m["Message-ID"].strip().startswith("<renewal-opened.")
    ]
    assert sorted(m["Subject"].split("(")[1].split(")")[0] for m in opened) == [
        "endsci",
        "renewsci",
    ]
    assert all(m["To"] == "bd@2i2c.org" for m in opened)


def test_next_scan_after_the_decisions_finds_nothing_due(decisions, store):
    """Both renewals are opened (and decided) now, so nothing is due: no mapped start at all."""
    before = runs_of(DAG_ID)
    scans = runs_of(SCAN_DAG_ID)
    later = LOGICAL_DATE + dt.timedelta(days=1)
    rescan = parse_dag(SCAN_DAG_ID).test(logical_date=later, run_after=later)
    assert rescan.state == "success"
    assert set(runs_of(SCAN_DAG_ID)) - set(scans) == {rescan.run_id}
    assert runs_of(DAG_ID) == before
    # Nothing to expand (find_due listed no engagement): the unmapped placeholder is skipped.
    starts = [ti for ti in rescan.get_task_instances() if ti.task_id == "start_decision_runs"]
    assert [(ti.map_index, ti.state) for ti in starts] == [(-1, "skipped")]
    assert store.get_engagement("farsci").status == "Active"
