"""AWS Cost Explorer through the amazon provider's hook, against moto.

What moto exercises: botocore signing and serialising our GetCostAndUsage call, the JSON body
it carries (read back from moto, so the filter and period are checked as sent), pagination by
NextPageToken, and our parsing of moto's response. What it does not: moto computes no costs
(the figures are the ones each test queues) and ignores the filter, so that a tag or account
filter selects the right spend is not something this test can show.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from engagements.billing import CostSource, Month
from engagements.hooks.costs import CostExplorerHook, CostSourceError

from .conftest import month_result

DEC, JAN = Month(2026, 12), Month(2027, 1)


def test_two_months_across_the_year_boundary(cost_explorer):
    cost_explorer.queue(
        {
            "ResultsByTime": [
                month_result("2026-12-01", "1000.004"),
                month_result("2027-01-01", "1201"),
            ]
        }
    )
    costs = CostExplorerHook().monthly_costs("123456789012", [DEC, JAN])
    assert costs[DEC].amount == Decimal("1000.00")
    assert costs[JAN].amount == Decimal("1201.00")
    assert costs[JAN].source is CostSource.AWS
    (sent,) = cost_explorer.requests()
    assert sent == {
        "TimePeriod": {"Start": "2026-12-01", "End": "2027-02-01"},
        "Granularity": "MONTHLY",
        "Metrics": ["UnblendedCost"],
        "Filter": {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": ["123456789012"]}},
    }


def test_shared_account_is_filtered_by_the_cluster_tag(cost_explorer):
    cost_explorer.queue({"ResultsByTime": [month_result("2027-01-01", "5")]})
    CostExplorerHook().monthly_costs(
        "123456789012", [JAN], cluster_tag=("2i2c.org/cluster-name", "openscience")
    )
    (sent,) = cost_explorer.requests()
    assert sent["Filter"] == {
        "And": [
            {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": ["123456789012"]}},
            {
                "Tags": {
                    "Key": "2i2c.org/cluster-name",
                    "Values": ["openscience"],
                    "MatchOptions": ["EQUALS"],
                }
            },
        ]
    }
    assert sent["TimePeriod"] == {"Start": "2027-01-01", "End": "2027-02-01"}


def test_pages_are_followed(cost_explorer):
    cost_explorer.queue(
        {"ResultsByTime": [month_result("2026-12-01", "10")], "NextPageToken": "page-2"},
        {"ResultsByTime": [month_result("2027-01-01", "20")]},
    )
    costs = CostExplorerHook().monthly_costs("123456789012", [DEC, JAN])
    assert {m: c.amount for m, c in costs.items()} == {DEC: Decimal(10), JAN: Decimal(20)}
    first, second = cost_explorer.requests()
    assert "NextPageToken" not in first
    assert second["NextPageToken"] == "page-2"


def test_a_missing_month_is_absent_not_zero(cost_explorer):
    cost_explorer.queue(
        {"ResultsByTime": [month_result("2026-12-01", None), month_result("2027-01-01", "0")]}
    )
    costs = CostExplorerHook().monthly_costs("123456789012", [DEC, JAN])
    assert DEC not in costs
    assert costs[JAN].amount == Decimal("0.00")  # a reported zero stays a zero


def test_a_month_cost_explorer_does_not_list_is_absent(cost_explorer):
    cost_explorer.queue({"ResultsByTime": [month_result("2027-01-01", "7")]})
    assert set(CostExplorerHook().monthly_costs("123456789012", [DEC, JAN])) == {JAN}


def test_estimated_figures_are_flagged(cost_explorer):
    cost_explorer.queue({"ResultsByTime": [month_result("2027-01-01", "7", estimated=True)]})
    assert CostExplorerHook().monthly_costs("123456789012", [JAN])[JAN].estimated


def test_an_answer_for_another_period_is_an_error(cost_explorer):
    cost_explorer.queue({"ResultsByTime": [month_result("2026-06-01", "7")]})
    with pytest.raises(CostSourceError, match="2026-06-01"):
        CostExplorerHook().monthly_costs("123456789012", [JAN])
