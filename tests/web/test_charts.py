"""The server-side SVG charts: what they mark, and that no text becomes markup."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from decimal import Decimal

from engagements.billing import CostSource, Month, MonthlyCost
from engagements.checkin import Quarter
from engagements.dossier import MilestoneLine, QuarterHours
from engagements.web import charts

TODAY = dt.date(2027, 3, 10)
SVG = "{http://www.w3.org/2000/svg}"


def parse(markup) -> ET.Element:
    return ET.fromstring(str(markup))  # well-formed XML, or this raises


def line(key, due, done_at=None, by=None) -> MilestoneLine:
    overdue = (TODAY - due).days if due and not done_at and due < TODAY else 0
    return MilestoneLine(key, f"<b>{key}</b>", due, done_at, by, None, overdue, None)


def test_timeline_marks_due_done_late_and_overdue() -> None:
    svg = parse(
        charts.timeline(
            [
                line(
                    "on_time",
                    dt.date(2027, 2, 1),
                    dt.datetime(2027, 1, 30, tzinfo=dt.UTC),
                    "<i>x</i>",
                ),
                line("late", dt.date(2027, 2, 1), dt.datetime(2027, 2, 9, tzinfo=dt.UTC), "jo"),
                line("overdue", dt.date(2027, 3, 1)),
                line("undated", None),
            ],
            TODAY,
        )
    )
    classes = [e.get("class") for e in svg.iter()]
    assert "bar late" in classes
    assert "bar overdue" in classes
    assert "dot done" in classes
    assert "today" in classes
    texts = [e.text for e in svg.iter(f"{SVG}text")]
    assert "<b>overdue</b>" in texts  # the title as text, not as markup
    assert not list(svg.iter(f"{SVG}b"))


def test_costs_mark_months_above_the_alert_limit() -> None:
    months = [
        MonthlyCost(Month(2026, 12), Decimal("1000"), "USD", CostSource.AWS),
        MonthlyCost(Month(2027, 1), Decimal("1200"), "USD", CostSource.AWS),
        MonthlyCost(Month(2027, 2), Decimal("1500"), "USD", CostSource.AWS),
    ]
    svg = parse(charts.costs(months, Decimal(20), Decimal("1500")))
    bars = [e.get("class") for e in svg.iter(f"{SVG}rect")]
    assert bars == ["bar-cost", "bar-cost", "bar-cost alert"]  # exactly 20% is no alert
    limits = [e for e in svg.iter(f"{SVG}line") if e.get("class") == "limit"]
    assert len(limits) == 2
    assert limits[1].find(f"{SVG}title").text == "alert above $1,440.00"
    assert any(e.get("class") == "estimate" for e in svg.iter(f"{SVG}line"))


def test_support_hours_against_the_allowance_and_empty_charts() -> None:
    svg = parse(
        charts.support(
            [
                QuarterHours(Quarter(2027, 1), Decimal("5")),
                QuarterHours(Quarter(2026, 4), Decimal(1)),
            ]
        )
    )
    assert [e.get("class") for e in svg.iter(f"{SVG}rect")] == ["bar-hours alert", "bar-hours"]
    assert "4 h a quarter" in str(charts.support([QuarterHours(Quarter(2027, 1), Decimal(0))]))
    assert "No milestones" in str(charts.timeline([], TODAY))
    assert "No monthly cost" in str(charts.costs([], Decimal(20), None))
