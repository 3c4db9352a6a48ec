"""GCP billing export through the google provider's BigQueryHook, at its method boundary.

``BigQueryHook.get_records`` is replaced by a recorder: the test checks the SQL and the
parameters we hand to it, and feeds back rows shaped as BigQuery returns them. What runs for
real: the provider's hook construction from the Airflow connection, our query building and
our parsing. What does not: BigQuery itself (no emulator here), so the SQL is checked by
reading it, not by executing it.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from engagements.billing import CostSource, Month
from engagements.hooks.costs import BillingExportHook, CostSourceError, billing_export_query

TABLE = "osc-hub.billing.gcp_billing_export_v1_0A1B2C"
DEC, JAN = Month(2026, 12), Month(2027, 1)


@pytest.fixture
def bigquery(monkeypatch):
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

    monkeypatch.setenv(
        "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT",
        json.dumps({"conn_type": "google_cloud_platform", "extra": {"project": "twoi2c"}}),
    )
    calls: list[dict] = []
    answers: list[list] = []

    def get_records(self, sql, parameters=None):
        calls.append({"sql": sql, "parameters": parameters, "location": self.location})
        return answers.pop(0)

    monkeypatch.setattr(BigQueryHook, "get_records", get_records)
    return calls, answers


def test_two_months_across_the_year_boundary(bigquery):
    calls, answers = bigquery
    answers.append([["202612", "USD", 500.1], ["202701", "USD", 550.0000000001]])
    costs = BillingExportHook().monthly_costs(TABLE, "osc-hub", [DEC, JAN])
    assert costs[DEC].amount == Decimal("500.10")
    assert costs[JAN].amount == Decimal("550.00")
    assert costs[JAN].source is CostSource.GCP
    (call,) = calls
    assert call["parameters"] == {
        "first_month": "202612",
        "last_month": "202701",
        "project_id": "osc-hub",
    }
    assert call["location"] == "US"
    sql = call["sql"]
    assert f"FROM `{TABLE}`" in sql
    assert "invoice.month BETWEEN %(first_month)s AND %(last_month)s" in sql
    assert "project.id = %(project_id)s" in sql
    assert "UNNEST(credits)" in sql  # credits are part of the cost
    assert "labels" not in sql


def test_shared_project_is_filtered_by_the_cluster_label(bigquery):
    calls, answers = bigquery
    answers.append([["202701", "USD", 10]])
    BillingExportHook().monthly_costs(
        TABLE, "twoi2c-shared", [JAN], cluster_label=("goog-k8s-cluster-name", "openscience")
    )
    (call,) = calls
    assert call["parameters"]["label_key"] == "goog-k8s-cluster-name"
    assert call["parameters"]["cluster"] == "openscience"
    assert "l.key = %(label_key)s AND l.value = %(cluster)s" in call["sql"]


def test_parameters_bind_the_way_the_provider_binds_them(bigquery):
    """The provider's cursor fills ``%(name)s`` with escaped literals; check ours survive it."""
    from airflow.providers.google.cloud.hooks.bigquery import _bind_parameters

    calls, answers = bigquery
    answers.append([])
    BillingExportHook().monthly_costs(
        TABLE, "it's-hub", [DEC, JAN], cluster_label=("goog-k8s-cluster-name", "x")
    )
    bound = _bind_parameters(calls[0]["sql"], calls[0]["parameters"])
    assert "invoice.month BETWEEN '202612' AND '202701'" in bound
    assert "project.id = 'it\\'s-hub'" in bound


def test_a_month_without_rows_is_missing_not_zero(bigquery):
    _, answers = bigquery
    answers.append([["202701", "USD", 0.0]])
    costs = BillingExportHook().monthly_costs(TABLE, "osc-hub", [DEC, JAN])
    assert DEC not in costs
    assert costs[JAN].amount == Decimal("0.00")


def test_two_currencies_in_one_month_are_an_error(bigquery):
    _, answers = bigquery
    answers.append([["202701", "USD", 1.0], ["202701", "EUR", 2.0]])
    with pytest.raises(CostSourceError, match="two currencies"):
        BillingExportHook().monthly_costs(TABLE, "osc-hub", [JAN])


@pytest.mark.parametrize(
    "table", ["osc-hub.billing", "osc-hub.billing.t` WHERE 1=1 --", "x.billing.t", ""]
)
def test_table_names_are_checked_since_they_cannot_be_parameters(table):
    with pytest.raises(CostSourceError, match=r"project\.dataset\.table"):
        billing_export_query(table)


def test_wildcard_export_tables_are_accepted():
    assert "`osc-hub.billing.gcp_billing_export_v1_*`" in billing_export_query(
        "osc-hub.billing.gcp_billing_export_v1_*"
    )
