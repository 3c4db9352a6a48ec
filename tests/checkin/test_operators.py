"""The check-in's operators: the fan-out's single read, the report task, the outcome form."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from airflow.sdk.exceptions import (
    AirflowFailException,
    AirflowSkipException,
    TaskAwaitingInput,
)

from engagements.checkin import Quarter
from engagements.operators.checkin import (
    CheckinOutcomeOperator,
    CheckinReportOperator,
    RecordCheckinFollowUpsOperator,
    SelectCheckinOperator,
)
from engagements.settings import Settings
from engagements.store.local import LocalStore
from tests.conftest import waiting
from tests.doubles import CountingStore, FakeTI

RUN = dt.datetime(2027, 4, 1, 6, tzinfo=dt.UTC)


def context() -> dict[str, Any]:
    return {"logical_date": RUN, "ti": FakeTI(), "run_id": "scheduled__2027-04-01"}


def make(cls, store, tmp_path, sent: list | None = None, **kwargs):
    op = cls(task_id=cls.__name__, **kwargs)
    op.store = store
    op.settings = Settings(artifacts_dir=str(tmp_path / "artifacts"))
    op.deliver = (sent if sent is not None else []).append
    return op


def test_fan_out_reads_the_store_once_for_200_communities(tmp_path, example_config):
    local = LocalStore(tmp_path / "fanout.sqlite")
    for i in range(200):
        start = "2027-03-20" if i % 50 == 0 else "2026-12-01"  # 4 started too recently
        config = example_config.with_decisions(
            {"community_id": f"community-{i:03d}", "contract.start": start}
        )
        local.upsert_engagement(config.community_id, config.name, config.to_dict(), status="Active")
    local.upsert_engagement("gone", "Gone", example_config.to_dict(), status="Decommissioned")
    counting = CountingStore(local)
    op = make(SelectCheckinOperator, counting, tmp_path, community_id="", quarter="")
    ctx = context()

    due = op.execute(ctx)

    # One pass per table, then the 196 meeting milestones planned (10 a request on Airtable).
    assert counting.calls == [
        "list_engagements",
        "list_actions",
        "list_milestones",
        "plan_milestones",
    ]
    assert local.get_milestone("community-001", "checkin_held_2027q2").due == dt.date(2027, 4, 30)
    assert len(due) == 196
    records = due[0].pop("records")
    assert due[0] == {
        "community_id": "community-001",
        "quarter": "2027Q2",
        "milestone": "checkin_held_2027q2",
        "shared_account": True,  # all 200 share the example's AWS account
    }
    assert records["engagement"]["community_id"] == "community-001"
    json.dumps(due)  # an XCom
    skipped = ctx["ti"].pushed["skipped"]
    assert set(skipped) == {"community-000", "community-050", "community-100", "community-150"}
    assert "less than a month" in skipped["community-050"]


def test_each_check_in_uses_what_the_scan_read_and_writes_once(store, tmp_path, monkeypatch):
    """First try: no read, one write (the report's record and the invitation's together)."""
    monkeypatch.delenv("AIRFLOW_CONN_AWS_DEFAULT", raising=False)
    store.record_action("openscience", "support-hours:2027-02-03:1", "support_hours",
                        {"on": "2027-02-03", "hours": "1.5", "note": "image", "by": "ada"})  # fmt: skip
    scan = make(SelectCheckinOperator, store, tmp_path, community_id="", quarter="")
    (item,) = scan.execute(context())
    counting = CountingStore(store)
    sent: list = []
    op = make(CheckinReportOperator, counting, tmp_path, sent, **item_kwargs(item))

    result = op.execute(context())

    assert counting.calls == ["save_actions"]
    assert len(sent) == 1
    assert result["invitation"] == sent[0]["Message-ID"]
    assert store.get_action("openscience", "email:checkin-invitation:2027q2") is not None
    markdown = (tmp_path / "artifacts" / "openscience" / "checkin-2027q2.md").read_text()
    assert "1.5" in markdown, "the support hours the scan read are in the report"
    assert "Quarterly check-in meeting held" not in markdown, "not its own open milestone"

    # A retry reads its community again and sends nothing twice.
    retry = context()
    retry["ti"].try_number = 2
    again = op.execute(retry)
    assert again["invitation"] is None
    assert len(sent) == 1
    assert "get_engagement" in counting.calls
    (report,) = store.list_actions("openscience", kind="document")
    assert report.created_at == store.get_action("openscience", "checkin-report:2027q2").created_at


def item_kwargs(item: dict) -> dict:
    return {k: v for k, v in item.items() if k != "milestone"}


def test_manual_run_for_one_community_and_a_quarter(store, tmp_path):
    op = make(SelectCheckinOperator, store, tmp_path, community_id="openscience", quarter="2027q3")
    (due,) = op.execute(context())
    assert due["quarter"] == "2027Q3"
    assert due["milestone"] == "checkin_held_2027q3"


def test_manual_run_for_a_community_that_is_not_active_is_skipped(store, tmp_path):
    store.update_engagement("openscience", status="Onboarding")
    op = make(SelectCheckinOperator, store, tmp_path, community_id="openscience", quarter="")
    ctx = context()
    with pytest.raises(AirflowSkipException, match="openscience: status is Onboarding, not Act"):
        op.execute(ctx)
    assert ctx["ti"].pushed["skipped"] == {"openscience": "status is Onboarding, not Active"}
    assert ctx["ti"].pushed["run_note"].startswith("No 2027Q2 check-in for openscience: status")


def test_a_recent_engagement_skipped_by_hand_names_the_rule(store, tmp_path):
    """Triggered by hand weeks after the start: skipped, and the rule is said, not silent."""
    engagement = store.get_engagement("openscience")
    config = {**engagement.config, "contract": {**engagement.config["contract"],
                                                "start": "2027-03-20"}}  # fmt: skip
    store.update_engagement("openscience", status="Active", config=config)
    op = make(SelectCheckinOperator, store, tmp_path, community_id="openscience", quarter="")
    ctx = context()
    with pytest.raises(AirflowSkipException) as skipped:
        op.execute(ctx)
    message = str(skipped.value)
    assert "started on 2027-03-20, less than a month before 2027-04-01" in message
    assert "rule: a quarterly check-in is held with each Active engagement" in message
    assert "Rule: a quarterly check-in is held" in ctx["ti"].pushed["run_note"]


def test_bad_quarter_fails_the_run(store, tmp_path):
    op = make(SelectCheckinOperator, store, tmp_path, community_id="", quarter="2027Q9")
    with pytest.raises(AirflowFailException, match="YYYYQN"):
        op.execute(context())


def test_report_task_without_a_cost_source(store, tmp_path, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_AWS_DEFAULT", raising=False)
    sent: list = []
    op = make(
        CheckinReportOperator, store, tmp_path, sent, community_id="openscience", quarter="2027Q2"
    )
    result = op.execute(context())
    markdown = (tmp_path / "artifacts" / "openscience" / "checkin-2027q2.md").read_text()
    assert "No cost figures: no cost source is configured" in markdown
    assert "aws_default" in markdown
    (mail,) = sent
    assert mail["To"] == "ada@openscience.example.org, grace@openscience.example.org"
    assert result["invitation"] == mail["Message-ID"]
    assert store.get_milestone("openscience", "checkin_held_2027q2").due == dt.date(2027, 4, 30)
    assert store.list_actions("openscience", kind="cost_month") == []

    again = op.execute(context())
    assert again["invitation"] is None
    assert len(sent) == 1
    assert len(store.list_actions("openscience", kind="document")) == 1


def test_report_task_with_cost_explorer(store, tmp_path, monkeypatch):
    """Six months in one Cost Explorer call (moto answers what the test queues)."""
    import requests
    from moto import mock_aws

    for name, value in {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws"}))
    months = ["2026-10", "2026-11", "2026-12", "2027-01", "2027-02", "2027-03"]
    amounts = ["900", "950", "1000", "1100", "1200", "1300"]
    results = [
        {
            "TimePeriod": {"Start": f"{m}-01", "End": "x"},
            "Total": {"UnblendedCost": {"Amount": a, "Unit": "USD"}},
        }
        for m, a in zip(months, amounts, strict=True)
    ]
    sent: list = []
    with mock_aws():
        requests.post(
            "http://motoapi.amazonaws.com/moto-api/static/ce/cost-and-usage-results",
            json={"results": [{"ResultsByTime": results}]},
            timeout=5,
        )
        op = make(
            CheckinReportOperator,
            store,
            tmp_path,
            sent,
            community_id="openscience",
            quarter="2027Q2",
        )
        op.execute(context())
    markdown = (tmp_path / "artifacts" / "openscience" / "checkin-2027q2.md").read_text()
    assert "| March 2027 | $1,300.00 |" in markdown
    assert "2027Q1 total: $3,600.00" in markdown
    assert "+26.3%" in markdown  # 3600 against 2850
    body = sent[0].get_body(("plain",)).get_content()
    assert "$3,600.00 for the quarter" in body


def answer(params_input: dict) -> dict:
    return {
        "chosen_options": ["OK"],
        "params_input": params_input,
        "responded_at": dt.datetime(2027, 4, 20, 15, tzinfo=dt.UTC),
        "responded_by_user": {"id": "admin", "name": "admin"},
    }


FORM = {"notes": "", "satisfaction": None, "requests": [], "observed_maus": None}


def test_outcome_form_is_written_and_requests_become_follow_ups(store, tmp_path):
    op = make(CheckinOutcomeOperator, store, tmp_path, community_id="openscience", quarter="2027Q2")
    detail = op.execute_complete(
        {},
        answer(
            FORM
            | {
                "notes": "Happy; workshop in June.",
                "satisfaction": "very satisfied",
                "requests": ["GPU profile for the workshop", ""],
                "observed_maus": 134,
            }
        ),
    )
    assert detail["requests"] == ["GPU profile for the workshop"]
    assert detail["responded_by"] == "admin"
    (maus,) = store.list_actions("openscience", kind="maus_observed")
    assert maus.detail["maus"] == 134
    assert maus.detail["on"] == "2027-04-20"

    follow = make(
        RecordCheckinFollowUpsOperator,
        store,
        tmp_path,
        community_id="openscience",
        quarter="2027Q2",
    )
    (key,) = follow.execute({})
    assert follow.execute({}) == [key]
    (issue,) = store.list_actions("openscience", kind="follow_up_issue")
    assert issue.detail["title"] == "[openscience] GPU profile for the workshop"


def test_invalid_outcome_asks_again_and_stores_nothing(store, tmp_path, form_requests, caplog):
    op = make(CheckinOutcomeOperator, store, tmp_path, community_id="openscience", quarter="2027Q2")
    for wrong in ({"satisfaction": "meh"}, {"observed_maus": -3}):
        with pytest.raises(TaskAwaitingInput):
            op.execute_complete(waiting(context()), answer(FORM | wrong))
        assert f"Invalid input for param {next(iter(wrong))}" in caplog.text
    assert len(form_requests) == 2
    assert store.list_actions("openscience", kind="checkin_outcome") == []


def test_no_outcome_no_follow_ups_and_no_green(store, tmp_path):
    """The outcome form marked success instead of answered: nothing to record, said so."""
    op = make(
        RecordCheckinFollowUpsOperator,
        store,
        tmp_path,
        community_id="openscience",
        quarter="2027Q2",
    )
    with pytest.raises(AirflowSkipException, match="no outcome is recorded for openscience"):
        op.execute({})
    assert store.list_actions("openscience", kind="follow_up_issue") == []


def test_form_fields():
    op = CheckinOutcomeOperator(task_id="o", community_id="x", quarter="2027Q2")
    assert set(op.params) == set(FORM)
    assert Quarter.parse(op.quarter) == Quarter(2027, 2)


def test_on_airtable_a_check_in_costs_at_most_two_requests_per_community(
    tmp_path, example_config, monkeypatch
):
    """The fan-out's figure, at the HTTP level (scripts/bench_fanout.py measures it for 500)."""
    from engagements.store.airtable import AirtableStore
    from tests.store.conftest import BASE_ID, TOKEN
    from tests.store.fake_airtable import FakeAirtable

    monkeypatch.delenv("AIRFLOW_CONN_AWS_DEFAULT", raising=False)
    with FakeAirtable(TOKEN, BASE_ID) as fake:
        store = AirtableStore.from_credentials(TOKEN, BASE_ID, endpoint_url=fake.url, backoff=0)
        for i in range(25):
            config = example_config.with_decisions({"community_id": f"c{i:02d}"})
            store.upsert_engagement(config.community_id, config.name, config.to_dict(),
                                    status="Active")  # fmt: skip
            store.record_action(config.community_id, "email:welcome", "email")
        before = len(fake.requests)
        sent: list = []
        items = make(SelectCheckinOperator, store, tmp_path, community_id="", quarter="").execute(
            context()
        )
        for item in items:
            make(CheckinReportOperator, store, tmp_path, sent, **item_kwargs(item)).execute(
                context()
            )
        requests = len(fake.requests) - before

    assert len(items) == len(sent) == 25
    assert requests / 25 <= 2, requests
