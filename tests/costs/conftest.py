"""Fixtures for the cost tests: an engagement store, AWS Cost Explorer in moto, operators."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from engagements.store.local import LocalStore

MOTO_CE_RESULTS = "http://motoapi.amazonaws.com/moto-api/static/ce/cost-and-usage-results"


@pytest.fixture
def store(store: LocalStore) -> LocalStore:
    """The example community, onboarded: Active."""
    store.update_engagement("openscience", status="Active")
    return store


class CostExplorer:
    """moto's Cost Explorer: it keeps no costs, so each test queues the answers it will give
    (moto's documented ``/moto-api/static/ce/cost-and-usage-results`` facility), and reads
    back the request bodies moto received, which are the keys of its result cache."""

    def queue(self, *results: dict[str, Any]) -> None:
        response = requests.post(MOTO_CE_RESULTS, json={"results": list(results)}, timeout=5)
        assert response.status_code == 201

    def requests(self) -> list[dict[str, Any]]:
        from moto.ce.models import ce_backends
        from moto.core import DEFAULT_ACCOUNT_ID

        return [json.loads(b) for b in ce_backends[DEFAULT_ACCOUNT_ID]["global"].cost_usage_results]


def month_result(start: str, amount: str | None, *, estimated: bool = False) -> dict[str, Any]:
    """One ``ResultsByTime`` entry as Cost Explorer returns it; None: a period with no figure."""
    year, month = int(start[:4]), int(start[5:7])
    end = f"{year + month // 12}-{month % 12 + 1:02d}-01"
    total = {"UnblendedCost": {"Amount": amount, "Unit": "USD"}} if amount is not None else {}
    return {
        "TimePeriod": {"Start": start, "End": end},
        "Total": total,
        "Groups": [],
        "Estimated": estimated,
    }


@pytest.fixture
def cost_explorer(monkeypatch) -> Iterator[CostExplorer]:
    from moto import mock_aws

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({"conn_type": "aws", "extra": {}}))
    with mock_aws():
        yield CostExplorer()
