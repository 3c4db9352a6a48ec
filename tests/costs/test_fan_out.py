"""Both fan-outs over 200 communities in Airtable: one paginated pass per table, counted in
HTTP requests.

The store is the production Airtable store talking HTTP to the fake Airtable of
``tests/store`` (pageSize 100), so the count is of real requests, not of method calls.
"""

from __future__ import annotations

import datetime as dt

import pytest

from engagements.operators.checkin import SelectCheckinOperator
from engagements.operators.costs import SelectCostWatchOperator
from engagements.settings import Settings
from engagements.store.airtable import AirtableStore
from tests.doubles import FakeTI
from tests.store.fake_airtable import FakeAirtable

TOKEN = "patTESTtoken0123456789.abcdefFANOUT"
BASE_ID = "appTESTbase012345"


@pytest.fixture(scope="module")
def airtable(example_dict_module):
    with FakeAirtable(TOKEN, BASE_ID) as fake:
        store = AirtableStore.from_credentials(
            TOKEN, BASE_ID, endpoint_url=fake.url, backoff=0, timeout=(2.0, 5.0)
        )
        for i in range(200):
            config = {**example_dict_module, "community_id": f"community-{i:03d}"}
            store.upsert_engagement(config["community_id"], "C", config, status="Active")
        yield fake, store


@pytest.fixture(scope="module")
def example_dict_module():
    from engagements.config import load_config
    from tests.conftest import EXAMPLE

    return load_config(EXAMPLE).to_dict()


@pytest.mark.parametrize(
    ("operator", "period", "when"),
    [
        (SelectCostWatchOperator, "month", dt.datetime(2027, 2, 3, 6, tzinfo=dt.UTC)),
        (SelectCheckinOperator, "quarter", dt.datetime(2027, 4, 1, 6, tzinfo=dt.UTC)),
    ],
)
def test_one_paginated_pass(airtable, operator, period, when):
    fake, store = airtable
    op = operator(task_id="select_engagements", community_id="", **{period: ""})
    op.store = store
    op.settings = Settings()
    fake.requests.clear()

    selected = op.execute({"logical_date": when, "ti": FakeTI()})

    assert len(selected) == 200
    pages = fake.requests_to("Engagements")
    assert len(pages) == 2  # 200 records, 100 a page
    reads = [r for r in fake.requests if r.method == "GET"]
    writes = [r for r in fake.requests if r.method != "GET"]
    if operator is SelectCheckinOperator:
        # One pass over actions and milestones too (one page each, empty here), then the 200
        # meeting milestones planned 10 a request; no per-community read.
        assert len(reads) == 4
        assert len(writes) == 20
    else:
        assert len(fake.requests) == 2  # nothing else: no per-community read
