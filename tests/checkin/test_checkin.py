"""Check-in logic: quarters, who is due, support hours, the report and its renderings."""

from __future__ import annotations

import datetime as dt
import html
import re
from decimal import Decimal

import pytest

from engagements.billing import CostSource, Month, MonthlyCost
from engagements.checkin import (
    SUPPORT_HOURS,
    Quarter,
    build_report,
    checkin_due,
    hours_by_quarter,
    normalize_outcome,
    parse_hours,
    record_follow_ups,
    record_outcome,
    record_support_hours,
    render_report,
    select_for_checkin,
    skip_reason,
    support_hours,
    write_report,
)
from engagements.store.base import Engagement, EngagementStatus

APRIL_1 = dt.date(2027, 4, 1)
Q2 = Quarter(2027, 2)


def engagement(example_config, community_id="openscience", status="Active", start="2026-12-01"):
    config = example_config.with_decisions(
        {"community_id": community_id, "contract.start": start}
    ).to_dict()
    return Engagement(community_id, "X", EngagementStatus(status), config)


def usd(month: Month, amount: str) -> MonthlyCost:
    return MonthlyCost(month, Decimal(amount), "USD", CostSource.AWS)


def test_quarters():
    assert Quarter.of(dt.date(2027, 1, 1)) == Quarter(2027, 1)
    assert Quarter.of(dt.date(2027, 12, 31)) == Quarter(2027, 4)
    assert Quarter(2027, 1).previous() == Quarter(2026, 4)
    assert Quarter.parse("2027q2") == Quarter.parse("2027Q2") == Q2
    assert Q2.key == "2027q2"
    assert Q2.months == [Month(2027, 4), Month(2027, 5), Month(2027, 6)]
    assert Quarter(2026, 4).label() == "Q4 2026 (October to December)"
    assert checkin_due(Q2) == dt.date(2027, 4, 30)


@pytest.mark.parametrize("text", ["2027Q5", "27Q1", "Q1", "2027-1"])
def test_bad_quarters_are_refused(text):
    with pytest.raises(ValueError, match="YYYYQN"):
        Quarter.parse(text)


def test_who_is_due_a_checkin(example_config):
    engagements = [
        engagement(example_config),
        engagement(example_config, "fresh", start="2027-03-15"),
        engagement(example_config, "exactly", start="2027-03-01"),
        engagement(example_config, "onboarding", status="Onboarding"),
    ]
    due, skipped = select_for_checkin(engagements, APRIL_1)
    assert due == ["openscience", "exactly"]
    assert skipped == {
        "fresh": "the engagement started on 2027-03-15, less than a month before 2027-04-01",
        "onboarding": "status is Onboarding, not Active",
    }


def test_month_after_a_31st_is_the_end_of_the_next_month(example_config):
    started = engagement(example_config, start="2027-01-31")
    assert skip_reason(started, dt.date(2027, 2, 27)) is not None
    assert skip_reason(started, dt.date(2027, 2, 28)) is None


def test_support_hours_by_quarter(store):
    record_support_hours(
        store, "openscience", Decimal("1.5"), note="pin", by="ada", on=dt.date(2027, 2, 10)
    )
    record_support_hours(
        store, "openscience", Decimal("3"), note="R", by="ada", on=dt.date(2027, 3, 31)
    )
    record_support_hours(store, "openscience", Decimal("1"), note="Q2", by="bob", on=APRIL_1)
    entries = support_hours(store.list_actions("openscience", kind=SUPPORT_HOURS))
    assert [e.note for e in entries] == ["pin", "R", "Q2"]
    assert hours_by_quarter(entries) == {Quarter(2027, 1): Decimal("4.5"), Q2: Decimal(1)}


@pytest.mark.parametrize("text", ["0", "-1", "abc", "nan", "9999"])
def test_bad_hours_are_refused(text):
    with pytest.raises(ValueError, match="hours"):
        parse_hours(text)


def report_for(store, example_config, costs, *, source="AWS Cost Explorer, linked account 1"):
    return build_report(
        example_config,
        Q2,
        APRIL_1,
        actions=store.list_actions("openscience"),
        milestones=store.list_milestones("openscience"),
        costs=costs,
        cost_source=source,
    )


def test_report_figures(store, example_config):
    q4 = {m: usd(m, "1000") for m in Quarter(2026, 4).months}
    q1 = {
        m: usd(m, a) for m, a in zip(Quarter(2027, 1).months, ["1100", "1200", "1300"], strict=True)
    }
    record_support_hours(
        store, "openscience", Decimal("5"), note="big", by="ada", on=dt.date(2027, 2, 1)
    )
    record_follow_ups(store, "openscience", Quarter(2027, 1), ["Custom domain"])
    report = report_for(store, example_config, q4 | q1)
    assert report.reviewed == Quarter(2027, 1)
    assert report.quarter_total(Quarter(2027, 1)).amount == Decimal(3600)
    assert report.trend_pct == Decimal("20.0")
    assert report.support_used == Decimal(5)
    assert report.open_follow_ups == ["[openscience] Custom domain"]
    assert report.days_to_end == (dt.date(2027, 11, 30) - APRIL_1).days
    assert {m.key for m in report.open_milestones} >= {"technical_meeting_held"}
    assert all(m.overdue for m in report.open_milestones if m.due)

    markdown, page = render_report(report)
    for text in (markdown, html.unescape(re.sub(r"<[^>]+>", " ", page))):
        assert "$1,100.00" in text
        assert "$3,600.00" in text
        assert "+20.0%" in text
        assert "5 of 4 hours" in text
        assert "over the allowance" in text
        assert "Expected (contract): 120" in text
        assert "Custom domain" in text
        assert "Initial technical meeting held" in text
        assert "OVERDUE" in text


def test_report_with_a_missing_month_has_no_total_or_trend(store, example_config):
    q1 = {m: usd(m, "10") for m in Quarter(2027, 1).months[:2]}
    report = report_for(store, example_config, q1)
    assert report.quarter_total(Quarter(2027, 1)) is None
    assert report.trend_pct is None
    markdown, _ = render_report(report)
    assert "| March 2027 | no figure |" in markdown
    assert "2027-03" in markdown  # listed as a month with no figure


def test_report_without_a_cost_source_shows_no_figures(store, example_config):
    report = build_report(
        example_config,
        Q2,
        APRIL_1,
        actions=[],
        milestones=[],
        costs=None,
        cost_source=None,
        cost_note="no cost source is configured: cloud.account is empty",
    )
    markdown, page = render_report(report)
    assert "No cost figures: no cost source is configured: cloud.account is empty." in markdown
    assert "$" not in markdown
    assert "$0" not in page


def test_report_html_is_escaped(store, example_config):
    config = example_config.with_decisions({"name": "<b>Evil</b> & Co"})
    report = build_report(
        config, Q2, APRIL_1, actions=[], milestones=[], costs=None, cost_source=None, cost_note="x"
    )
    markdown, page = render_report(report)
    assert "<b>Evil</b>" not in page
    assert "&lt;b&gt;Evil&lt;/b&gt; &amp; Co" in page
    assert "<b>Evil</b> & Co" in markdown


def test_report_files_are_replaced(store, example_config, tmp_path):
    report = report_for(store, example_config, {})
    md, page = write_report(report, tmp_path / "out")
    assert md.name == "checkin-2027q2.md"
    assert page.name == "checkin-2027q2.html"
    write_report(report, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "checkin-2027q2.html",
        "checkin-2027q2.md",
    ]


def test_outcome_is_normalized_and_recorded_with_maus(store):
    outcome = normalize_outcome(
        {
            "notes": " fine ",
            "satisfaction": "satisfied",
            "requests": ["GPU  profile", " "],
            "observed_maus": 97,
        }
    )
    assert outcome == {
        "notes": "fine",
        "satisfaction": "satisfied",
        "requests": ["GPU profile"],
        "observed_maus": 97,
    }
    record_outcome(store, "openscience", Q2, outcome, responded_by="admin", on=APRIL_1)
    record_outcome(store, "openscience", Q2, outcome, responded_by="admin", on=APRIL_1)
    assert len(store.list_actions("openscience", kind="checkin_outcome")) == 1
    (maus,) = store.list_actions("openscience", kind="maus_observed")
    assert maus.detail == {"quarter": "2027Q2", "maus": 97, "on": "2027-04-01"}


@pytest.mark.parametrize(
    ("answer", "field"),
    [({"satisfaction": "meh"}, "satisfaction"), ({"observed_maus": -3}, "observed_maus")],
)
def test_bad_outcome_is_refused(answer, field):
    with pytest.raises(ValueError, match=field):
        normalize_outcome(answer)


def test_follow_ups_are_not_duplicated(store):
    first = record_follow_ups(store, "openscience", Q2, ["Shared bucket", "shared  bucket"])
    again = record_follow_ups(store, "openscience", Q2, ["Shared bucket"])
    assert len(set(first)) == 1
    assert again == first[:1]
    (issue,) = store.list_actions("openscience", kind="follow_up_issue")
    assert issue.detail["body"] == "Requested at the 2027Q2 quarterly check-in: Shared bucket"
