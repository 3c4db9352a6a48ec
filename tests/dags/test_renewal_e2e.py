"""End-to-end: the renewal DAG run by Airflow, the renewed and the not-renewed paths.

The embedded store (a file of this module's own), the loopback SMTP outbox, and the decision
form answered through the function behind the REST API's ``PATCH .../hitlDetails`` while
``dag.test()`` waits, so the branch really branches.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.dags.e2e import parse_dag, states
from tests.renewal.responder import FormResponder, SeenForm

pytestmark = pytest.mark.e2e

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


def decide(form: SeenForm):
    if "renewsci" in form.subject:
        return ["Renewed"], {"new_end": NEW_END.isoformat(), "new_start": None, "note": "signed"}
    return ["Not renewed"], {"new_end": None, "new_start": None, "note": "funding ended"}


def runs_of(dag_id: str) -> dict[str, dict]:
    from airflow import settings
    from airflow.models.dagrun import DagRun

    with settings.Session() as session:
        return {r.run_id: r.conf for r in session.query(DagRun).filter(DagRun.dag_id == dag_id)}


@pytest.fixture(scope="module")
def scan(store, airflow_db, outbox):
    return parse_dag(DAG_ID).test(logical_date=LOGICAL_DATE, run_after=LOGICAL_DATE)


@pytest.fixture(scope="module")
def decisions(scan, store):
    """One decision run per community, as the scan started them (conf from the scan)."""
    with FormResponder(DAG_ID, {"renewal_decided": decide}) as responder:
        runs = {
            community_id: parse_dag(DAG_ID).test(
                logical_date=LOGICAL_DATE + dt.timedelta(hours=hour),
                run_after=LOGICAL_DATE + dt.timedelta(hours=hour),
                run_conf={"community_id": community_id, "contract_end": END.isoformat()},
            )
            for hour, community_id in ((1, "renewsci"), (2, "endsci"))
        }
    assert not responder.errors, responder.errors
    return runs, responder.seen


def test_scan_starts_one_decision_run_per_due_engagement(scan):
    assert scan.state == "success"
    assert states(scan)["open_renewal"] == "skipped"
    started = {k: v for k, v in runs_of(DAG_ID).items() if k.startswith("renewal__")}
    assert started == {
        f"renewal__renewsci__{END}": {"community_id": "renewsci", "contract_end": str(END)},
        f"renewal__endsci__{END}": {"community_id": "endsci", "contract_end": str(END)},
    }


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


def test_next_scan_finds_nothing_new(decisions, store):
    before = runs_of(DAG_ID)
    later = LOGICAL_DATE + dt.timedelta(days=1)
    rescan = parse_dag(DAG_ID).test(logical_date=later, run_after=later)
    assert rescan.state == "success"
    assert set(runs_of(DAG_ID)) - set(before) == {rescan.run_id}
    assert store.get_engagement("farsci").status == "Active"
