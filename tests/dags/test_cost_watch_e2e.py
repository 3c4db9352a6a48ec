"""End-to-end: the monthly cost watch run by Airflow over four communities.

Dates are relative to today, so that the month checked has ended (the CLI refuses a cost for
a month that has not). The run uses its own embedded store, a real SMTP server on loopback (the outbox), AWS Cost
Explorer in moto (its answers queued by the test), the google provider's BigQueryHook with
``get_records`` replaced at the method boundary (no BigQuery here), and an engineer who
records the Azure community's cost with the CLI while its sensor waits.

- openscience: AWS, billed to the community's own account; the month 20.1% above the one before:
  alert; not in the pass-through statement.
- geoscience: GCP billing export, billed by 2i2c; +10% (no alert) but above its $400
  estimate: projection warning; in the statement.
- marinelab: Azure, billed by 2i2c; costs recorded by hand; in the statement.
- nocost: AWS without an account id: said so, nothing recorded, not in the statement.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import subprocess
from pathlib import Path

import pytest

from engagements.billing import Month
from tests.dags.e2e import WaitWatcher, cli, own_environment, parse_dag

pytestmark = pytest.mark.e2e

DAG_ID = "engagement_cost_watch"
TODAY = dt.datetime.now(dt.UTC).date()
RUN = dt.datetime(TODAY.year, TODAY.month, 3, 6, tzinfo=dt.UTC)
MONTH = Month.of(TODAY).previous()
PREVIOUS = MONTH.previous()


def shifted(month: Month, months: int) -> Month:
    """``month`` moved by ``months`` (negative: back)."""
    index = month.year * 12 + month.month - 1 + months
    return Month(index // 12, index % 12 + 1)


CONTRACT = {
    "contract.signed_on": str(shifted(PREVIOUS, -2).first_day),
    "contract.start": str(shifted(PREVIOUS, -1).first_day),
    "contract.end": str(shifted(MONTH, 10).end - dt.timedelta(days=1)),
}
CE_RESULTS = "http://motoapi.amazonaws.com/moto-api/static/ce/cost-and-usage-results"


def invoice(month: Month) -> str:
    """The billing export's invoice.month: YYYYMM."""
    return f"{month.year}{month.month:02d}"


class CostClerk(WaitWatcher):
    """Records marinelab's cost for the month with the CLI once its sensor has waited once."""

    def __init__(self) -> None:
        super().__init__(DAG_ID)
        self.results: list[subprocess.CompletedProcess] = []

    def on_waiting(self, task_ids: set[str]) -> None:
        if "costs.wait_for_cost_entry" in task_ids:
            self.results.append(cli("cost", "record", "marinelab", str(MONTH), "790"))
            self.stop.set()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """This module's own store, artifacts and connections; the environment is restored after."""
    values = {
        "ENGAGEMENTS_GCP_BILLING_TABLE": "billing.gcp_billing_export_v1_0A1B2C",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({"conn_type": "aws"}),
        "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT": json.dumps({"conn_type": "google_cloud_platform"}),
    }
    with own_environment(tmp_path_factory.mktemp("cost-watch"), DAG_ID, values) as home:
        yield home


@pytest.fixture(scope="module")
def billing_export(env):
    """BigQuery answers for geoscience's project; every call is kept for the assertions."""
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

    calls: list[dict] = []

    def get_records(self, sql, parameters=None):
        calls.append({"sql": sql, "parameters": parameters})
        return [[invoice(PREVIOUS), "USD", 500.0], [invoice(MONTH), "USD", 550.0]]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(BigQueryHook, "get_records", get_records)
        yield calls


@pytest.fixture(scope="module")
def cost_explorer(env):
    import requests
    from moto import mock_aws

    with mock_aws():
        results = [
            {
                "TimePeriod": {"Start": str(month.first_day), "End": str(month.end)},
                "Total": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}},
            }
            for month, amount in ((PREVIOUS, "1000.00"), (MONTH, "1201.00"))
        ]
        answer = requests.post(
            CE_RESULTS, json={"results": [{"ResultsByTime": results}]}, timeout=5
        )
        assert answer.status_code == 201
        yield


@pytest.fixture(scope="module")
def seeded(env):
    from engagements.config import load_config
    from engagements.hooks.store import get_store
    from tests.conftest import EXAMPLE

    example_config = load_config(EXAMPLE)
    store = get_store()
    communities = {
        "openscience": {},
        "geoscience": {
            "cloud.provider": "gcp",
            "cloud.region": "us-central1",
            "cloud.account": "geo-hub",
            "cloud.billing": "2i2c",
            "contract.cloud_cost_estimate_usd_month": 400,
        },
        "marinelab": {
            "cloud.provider": "azure",
            "cloud.region": "eastus",
            "cloud.account": "0b1f6471-1bf0-4dda-aec3-cb9272f09590",
            "cloud.billing": "2i2c",
        },
        "nocost": {"cloud.account": None, "cloud.billing": "2i2c"},
    }
    for community_id, changes in communities.items():
        config = example_config.with_decisions(
            {"community_id": community_id, **CONTRACT, **changes}
        )
        store.upsert_engagement(community_id, config.name, config.to_dict(), status="Active")
    recorded = cli("cost", "record", "marinelab", str(PREVIOUS), "800", "--by", "ada")
    assert recorded.returncode == 0, recorded.stderr
    return store


@pytest.fixture(scope="module")
def dag(env):
    return parse_dag(DAG_ID)


@pytest.fixture(scope="module")
def finished_run(airflow_db, outbox, billing_export, cost_explorer, seeded, dag):
    clerk = CostClerk()
    clerk.start()
    try:
        run = dag.test(logical_date=RUN, run_after=RUN)
    finally:
        clerk.stop.set()
        clerk.join(10)
    assert [r.returncode for r in clerk.results] == [0], [r.stderr for r in clerk.results]
    return run


def xcom(run, task_id: str, map_index: int = -1):
    from airflow import settings
    from airflow.models.xcom import XComModel

    with settings.Session() as session:
        row = (
            session.query(XComModel)
            .filter_by(
                dag_id=DAG_ID,
                run_id=run.run_id,
                task_id=task_id,
                map_index=map_index,
                key="return_value",
            )
            .one()
        )
        return XComModel.deserialize_value(row)


def sent(outbox, kind: str) -> dict[str, object]:
    """Messages of one kind by community (the Message-ID names both)."""
    return {
        m["Message-ID"].split(".")[1]: m
        for m in outbox.messages()
        if m["Message-ID"].startswith(f"<{kind}.")
    }


def test_run_succeeds_for_every_community(finished_run):
    assert finished_run.state == "success"
    states = {
        (ti.task_id, ti.rendered_map_index): ti.state for ti in finished_run.get_task_instances()
    }
    for community in ("openscience", "geoscience", "marinelab", "nocost"):
        assert states[("costs.fetch_costs", community)] == "success"
        assert states[("costs.check_increase", community)] == "success"


def test_the_alert_goes_to_the_representatives_and_support(finished_run, outbox):
    alerts = sent(outbox, "cost-alert")
    assert set(alerts) == {"openscience"}
    alert = alerts["openscience"]
    assert alert["To"] == "ada@openscience.example.org, grace@openscience.example.org"
    assert alert["Cc"] == "support@2i2c.org"
    body = alert.get_body(("plain",)).get_content()
    for needle in ("$1,000.00", "$1,201.00", "$201.00 (20.1%)", "home-directory", "Grafana"):
        assert needle in body


def test_projection_warning_for_the_community_above_its_estimate(finished_run, outbox):
    assert set(sent(outbox, "cost-projection")) == {"geoscience"}


def test_cost_sources_were_asked_what_they_should_be(finished_run, billing_export):
    from moto.ce.models import ce_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    (request,) = [
        json.loads(b) for b in ce_backends[DEFAULT_ACCOUNT_ID]["global"].cost_usage_results
    ]
    assert request["Filter"] == {
        "Dimensions": {"Key": "LINKED_ACCOUNT", "Values": ["123456789012"]}
    }
    assert request["TimePeriod"] == {"Start": str(PREVIOUS.first_day), "End": str(MONTH.end)}
    (query,) = billing_export
    assert query["parameters"] == {
        "first_month": invoice(PREVIOUS),
        "last_month": invoice(MONTH),
        "project_id": "geo-hub",
    }
    assert "`geo-hub.billing.gcp_billing_export_v1_0A1B2C`" in query["sql"]


def test_statement_lists_what_2i2c_passes_on(finished_run, env, seeded):
    path = Path(env) / "artifacts" / "statements" / f"cloud-costs-{MONTH}.csv"
    rows = list(csv.DictReader(path.read_text().splitlines()))
    assert rows == [
        {
            "community": "geoscience",
            "account": "geo-hub",
            "month": str(MONTH),
            "cost": "550.00",
            "currency": "USD",
        },
        {
            "community": "marinelab",
            "account": "0b1f6471-1bf0-4dda-aec3-cb9272f09590",
            "month": str(MONTH),
            "cost": "790.00",
            "currency": "USD",
        },
    ]
    (line,) = seeded.list_actions("geoscience", kind="cost_statement")
    assert line.detail["path"] == str(path)
    assert xcom(finished_run, "write_statement")["left_out"] == {
        "nocost": "cloud.account is empty: no AWS account to read costs from"
    }


def test_no_cost_source_records_nothing(finished_run, seeded):
    kinds = {a.kind for a in seeded.list_actions("nocost")}
    assert not kinds & {"cost_month", "cost_statement", "email"}
    assert "cost_month" in {a.kind for a in seeded.list_actions("openscience")}


def test_the_azure_wait_was_recorded_by_the_engineer(finished_run, seeded):
    key = f"cost_entry_{MONTH.year}_{MONTH.month:02d}"
    milestone = seeded.get_milestone("marinelab", key)
    assert milestone.done
    assert "engagements CLI" in milestone.done_by
    assert milestone.due == MONTH.end + dt.timedelta(days=6)
    assert seeded.get_milestone("openscience", key) is None


def test_rerunning_every_task_sends_and_records_nothing_twice(
    finished_run, outbox, dag, seeded, env
):
    from airflow import settings
    from airflow.models.dagrun import DagRun

    before = {c: seeded.list_actions(c) for c in ("openscience", "geoscience", "marinelab")}
    sent_before = len(outbox.messages())
    statement = Path(env) / "artifacts" / "statements" / f"cloud-costs-{MONTH}.csv"
    text_before = statement.read_text()
    with settings.Session() as session:
        run = session.query(DagRun).filter_by(dag_id=DAG_ID, run_id=finished_run.run_id).one()
        run.state = "running"
        session.commit()

    rerun = dag.test(logical_date=RUN, run_after=RUN)

    assert rerun.state == "success"
    assert len(outbox.messages()) == sent_before
    assert statement.read_text() == text_before
    for community, actions in before.items():
        after = seeded.list_actions(community)
        assert [(a.key, a.kind) for a in after] == [(a.key, a.kind) for a in actions]
