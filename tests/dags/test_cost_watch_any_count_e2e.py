"""End-to-end: the monthly cost watch on the embedded default passes for 0, 1 and many watched
communities, run on its schedule or triggered by hand with an empty conf.

No cost connection exists here (the embedded default): AWS and GCP communities have no cost
source and are left out of the statement with the reason; an Azure community's costs are
recorded with ``engagements cost record`` before the run, as an engineer would.
"""

from __future__ import annotations

import csv
import datetime as dt

import pytest

from engagements.billing import Month
from tests.dags.e2e import cli, own_environment, parse_dag

pytestmark = pytest.mark.e2e

DAG_ID = "engagement_cost_watch"
TODAY = dt.datetime.now(dt.UTC).date()
SCHEDULED = dt.datetime(TODAY.year, TODAY.month, 3, 6, tzinfo=dt.UTC)
MONTH = Month.of(TODAY).previous()


def shifted(month: Month, months: int) -> Month:
    """``month`` moved by ``months`` (negative: back)."""
    index = month.year * 12 + month.month - 1 + months
    return Month(index // 12, index % 12 + 1)


CONTRACT = {
    "contract.signed_on": str(shifted(MONTH, -4).first_day),
    "contract.start": str(shifted(MONTH, -3).first_day),
    "contract.end": str(shifted(MONTH, 10).first_day),
}
AZURE = {
    "cloud.provider": "azure",
    "cloud.region": "eastus",
    "cloud.account": "0b1f6471-1bf0-4dda-aec3-cb9272f09590",
    "cloud.billing": "2i2c",
}
GCP = {"cloud.provider": "gcp", "cloud.region": "us-central1", "cloud.account": "geo-hub"}
WATCHED = {
    0: {},
    1: {"marinelab": AZURE},
    3: {"marinelab": AZURE, "openscience": {}, "geoscience": GCP},
}


def seed(communities: dict[str, dict]) -> None:
    """As ``make run`` seeds: the example community as Closed-Won (not watched), plus the
    watched ones as Active; the Azure community's two months recorded with the CLI."""
    from engagements.config import load_config
    from engagements.hooks.store import get_store
    from tests.conftest import EXAMPLE

    assert cli("seed", str(EXAMPLE)).returncode == 0
    store = get_store()
    example = load_config(EXAMPLE)
    for community_id, changes in communities.items():
        config = example.with_decisions({"community_id": community_id, **CONTRACT, **changes})
        store.upsert_engagement(community_id, config.name, config.to_dict(), status="Active")
        if config.cloud.provider.value == "azure":
            for month, amount in ((MONTH.previous(), "800"), (MONTH, "790")):
                recorded = cli("cost", "record", community_id, str(month), amount)
                assert recorded.returncode == 0, recorded.stderr


@pytest.mark.parametrize(
    ("count", "how"), [(0, "scheduled"), (1, "scheduled"), (1, "by hand"), (3, "by hand")]
)
def test_the_cost_watch_passes(tmp_path, airflow_db, outbox, count, how):
    communities = WATCHED[count]
    with own_environment(tmp_path, DAG_ID, {}):
        seed(communities)
        dag = parse_dag(DAG_ID)
        if how == "scheduled":
            run = dag.test(logical_date=SCHEDULED, run_after=SCHEDULED)
        else:
            run = dag.test(run_conf={})

        assert run.state == "success"
        states = {(ti.task_id, ti.rendered_map_index): ti.state for ti in run.get_task_instances()}
        assert states[("write_statement", None)] == "success"
        for community_id in communities:
            assert states[("costs.check_increase", community_id)] == "success"
        statement = tmp_path / "artifacts" / "statements" / f"cloud-costs-{MONTH}.csv"
        rows = list(csv.DictReader(statement.read_text().splitlines()))
        expected = [["marinelab", "790.00"]] if "marinelab" in communities else []
        assert [[r["community"], r["cost"]] for r in rows] == expected
