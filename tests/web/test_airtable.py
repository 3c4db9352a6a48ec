"""The portfolio on the production store: Airtable (the HTTP-level fake of tests/store)."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator

import pytest

from tests.store.conftest import BASE_ID, TOKEN
from tests.store.fake_airtable import FakeAirtable

from .conftest import form_token
from .many import airtable_rows

COUNT = 150


@pytest.fixture
def airtable(monkeypatch: pytest.MonkeyPatch, tmp_path, example_dict) -> Iterator[FakeAirtable]:
    """``airtable_default`` points at the fake, holding COUNT engagements."""
    with FakeAirtable(TOKEN, BASE_ID) as fake:
        connection = {
            "conn_type": "airtable",
            "password": TOKEN,
            "extra": {"base_id": BASE_ID, "endpoint_url": fake.url},
        }
        monkeypatch.setenv("AIRFLOW_CONN_AIRTABLE_DEFAULT", json.dumps(connection))
        monkeypatch.setenv("ENGAGEMENTS_STORE", "airtable")
        monkeypatch.setenv("ENGAGEMENTS_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
        today = dt.datetime.now(dt.UTC).date()
        for table, rows in airtable_rows(example_dict, COUNT, today).items():
            fake.seed(table, rows)
        fake.requests.clear()
        yield fake


def test_portfolio_reads_each_table_in_one_paginated_pass(script, airtable) -> None:
    rows = script("viewer").get("/engagements/api/engagements").json()["engagements"]
    assert len(rows) == COUNT
    assert rows[0]["overdue"]
    assert sum(r["cost"]["verdict"] == "alert" for r in rows) == COUNT // 5
    # Only listings, page by page: nothing is read per engagement, nothing is written.
    assert {r.method for r in airtable.requests} == {"GET"}
    assert all(r.path.count("/") == 3 for r in airtable.requests)  # /v0/<base>/<table>
    records = {table: len(airtable.records(table)) for table in ("Engagements", "Milestones")}
    cost_months = sum(1 for r in airtable.records("Actions") if r["fields"]["Kind"] == "cost_month")
    assert len(airtable.requests_to("Engagements")) == math.ceil(records["Engagements"] / 100)
    assert len(airtable.requests_to("Milestones")) == math.ceil(records["Milestones"] / 100)
    assert len(airtable.requests_to("Actions")) == math.ceil(cost_months / 100)
    assert len(airtable.requests) == 2 + math.ceil(records["Milestones"] / 100) + 5


def test_community_page_and_recording_on_airtable(browser, airtable) -> None:
    client = browser("editor")
    page = client.get("/engagements/communities/community0007")
    assert page.status_code == 200
    assert "Community 0007" in page.text
    # One community: a handful of filtered reads, not the whole base.
    assert len(airtable.requests) <= 5
    response = client.post(
        "/engagements/communities/community0007/milestones/rollout_deck_reviewed",
        data={"note": "held on Zoom", "csrf_token": form_token(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    record = next(
        r["fields"]
        for r in airtable.records("Milestones")
        if r["fields"]["Key"] == "community0007/rollout_deck_reviewed"
    )
    assert record["Done by"] == "editor (engagements portfolio)"
    assert record["Note"] == "held on Zoom"
    assert "Done at" in record


def test_a_store_error_is_one_line_not_a_traceback(script, browser, airtable) -> None:
    airtable.seed("Engagements", [{"Name": "Someone edited the base by hand"}])
    response = script("viewer").get("/engagements/api/engagements")
    assert response.status_code == 503
    detail = response.json()["detail"]
    assert detail.startswith("The engagement store could not be read or written: ")
    assert "Engagements" in detail
    page = browser("viewer").get("/engagements/")
    assert page.status_code == 503
    assert "Traceback" not in page.text
