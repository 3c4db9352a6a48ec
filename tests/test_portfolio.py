"""The portfolio's rows: urgency, next and overdue milestones, costs, upgrades, filters."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from engagements.billing import Month
from engagements.costs import COST_MONTH, Verdict
from engagements.portfolio import (
    Filters,
    RunInProgress,
    build_portfolio,
    milestone_title,
    parse_upgrade,
    safe_link,
    waiting_dag,
)
from engagements.store.base import ActionRecord, Engagement, EngagementStatus, MilestoneRecord

TODAY = dt.date(2027, 3, 10)
NOW = dt.datetime(2027, 3, 1, tzinfo=dt.UTC)


def engagement(cid: str, name: str, **kwargs) -> Engagement:
    config = {
        "contract": {"end": "2027-05-01"},
        "cloud": {"provider": "aws", "region": "us-west-2"},
    }
    return Engagement(cid, name, kwargs.pop("status", EngagementStatus.ACTIVE), config, **kwargs)


def pending(cid: str, key: str, due: dt.date | None) -> MilestoneRecord:
    return MilestoneRecord(cid, key, due)


def done(cid: str, key: str, at: dt.datetime) -> MilestoneRecord:
    return MilestoneRecord(cid, key, None, done_at=at, done_by="jo")


def cost(cid: str, month: str, amount: str, currency: str = "USD") -> ActionRecord:
    detail = {"month": month, "amount": amount, "currency": currency, "source": "aws-cost-explorer"}
    return ActionRecord(cid, f"cost:{month}", COST_MONTH, NOW, detail)


def build(engagements, milestones=(), actions=(), runs=None):
    return build_portfolio(
        engagements, milestones, actions, runs or {}, today=TODAY, threshold_pct=Decimal(20)
    )


def test_overdue_first_longest_on_top_then_nearest_due_then_nothing_due() -> None:
    rows = build(
        [
            engagement("calm", "Calm"),
            engagement("soon", "Soon"),
            engagement("late", "Late"),
            engagement("later", "Later"),
            engagement("latest", "Latest"),
            engagement("undated", "Undated"),
        ],
        [
            pending("late", "rollout_deck_reviewed", TODAY - dt.timedelta(days=2)),
            pending("latest", "technical_meeting_held", TODAY - dt.timedelta(days=9)),
            pending("soon", "technical_meeting_held", TODAY + dt.timedelta(days=1)),
            pending("later", "technical_meeting_held", TODAY + dt.timedelta(days=8)),
            pending("undated", "configuration_completed", None),
            done("calm", "technical_meeting_held", NOW),
        ],
    )
    assert [r.community_id for r in rows] == ["latest", "late", "soon", "later", "calm", "undated"]
    assert rows[0].overdue[0].overdue_days == 9
    assert rows[2].next_milestone.due == TODAY + dt.timedelta(days=1)
    assert rows[4].next_milestone is None
    assert rows[5].next_milestone.key == "configuration_completed"


def test_next_milestone_is_the_earliest_due_and_every_overdue_one_is_listed() -> None:
    (row,) = build(
        [engagement("c", "C")],
        [
            pending("c", "configuration_completed", None),
            pending("c", "rollout_meeting_held", TODAY + dt.timedelta(days=3)),
            pending("c", "technical_meeting_held", TODAY - dt.timedelta(days=1)),
            pending("c", "rollout_deck_reviewed", TODAY - dt.timedelta(days=5)),
            pending("c", "infrastructure_deployed", TODAY),
        ],
    )
    assert row.next_milestone.key == "rollout_deck_reviewed"
    assert row.next_milestone.title == "Rollout slide deck reviewed by the team"
    assert [m.key for m in row.overdue] == ["rollout_deck_reviewed", "technical_meeting_held"]
    assert [m.key for m in row.pending][-1] == "configuration_completed"


def test_last_checkin_contract_days_left_and_decided_cloud() -> None:
    (row,) = build(
        [engagement("c", "C", decisions={"cloud.provider": "gcp", "cloud.region": "europe-west1"})],
        [
            done("c", "checkin_held_2026q3", dt.datetime(2026, 7, 20, tzinfo=dt.UTC)),
            done("c", "checkin_held_2026q4", dt.datetime(2026, 10, 12, tzinfo=dt.UTC)),
            pending("c", "checkin_held_2027q1", dt.date(2027, 1, 30)),
            done("c", "technical_meeting_held", dt.datetime(2027, 1, 1, tzinfo=dt.UTC)),
        ],
    )
    assert row.last_checkin == dt.date(2026, 10, 12)
    assert (row.contract_end, row.days_left) == (dt.date(2027, 5, 1), 52)
    assert (row.provider, row.region) == ("gcp", "europe-west1")


@pytest.mark.parametrize(
    ("months", "verdict", "month", "change"),
    [
        ([("2027-01", "1000.00"), ("2027-02", "1200.01")], Verdict.ALERT, "2027-02", "20.0"),
        ([("2027-01", "1000.00"), ("2027-02", "1200.00")], Verdict.WITHIN, "2027-02", "20.0"),
        ([("2027-02", "1200.00")], Verdict.MISSING, "2027-02", None),
        # The running month is not closed: the last closed one is shown.
        (
            [("2027-01", "100.00"), ("2027-02", "90.00"), ("2027-03", "999")],
            Verdict.WITHIN,
            "2027-02",
            "-10.0",
        ),
    ],
)
def test_last_month_cost_by_the_cost_watch_rule(months, verdict, month, change) -> None:
    (row,) = build([engagement("c", "C")], actions=[cost("c", m, a) for m, a in months])
    assert row.cost.verdict is verdict
    assert row.cost.month == Month.parse(month)
    assert (str(row.cost.change_pct) if row.cost.change_pct is not None else None) == change


def test_different_currencies_are_not_compared_and_no_cost_is_none() -> None:
    rows = build(
        [engagement("a", "A"), engagement("b", "B")],
        actions=[cost("a", "2027-01", "10", "EUR"), cost("a", "2027-02", "99", "USD")],
    )
    by_id = {r.community_id: r for r in rows}
    assert by_id["a"].cost.verdict is Verdict.INCOMPARABLE
    assert by_id["b"].cost is None


def test_open_upgrades_are_upgrade_milestones_not_done() -> None:
    (row,) = build(
        [engagement("c", "C")],
        [
            pending("c", "upgraded_openscience_1.32", dt.date(2027, 4, 1)),
            pending("c", "upgraded_openscience_chart-4.3.3", None),
            done("c", "upgraded_openscience_1.31", NOW),
        ],
    )
    assert [(u.cluster, u.to, u.due) for u in row.open_upgrades] == [
        ("openscience", "1.32", dt.date(2027, 4, 1)),
        ("openscience", "chart-4.3.3", None),
    ]


def test_upgrade_names_titles_and_waiting_dags() -> None:
    assert parse_upgrade("upgraded_nasa-cryo_1.32").cluster == "nasa-cryo"
    assert parse_upgrade("upgraded_") is None
    assert parse_upgrade("upgraded_x") is None
    assert parse_upgrade("upgraded_openscience_latest") is None
    assert parse_upgrade("technical_meeting_held") is None
    assert (
        milestone_title("upgraded_openscience_1.32")
        == "Cluster openscience upgraded to Kubernetes 1.32"
    )
    assert milestone_title("no_such_thing") == "no_such_thing"
    assert waiting_dag("rollout_deck_reviewed") == "engagement_onboarding"
    assert waiting_dag("training_grafana") == "engagement_onboarding"
    assert waiting_dag("checkin_held_2027q1") == "engagement_quarterly_checkin"
    assert waiting_dag("cost_entry_2027_01") == "engagement_cost_watch"
    assert waiting_dag("renewal_decided_2027_11_30") == "engagement_renewal"
    assert waiting_dag("upgraded_openscience_1.32") == "engagement_platform_upkeep"
    assert waiting_dag("no_such_thing") is None


def test_runs_are_attached_to_their_community() -> None:
    run = RunInProgress("engagement_onboarding", "manual__2027-03-01T00:00:00+00:00", "running")
    rows = build([engagement("a", "A"), engagement("b", "B")], runs={"a": [run]})
    assert {r.community_id: r.runs for r in rows} == {"a": (run,), "b": ()}
    assert run.grid_path() == (
        "/dags/engagement_onboarding/runs/manual__2027-03-01T00%3A00%3A00%2B00%3A00"
    )


def test_filters_and_search() -> None:
    rows = build(
        [
            engagement("openscience", "Open Science Collective"),
            engagement("cryo", "NASA Cryosphere", status=EngagementStatus.ONBOARDING),
        ]
    )
    assert [r.community_id for r in Filters(status="Onboarding").apply(rows)] == ["cryo"]
    assert [r.community_id for r in Filters(search="science open").apply(rows)] == ["openscience"]
    assert [r.community_id for r in Filters(search="CRYO").apply(rows)] == ["cryo"]
    assert Filters(provider="gcp").apply(rows) == []
    assert len(Filters().apply(rows)) == 2


def test_only_web_addresses_become_links() -> None:
    assert safe_link("https://github.com/o/r/pull/1") == "https://github.com/o/r/pull/1"
    assert safe_link("javascript:alert(1)") is None
    assert safe_link('https://x.org/"onmouseover="alert(1)') is None
    assert safe_link("/home/airflow/infrastructure") is None
    assert safe_link(None) is None
