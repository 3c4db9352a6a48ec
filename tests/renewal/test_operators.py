"""Renewal operators: the scan, the opening email, the decision form's answers and outcomes."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException, TaskAwaitingInput

from engagements.operators.renewal import (
    ApplyRenewalOperator,
    DueRenewalsOperator,
    HandOverOperator,
    OpenRenewalOperator,
    RenewalDecisionOperator,
)
from engagements.renewal import open_renewal
from engagements.settings import Settings
from engagements.store.base import EngagementStatus
from tests.conftest import waiting
from tests.doubles import CountingStore
from tests.renewal.conftest import END, add_engagement, renew


class FakeTaskInstance:
    """XCom as the task SDK's ``ti`` offers it, kept in a dict."""

    def __init__(self, xcoms: dict[tuple[str, str], Any] | None = None) -> None:
        self.xcoms = dict(xcoms or {})

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return self.xcoms.get((task_ids, key))

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[("self", key)] = value


class FakeDag:
    dag_id = "engagement_renewal"


def context(xcoms: dict | None = None, **params: Any) -> dict[str, Any]:
    return {
        "ti": FakeTaskInstance(xcoms),
        "dag": FakeDag(),
        "run_id": "renewal__openscience__2027-11-30",
        "params": params,
    }


def make(cls, store, sent: list | None = None, **kwargs):
    op = cls(task_id=cls.__name__, community_id="openscience", **kwargs)
    op.store = store
    op.settings = Settings()
    if sent is not None:
        op.deliver = sent.append
    return op


def decision_op(store) -> RenewalDecisionOperator:
    op = make(
        RenewalDecisionOperator,
        store,
        opened_task_id="open_renewal",
        renewed_task_id="apply_renewal",
        not_renewed_task_id="hand_over",
    )
    op.branched = []
    op.do_branch = lambda context, branches: op.branched.append(branches)
    op.decided = lambda ctx: ctx["ti"].xcoms[("self", "decision")]
    return op


def answer(option: str, **params: Any) -> dict[str, Any]:
    return {
        "chosen_options": [option],
        "params_input": {"new_end": None, "new_start": None, "note": ""} | params,
        "responded_at": dt.datetime(2027, 10, 20, tzinfo=dt.UTC),
        "responded_by_user": {"id": "bea", "name": "Bea (BD)"},
    }


OPENED = {("open_renewal", "return_value"): {"contract_end": END.isoformat()}}


def test_scan_gives_one_decision_run_per_due_engagement(store, config):
    today = dt.datetime.now(dt.UTC).date()
    add_engagement(store, config, "soon", end=today + dt.timedelta(days=30))
    add_engagement(store, config, "later", end=today + dt.timedelta(days=300))
    counting = CountingStore(store)
    due = make(DueRenewalsOperator, counting).execute(context())
    end = (today + dt.timedelta(days=30)).isoformat()
    scanned = due[0]["conf"].pop("engagement")
    assert due == [
        {
            "conf": {"community_id": "soon", "contract_end": end},
            "trigger_run_id": f"renewal__soon__{end}",
        }
    ]
    assert scanned == store.get_engagement("soon").to_json()
    json.dumps(due)  # an XCom, then a run's conf
    # One pass over the engagements, one over the renewal actions, one batch of plans.
    assert counting.calls == ["list_engagements", "list_actions", "plan_milestones"]
    milestone = store.get_milestone("soon", f"renewal_decided_{end.replace('-', '_')}")
    assert milestone.due.isoformat() == end


def test_opening_emails_bd_once_with_the_summary(active):
    sent: list = []
    op = make(OpenRenewalOperator, active, sent, decision_task_id="renewal_decided")
    assert op.execute(context()) == {"community_id": "openscience", "contract_end": "2027-11-30"}
    op.execute(context())

    (mail,) = sent
    assert mail["To"] == "bd@2i2c.org"
    assert mail["Cc"] is None
    assert "Renewal" in mail["Subject"]
    body = mail.get_body(("plain",)).get_content()
    for fact in (
        "Tuesday 30 November 2027",
        "$48,000",
        "Ada Lovelace <ada@openscience.example.org> (technical lead)",
        "https://openscience.2i2c.cloud",
        "renewal_decided",
    ):
        assert fact in " ".join(body.split()), fact
    assert active.get_engagement("openscience").status is EngagementStatus.RENEWAL
    assert active.get_action("openscience", "email:renewal-opened:2027-11-30") is not None


def test_a_scanned_run_opens_from_the_scan_with_two_writes_and_a_retry_sends_nothing(
    active, monkeypatch
):
    """Airtable: the status (one upsert) and the two records (opened, email) in one batch."""
    monkeypatch.setattr("engagements.operators.renewal.clock_now", lambda: NOW)
    (item,) = make(DueRenewalsOperator, active).execute(context())
    counting = CountingStore(active)
    sent: list = []
    op = make(OpenRenewalOperator, counting, sent, decision_task_id="renewal_decided")

    assert op.execute(context(**item["conf"]))["contract_end"] == END.isoformat()

    assert counting.calls == ["save_actions", "update_engagement"]
    assert len(sent) == 1
    assert active.get_engagement("openscience").status is EngagementStatus.RENEWAL
    assert active.get_action("openscience", "renewal-opened:2027-11-30") is not None
    assert active.get_action("openscience", "email:renewal-opened:2027-11-30") is not None
    retry = context(**item["conf"])
    retry["ti"].try_number = 2
    op.execute(retry)
    assert len(sent) == 1, "a retry reads the store again and finds the email recorded"


NOW = dt.datetime(2027, 10, 1, 6, tzinfo=dt.UTC)


def test_a_scanned_run_started_after_the_decision_asks_nothing(active):
    """The daily scan started a decision run, but BD decided in a run started by hand."""
    sent: list = []
    op = make(OpenRenewalOperator, active, sent, decision_task_id="renewal_decided")
    renew(active)
    with pytest.raises(AirflowSkipException, match="already decided"):
        op.execute(context(community_id="openscience", contract_end=END.isoformat()))
    assert sent == []
    assert active.get_engagement("openscience").status is EngagementStatus.ACTIVE


def test_opening_refuses_a_decommissioned_engagement(store, config):
    add_engagement(store, config, "openscience", status=EngagementStatus.DECOMMISSIONED)
    sent: list = []
    op = make(OpenRenewalOperator, store, sent, decision_task_id="renewal_decided")
    with pytest.raises(AirflowFailException, match="nothing was sent"):
        op.execute(context())
    assert sent == []


def test_form_has_no_default_and_is_due_at_the_contract_end(active, config):
    op = decision_op(active)
    assert op.defaults is None
    assert op.options == ["Renewed", "Not renewed"]
    assert set(op.params) == {"new_end", "new_start", "note"}
    now = dt.datetime(2027, 10, 1, 12, tzinfo=dt.UTC)
    op.prepare_form(config.with_decisions({"contract.end": END.isoformat()}), now)
    assert now + op.response_timeout == dt.datetime(2027, 12, 1, tzinfo=dt.UTC)
    assert "Please answer by 2027-12-01 00:00 UTC. Without an answer nothing is decided" in op.body
    assert "not renewed" not in op.body.split("Please answer")[1]


def test_renewed_answer_branches_to_apply_renewal(active):
    op = decision_op(active)
    ctx = context(OPENED)
    op.execute_complete(ctx, answer("Renewed", new_end="2028-11-30"))
    assert op.branched == ["apply_renewal"]
    assert op.decided(ctx) == {
        "decision": "Renewed",
        "decided_end": "2027-11-30",
        "decided_by": "Bea (BD)",
        "reason": "",
        "new_end": "2028-11-30",
        "new_start": None,
    }


@pytest.mark.parametrize("new_end", [None, "2027-11-30", "2026-01-01"])
def test_renewed_without_a_later_end_asks_again(active, new_end, form_requests, caplog):
    op = decision_op(active)
    with pytest.raises(TaskAwaitingInput):
        op.execute_complete(waiting(context(OPENED)), answer("Renewed", new_end=new_end))
    assert op.branched == []
    assert len(form_requests) == 1
    assert "Renewed needs new_end" in caplog.text
    assert op.response_timeout is not None  # the deadline still holds


def test_not_renewed_answer_branches_to_hand_over(active):
    op = decision_op(active)
    ctx = context(OPENED)
    op.execute_complete(ctx, answer("Not renewed", note="grant ended"))
    decision = op.decided(ctx)
    assert op.branched == ["hand_over"]
    assert decision["decision"] == "Not renewed"
    assert decision["reason"] == "grant ended"


TIMEOUT = {"error": "The response timeout has passed", "error_type": "timeout"}


def test_no_answer_by_the_deadline_reminds_bd_and_keeps_waiting(active):
    """Silence is never "not renewed": BD is reminded, the form waits again, nothing branches."""
    sent: list = []
    op = decision_op(active)
    op.deliver = sent.append
    waiting: list = []
    op.execute = waiting.append  # the HITL wait itself is exercised end to end
    ctx = context(OPENED)
    op.execute_complete(ctx, TIMEOUT)
    assert waiting == [ctx]
    assert op.branched == []
    assert ("self", "decision") not in ctx["ti"].xcoms
    (mail,) = sent
    assert (mail["To"], mail["Cc"]) == ("bd@2i2c.org", "support@2i2c.org")
    body = " ".join(mail.get_body(("plain",)).get_content().split())
    assert "it is not decommissioned" in body
    assert "you will get this reminder again" in body
    assert active.get_engagement("openscience").status is not EngagementStatus.DECOMMISSIONING
    op.execute_complete(ctx, TIMEOUT)  # the same day again: one reminder a day at most
    assert len(sent) == 1
    assert len(waiting) == 2


def test_a_timeout_after_a_renewal_recorded_elsewhere_decides_nothing(active):
    op = decision_op(active)
    renew(active)
    with pytest.raises(AirflowSkipException, match="decided meanwhile"):
        op.execute_complete(context(OPENED), TIMEOUT)
    assert op.branched == []


def test_apply_renewal_from_the_decision(active):
    open_renewal(active, "openscience", END - dt.timedelta(days=40))
    decision = {
        "decision": "Renewed",
        "decided_end": "2027-11-30",
        "decided_by": "Bea (BD)",
        "reason": "",
        "new_end": "2028-11-30",
        "new_start": None,
    }
    op = make(ApplyRenewalOperator, active, decision_task_id="renewal_decided")
    result = op.execute(context({("renewal_decided", "decision"): decision}))
    assert result == {"status": "Active", "start": "2027-12-01", "end": "2028-11-30"}


def test_apply_renewal_needs_an_answered_form(active):
    op = make(ApplyRenewalOperator, active, decision_task_id="renewal_decided")
    with pytest.raises(AirflowFailException, match="marked success instead of answered"):
        op.execute(context())


def test_hand_over_returns_the_decommission_conf_and_run_id(active):
    decision = {
        "decision": "Not renewed",
        "decided_end": "2027-11-30",
        "decided_by": "Bea (BD)",
        "reason": "grant ended",
    }
    op = make(HandOverOperator, active, decision_task_id="renewal_decided")
    ctx = context({("renewal_decided", "decision"): decision})
    assert op.execute(ctx) == {"community_id": "openscience", "end_date": "2027-11-30"}
    assert ctx["ti"].xcoms[("self", "run_id")] == "decommission__openscience__2027-11-30"
    assert active.get_engagement("openscience").status is EngagementStatus.DECOMMISSIONING


def test_on_airtable_opening_costs_at_most_three_requests_per_renewal(store, config, monkeypatch):
    """The scan, the start of the decision runs and each opening, at the HTTP level."""
    from engagements.store.airtable import AirtableStore
    from tests.store.conftest import BASE_ID, TOKEN
    from tests.store.fake_airtable import FakeAirtable

    monkeypatch.setattr("engagements.operators.renewal.clock_now", lambda: NOW)
    with FakeAirtable(TOKEN, BASE_ID) as fake:
        airtable = AirtableStore.from_credentials(TOKEN, BASE_ID, endpoint_url=fake.url, backoff=0)
        for i in range(30):
            end = NOW.date() + dt.timedelta(days=2 * i + 1)  # 30 within the 60 days
            add_engagement(airtable, config, f"c{i:02d}", end=end)
        add_engagement(airtable, config, "later", end=NOW.date() + dt.timedelta(days=200))
        before = len(fake.requests)
        sent: list = []
        due = make(DueRenewalsOperator, airtable).execute(context())
        for item in due:
            op = make(OpenRenewalOperator, airtable, sent, decision_task_id="renewal_decided")
            op.community_id = item["conf"]["community_id"]
            op.execute(context(**item["conf"]))
        requests = len(fake.requests) - before

    assert len(due) == len(sent) == 30
    assert requests / 30 <= 3, requests
