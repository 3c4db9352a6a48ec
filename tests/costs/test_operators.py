"""The cost watch's operators on the embedded store: fan-out, sources, alerts, statement."""

from __future__ import annotations

import csv
import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest
from airflow.sdk import PokeReturnValue

from engagements.billing import Month
from engagements.costs import record_cost_entry, recorded_costs
from engagements.operators.costs import (
    CostAlertOperator,
    MonthlyCostOperator,
    SelectCostWatchOperator,
    WriteStatementOperator,
)
from engagements.sensors.costs import CostEntrySensor
from engagements.settings import Settings
from engagements.store.local import LocalStore
from tests.doubles import CountingStore, FakeTI

from .conftest import month_result

RUN = dt.datetime(2027, 2, 3, 6, tzinfo=dt.UTC)
JAN = Month(2027, 1)


def context() -> dict[str, Any]:
    return {"logical_date": RUN, "ti": FakeTI(), "run_id": "scheduled__2027-02-03"}


def make(cls, store, *, settings: Settings | None = None, sent: list | None = None, **kwargs):
    op = cls(task_id=cls.__name__, **kwargs)
    op.store = store
    op.settings = settings or Settings(artifacts_dir=str(store.path.parent / "artifacts"))
    op.deliver = (sent if sent is not None else []).append
    return op


def add(store: LocalStore, config, status: str = "Active") -> None:
    store.upsert_engagement(config.community_id, config.name, config.to_dict(), status=status)


def test_fan_out_reads_the_store_once_for_200_communities(tmp_path, example_config):
    local = LocalStore(tmp_path / "store.sqlite")
    for i in range(200):
        status = "Active" if i % 10 else "Closed-Won"  # 20 not yet running: not watched
        config = example_config.with_decisions(
            {"community_id": f"community-{i:03d}", "cloud.account": f"{i:012d}"}
        )
        add(local, config, status)
    counting = CountingStore(local)
    op = make(SelectCostWatchOperator, counting, community_id="", month="")

    selected = op.execute(context())

    assert counting.calls == ["list_engagements"]
    assert len(selected) == 180
    assert selected[0] == {
        "community_id": "community-001",
        "month": "2027-01",
        "milestone": "cost_entry_2027_01",
        "shared_account": False,
    }


def test_one_community_still_sees_which_accounts_are_shared(store, example_config):
    add(store, example_config.with_decisions({"community_id": "neighbour"}))
    counting = CountingStore(store)
    op = make(SelectCostWatchOperator, counting, community_id="openscience", month="2026-12")
    ctx = context()
    (selected,) = op.execute(ctx)
    assert counting.calls == ["list_engagements"]
    assert selected["shared_account"] is True  # neighbour uses the same AWS account
    assert selected["month"] == "2026-12"
    assert ctx["ti"].pushed["month"] == "2026-12"


def test_unknown_community_is_an_error(store):
    from engagements.store.base import NotFound

    op = make(SelectCostWatchOperator, store, community_id="nobody", month="")
    with pytest.raises(NotFound, match="nobody"):
        op.execute(context())


def fetch_and_check(store, sent, **settings):
    fetch = make(
        MonthlyCostOperator,
        store,
        settings=Settings(**settings),
        community_id="openscience",
        month="2027-01",
    )
    check = make(
        CostAlertOperator,
        store,
        settings=Settings(**settings),
        sent=sent,
        community_id="openscience",
        month="2027-01",
    )
    return fetch.execute(context()), check.execute(context())


@pytest.mark.parametrize(
    ("january", "alerted"), [("1199.00", False), ("1200.00", False), ("1201.00", True)]
)
def test_alert_through_cost_explorer(store, cost_explorer, january, alerted):
    cost_explorer.queue(
        {
            "ResultsByTime": [
                month_result("2026-12-01", "1000.00"),
                month_result("2027-01-01", january),
            ]
        }
    )
    sent: list = []
    fetched, checked = fetch_and_check(store, sent)
    assert fetched["status"] == "recorded"
    assert set(fetched["costs"]) == {"2026-12", "2027-01"}
    assert (checked["verdict"] == "alert") is alerted
    assert len(sent) == int(alerted)
    if alerted:
        (mail,) = sent
        assert mail["To"] == "ada@openscience.example.org, grace@openscience.example.org"
        assert mail["Cc"] == "support@2i2c.org"
        body = mail.get_body(("plain",)).get_content()
        for needle in ("$1,000.00", "$1,201.00", "20.1%", "grafana.openscience", "home-directory"):
            assert needle in body


def test_alert_is_sent_once_per_month(store, cost_explorer):
    cost_explorer.queue(
        {"ResultsByTime": [month_result("2026-12-01", "100"), month_result("2027-01-01", "200")]}
    )
    sent: list = []
    fetch_and_check(store, sent)
    fetch_and_check(store, sent)  # re-run: same request, moto answers the same figures
    assert len(sent) == 1
    assert len(store.list_actions("openscience", kind="cost_month")) == 2


def test_previous_month_of_zero_alerts(store, cost_explorer):
    cost_explorer.queue(
        {"ResultsByTime": [month_result("2026-12-01", "0"), month_result("2027-01-01", "350")]}
    )
    sent: list = []
    _, checked = fetch_and_check(store, sent)
    assert checked["verdict"] == "alert"
    assert checked["increase_pct"] is None
    assert "December 2026 had no cost" in sent[0].get_body(("plain",)).get_content()


def test_missing_month_no_alert_and_nothing_invented(store, cost_explorer):
    cost_explorer.queue({"ResultsByTime": [month_result("2027-01-01", "500")]})
    sent: list = []
    fetched, checked = fetch_and_check(store, sent)
    assert set(fetched["costs"]) == {"2027-01"}
    assert checked["verdict"] == "missing month"
    assert sent == []
    assert set(recorded_costs(store, "openscience")) == {JAN}


def test_projection_warning_once(store, cost_explorer):
    cost_explorer.queue(
        {"ResultsByTime": [month_result("2026-12-01", "1800"), month_result("2027-01-01", "1900")]}
    )
    sent: list = []
    fetch_and_check(store, sent)
    fetch_and_check(store, sent)
    (warning,) = sent  # 1900 is within 20% of 1800, but above the $1,500 estimate
    assert "estimate" in warning["Subject"]
    assert warning["Cc"] == "support@2i2c.org, bd@2i2c.org"


def test_no_aws_connection_means_no_source(store, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_AWS_DEFAULT", raising=False)
    before = store.list_actions("openscience")
    sent: list = []
    fetched, _ = fetch_and_check(store, sent)
    assert fetched["status"] == "no cost source"
    assert "aws_default" in fetched["reason"]
    assert store.list_actions("openscience") == before
    assert sent == []


def test_no_account_means_no_source_and_nothing_recorded(store, example_config, caplog):
    no_account = example_config.with_decisions({"cloud.account": None})
    store.upsert_engagement("openscience", no_account.name, no_account.to_dict())
    before = store.list_actions("openscience")
    sent: list = []
    with caplog.at_level("WARNING"):
        fetched, checked = fetch_and_check(store, sent)
    assert fetched == {
        "community_id": "openscience",
        "month": "2027-01",
        "status": "no cost source",
        "reason": "cloud.account is empty: no AWS account to read costs from",
    }
    assert "No cost source is configured for openscience" in caplog.text
    assert store.list_actions("openscience") == before
    assert checked["verdict"] == "missing month"
    assert sent == []


def test_gcp_through_the_billing_export(store, example_config, monkeypatch):
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

    gcp = example_config.with_decisions(
        {"cloud.provider": "gcp", "cloud.region": "us-central1", "cloud.account": "osc-hub"}
    )
    store.upsert_engagement("openscience", gcp.name, gcp.to_dict())
    monkeypatch.setenv(
        "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", json.dumps({"conn_type": "google_cloud_platform"})
    )
    seen: list = []

    def get_records(self, sql, parameters=None):
        seen.append(parameters)
        return [["202612", "USD", 100.0], ["202701", "USD", 120.5]]

    monkeypatch.setattr(BigQueryHook, "get_records", get_records)
    sent: list = []
    fetched, checked = fetch_and_check(store, sent, gcp_billing_table="billing.export")
    assert seen == [{"first_month": "202612", "last_month": "202701", "project_id": "osc-hub"}]
    assert fetched["source"].startswith("BigQuery billing export osc-hub.billing.export")
    assert checked["verdict"] == "alert"  # 20.5% > 20%


def test_gcp_without_a_billing_table_is_not_configured(store, example_config):
    gcp = example_config.with_decisions(
        {"cloud.provider": "gcp", "cloud.region": "us-central1", "cloud.account": "osc-hub"}
    )
    store.upsert_engagement("openscience", gcp.name, gcp.to_dict())
    fetched, _ = fetch_and_check(store, [])
    assert fetched["status"] == "no cost source"
    assert "engagements_gcp_billing_table" in fetched["reason"]


def azure(store, example_config) -> None:
    config = example_config.with_decisions(
        {
            "cloud.provider": "azure",
            "cloud.region": "eastus",
            "cloud.account": "0b1f6471-1bf0-4dda-aec3-cb9272f09590",
        }
    )
    store.upsert_engagement("openscience", config.name, config.to_dict())


def test_entry_sensor_is_done_at_once_for_an_api_source(store):
    op = make(
        CostEntrySensor,
        store,
        community_id="openscience",
        milestone="cost_entry_2027_01",
        month="2027-01",
    )
    result = op.poke(context())
    assert isinstance(result, PokeReturnValue)
    assert result.is_done
    assert store.get_milestone("openscience", "cost_entry_2027_01") is None


def test_entry_sensor_waits_for_the_recorded_cost(store, example_config):
    azure(store, example_config)
    op = make(
        CostEntrySensor,
        store,
        community_id="openscience",
        milestone="cost_entry_2027_01",
        month="2027-01",
    )
    assert op.poke(context()) is False
    planned = store.get_milestone("openscience", "cost_entry_2027_01")
    assert planned.due == dt.date(2027, 2, 7)
    record_cost_entry(store, "openscience", JAN, Decimal("790"), "USD", by="ada")
    assert op.poke(context()).is_done


def test_azure_costs_come_from_the_entries(store, example_config):
    azure(store, example_config)
    record_cost_entry(store, "openscience", JAN.previous(), Decimal("800"), "USD", by="ada")
    record_cost_entry(store, "openscience", JAN, Decimal("790"), "USD", by="ada")
    fetched, checked = fetch_and_check(store, [])
    assert fetched["costs"]["2027-01"]["amount"] == "790.00"
    assert fetched["costs"]["2027-01"]["source"] == "cost-entry"
    assert checked["verdict"] == "within threshold"


def result(community_id: str, amount: str | None, *, pass_through: bool = True) -> dict:
    if amount is None:
        return {"community_id": community_id, "month": "2027-01", "status": "no cost source"}
    cost = {"month": "2027-01", "amount": amount, "currency": "USD", "source": "cost-entry"}
    return {
        "community_id": community_id,
        "month": "2027-01",
        "status": "recorded",
        "account": f"acct-{community_id}",
        "pass_through": pass_through,
        "costs": {"2027-01": cost},
    }


def test_statement_has_the_pass_through_lines_and_a_rerun_replaces_it(store, tmp_path):
    results = [
        result("openscience", "12.50"),
        result("direct", "99.00", pass_through=False),
        result("nosource", None),
    ]
    op = make(WriteStatementOperator, store, results=results, month="2027-01")
    first = op.execute(context())
    path = tmp_path / "artifacts" / "statements" / "cloud-costs-2027-01.csv"
    assert first["path"] == str(path)
    assert first["left_out"] == {"nosource": "no cost source"}
    assert list(csv.reader(path.read_text().splitlines())) == [
        ["community", "account", "month", "cost", "currency"],
        ["openscience", "acct-openscience", "2027-01", "12.50", "USD"],
    ]
    (line,) = store.list_actions("openscience", kind="cost_statement")
    assert line.detail["amount"] == "12.50"

    results[0] = result("openscience", "13.00")
    make(WriteStatementOperator, store, results=results, month="2027-01").execute(context())
    assert path.read_text().splitlines()[1:] == ["openscience,acct-openscience,2027-01,13.00,USD"]
    (line,) = store.list_actions("openscience", kind="cost_statement")
    assert line.detail["amount"] == "13.00"
    assert not list(path.parent.glob("*.partial"))
