"""Cost arithmetic: months across a year boundary, the 20% rule, projection, statement."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest

from engagements.costs import (
    CostSource,
    Month,
    MonthlyCost,
    NoCostSource,
    StatementLine,
    Verdict,
    compare,
    cost_entries,
    last_full_month,
    months_between,
    parse_threshold,
    plan_cost_query,
    project,
    record_cost_entry,
    record_month_costs,
    recorded_costs,
    shared_accounts,
    statement_csv,
)
from engagements.settings import Settings

JAN = Month(2027, 1)


def usd(month: Month, amount: str) -> MonthlyCost:
    return MonthlyCost(month, Decimal(amount), "USD", CostSource.AWS)


def test_month_arithmetic_across_the_year_boundary():
    assert Month(2027, 1).previous() == Month(2026, 12)
    assert Month(2026, 12).next() == Month(2027, 1)
    assert Month(2026, 12).end == dt.date(2027, 1, 1)
    assert str(Month.parse("2027-01")) == "2027-01"
    assert last_full_month(dt.date(2027, 1, 3)) == Month(2026, 12)
    assert last_full_month(dt.date(2027, 3, 1)) == Month(2027, 2)
    assert months_between(Month(2026, 11), Month(2027, 2)) == [
        Month(2026, 11),
        Month(2026, 12),
        Month(2027, 1),
        Month(2027, 2),
    ]


@pytest.mark.parametrize("text", ["2027-13", "2027/01", "January", ""])
def test_bad_months_are_refused(text):
    with pytest.raises(ValueError, match="YYYY-MM"):
        Month.parse(text)


@pytest.mark.parametrize(
    ("current", "verdict", "pct"),
    [
        ("1199.00", Verdict.WITHIN, Decimal("19.9")),
        ("1200.00", Verdict.WITHIN, Decimal("20.0")),  # exactly 20% is not MORE than 20%
        ("1201.00", Verdict.ALERT, Decimal("20.1")),
        ("800.00", Verdict.WITHIN, Decimal("-20.0")),
    ],
)
def test_alert_only_when_more_than_the_threshold(current, verdict, pct):
    result = compare(usd(JAN.previous(), "1000.00"), usd(JAN, current), Decimal(20), month=JAN)
    assert result.verdict is verdict
    assert result.increase_pct == pct


def test_threshold_edge_with_cents_is_exact():
    """Decimal, not float: 120.00 over 100.00 is exactly 20% and no alert."""
    prev, cur = usd(JAN.previous(), "100.00"), usd(JAN, "120.00")
    assert compare(prev, cur, Decimal(20), month=JAN).verdict is Verdict.WITHIN
    assert compare(prev, usd(JAN, "120.01"), Decimal(20), month=JAN).verdict is Verdict.ALERT


def test_previous_month_of_zero():
    rise = compare(usd(JAN.previous(), "0"), usd(JAN, "10.00"), Decimal(20), month=JAN)
    assert rise.verdict is Verdict.ALERT
    assert rise.increase_pct is None  # no percentage of nothing
    assert rise.increase == Decimal("10.00")
    assert "2026-12 had no cost" in rise.reason
    both_zero = compare(usd(JAN.previous(), "0"), usd(JAN, "0"), Decimal(20), month=JAN)
    assert both_zero.verdict is Verdict.WITHIN


def test_missing_month_is_never_guessed():
    no_previous = compare(None, usd(JAN, "10"), Decimal(20), month=JAN)
    assert no_previous.verdict is Verdict.MISSING
    assert "no cost for 2026-12" in no_previous.reason
    no_current = compare(usd(JAN.previous(), "10"), None, Decimal(20), month=JAN)
    assert no_current.verdict is Verdict.MISSING
    assert "no cost for 2027-01" in no_current.reason
    assert no_current.increase is None


def test_different_currencies_are_not_compared():
    euros = MonthlyCost(JAN, Decimal(500), "EUR", CostSource.ENTRY)
    result = compare(usd(JAN.previous(), "10"), euros, Decimal(20), month=JAN)
    assert result.verdict is Verdict.INCOMPARABLE


@pytest.mark.parametrize(("text", "value"), [("20", 20), ("12.5", Decimal("12.5")), ("20%", 20)])
def test_threshold_from_the_variable(text, value):
    assert parse_threshold(text) == value


@pytest.mark.parametrize("text", ["twenty", "-5", "nan", ""])
def test_bad_threshold_names_the_variable(text):
    with pytest.raises(ValueError, match="engagements_cost_alert_threshold_pct"):
        parse_threshold(text)


def test_projection_against_the_contract_estimate(example_config):
    # Contract 2026-12 .. 2027-11, estimate $1,500/month.
    known = {
        Month(2026, 12): usd(Month(2026, 12), "1400"),
        JAN: usd(JAN, "1900"),
        Month(2026, 10): usd(Month(2026, 10), "999"),  # before the contract: not counted
    }
    projection = project(example_config, known, JAN)
    assert projection.months_known == 2
    assert projection.spent == Decimal("3300")
    assert projection.months_left == 10  # February to November 2027
    assert projection.projected == Decimal("3300") + 10 * Decimal("1900")
    assert projection.budget == Decimal("1500.00") * 12
    assert projection.exceeds

    modest = project(example_config, {JAN: usd(JAN, "1500")}, JAN)
    assert not modest.exceeds  # exactly on budget is not past it


def test_no_projection_without_an_estimate_or_a_figure(example_config):
    assert project(example_config, {}, JAN) is None
    no_estimate = example_config.with_decisions({"contract.cloud_cost_estimate_usd_month": None})
    assert project(no_estimate, {JAN: usd(JAN, "10")}, JAN) is None
    euros = {JAN: MonthlyCost(JAN, Decimal(10), "EUR", CostSource.ENTRY)}
    assert project(example_config, euros, JAN) is None


def test_statement_csv_columns_and_order():
    text = statement_csv(
        [
            StatementLine("zeta", "123", JAN, Decimal("10.5"), "USD"),
            StatementLine("alpha", "proj-a", JAN, Decimal("1234.56"), "USD"),
        ]
    )
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [
        ["community", "account", "month", "cost", "currency"],
        ["alpha", "proj-a", "2027-01", "1234.56", "USD"],
        ["zeta", "123", "2027-01", "10.50", "USD"],
    ]


def test_cost_source_per_provider(example_config):
    settings = Settings()
    aws = plan_cost_query(example_config, settings, shared=False)
    assert (aws.source, aws.account, aws.cluster_filter) == (
        CostSource.AWS,
        "123456789012",
        None,
    )
    shared = plan_cost_query(example_config, settings, shared=True)
    assert shared.cluster_filter == ("2i2c.org/cluster-name", "openscience")
    assert "shared account" in shared.describe()

    azure = example_config.with_decisions(
        {
            "cloud.provider": "azure",
            "cloud.region": "eastus",
            "cloud.account": "0b1f6471-1bf0-4dda-aec3-cb9272f09590",
        }
    )
    assert plan_cost_query(azure, settings, shared=False).source is CostSource.ENTRY


def test_gcp_source_needs_the_billing_table(example_config):
    gcp = example_config.with_decisions(
        {"cloud.provider": "gcp", "cloud.region": "us-central1", "cloud.account": "osc-hub"}
    )
    with pytest.raises(NoCostSource, match="engagements_gcp_billing_table"):
        plan_cost_query(gcp, Settings(), shared=False)
    settings = Settings(gcp_billing_table="billing_{community_id}.gcp_billing_export_v1_0A1B2C")
    query = plan_cost_query(gcp, settings, shared=True)
    assert query.table == "osc-hub.billing_openscience.gcp_billing_export_v1_0A1B2C"
    assert query.cluster_filter == ("goog-k8s-cluster-name", "openscience")
    central = Settings(gcp_billing_project="twoi2c-billing", gcp_billing_table="all.export")
    assert plan_cost_query(gcp, central, shared=False).table == "twoi2c-billing.all.export"


def test_no_account_means_no_source(example_config):
    no_account = example_config.with_decisions({"cloud.account": None})
    with pytest.raises(NoCostSource, match=r"cloud\.account is empty"):
        plan_cost_query(no_account, Settings(), shared=False)


def test_shared_accounts_from_the_store_and_the_settings(example_config):
    other = example_config.with_decisions({"community_id": "otherscience"})
    third = example_config.with_decisions(
        {"community_id": "third", "cloud.account": "999999999999"}
    )
    assert shared_accounts([example_config, other, third], Settings()) == {"123456789012"}
    configured = Settings(aws_shared_accounts=" 999999999999 , ")
    assert shared_accounts([third], configured) == {"999999999999"}


def test_cost_entry_is_recorded_replaced_and_marks_its_milestone(store):
    assert record_cost_entry(store, "openscience", JAN, Decimal("800"), "usd", by="ada") is None
    replaced = record_cost_entry(store, "openscience", JAN, Decimal("812.345"), "USD", by="bob")
    assert replaced.amount == Decimal("800.00")
    entries = cost_entries(store, "openscience")
    assert entries == {JAN: MonthlyCost(JAN, Decimal("812.35"), "USD", CostSource.ENTRY)}
    assert len(store.list_actions("openscience", kind="cost_entry")) == 1
    milestone = store.get_milestone("openscience", "cost_entry_2027_01")
    assert milestone.done
    assert milestone.done_by == "ada"


@pytest.mark.parametrize("amount", ["-1", "NaN"])
def test_bad_cost_entries_are_refused(store, amount):
    with pytest.raises(ValueError, match="at least 0"):
        record_cost_entry(store, "openscience", JAN, Decimal(amount), "USD", by="ada")
    assert store.list_actions("openscience", kind="cost_entry") == []


def test_month_costs_are_replaced_not_duplicated(store):
    record_month_costs(store, "openscience", [usd(JAN, "10")], account="123456789012")
    record_month_costs(store, "openscience", [usd(JAN, "12")], account="123456789012")
    assert recorded_costs(store, "openscience") == {JAN: usd(JAN, "12")}
    assert len(store.list_actions("openscience", kind="cost_month")) == 1
