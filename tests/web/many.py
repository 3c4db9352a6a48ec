"""Many engagements at once, for the portfolio's tests and ``scripts/bench_portfolio.py``.

Each community has the onboarding milestones (some done, some overdue), three months of costs
(every fifth one over the alert threshold) and an email in its action log.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from decimal import Decimal
from typing import Any

from engagements.billing import CostSource, Month, MonthlyCost
from engagements.config import parse_config
from engagements.costs import COST_MONTH, month_key
from engagements.milestones import onboarding_plan
from engagements.store.base import EngagementStatus, EngagementStore

PROVIDERS = (("aws", "us-west-2"), ("gcp", "us-central1"), ("azure", "eastus"))


def community(example: dict[str, Any], i: int, today: dt.date) -> dict[str, Any]:
    data = copy.deepcopy(example)
    data["community_id"] = f"community{i:04d}"
    data["name"] = f"Community {i:04d}"
    data["contract"]["signed_on"] = (today - dt.timedelta(days=i % 40)).isoformat()
    provider, region = PROVIDERS[i % len(PROVIDERS)]
    data["cloud"].update(provider=provider, region=region, zone=None)
    if provider == "gcp":
        data["cloud"]["account"] = f"science-project-{i:04d}"
    elif provider == "azure":
        data["cloud"]["account"] = None
    return data


def costs(i: int, today: dt.date) -> list[MonthlyCost]:
    """Three closed months; every fifth community's last month is 30% up (an alert)."""
    last = Month.of(today).previous()
    rise = Decimal("1300.00") if i % 5 == 0 else Decimal("1050.00")
    amounts = (
        (last.previous().previous(), Decimal("900.00")),
        (last.previous(), Decimal("1000.00")),
        (last, rise),
    )
    return [MonthlyCost(month, amount, "USD", CostSource.AWS) for month, amount in amounts]


def milestones(data: dict[str, Any], i: int) -> list[tuple[str, dt.date | None, bool]]:
    """(milestone, due, done): the first ``i % 4`` onboarding milestones are done."""
    plan = onboarding_plan(parse_config(data))
    return [(m.key, due, n < i % 4) for n, (m, due) in enumerate(plan)]


def airtable_rows(example: dict[str, Any], count: int, today: dt.date) -> dict[str, list[dict]]:
    """The three tables' records as Airtable holds them (for ``FakeAirtable.seed``)."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    tables: dict[str, list[dict]] = {"Engagements": [], "Milestones": [], "Actions": []}
    for i in range(count):
        data = community(example, i, today)
        cid = data["community_id"]
        tables["Engagements"].append(
            {
                "Community ID": cid,
                "Name": data["name"],
                "Status": EngagementStatus.ONBOARDING.value,
                "Config": json.dumps(data),
            }
        )
        for key, due, done in milestones(data, i):
            row = {"Key": f"{cid}/{key}", "Community ID": cid, "Milestone": key}
            if due:
                row["Due"] = due.isoformat()
            if done:
                row |= {"Done at": now, "Done by": "seed"}
            tables["Milestones"].append(row)
        for cost in costs(i, today):
            detail = cost.to_detail() | {"account": "123456789012"}
            tables["Actions"].append(_action(cid, month_key(cost.month), COST_MONTH, now, detail))
        tables["Actions"].append(
            _action(cid, "email:welcome", "email", now, {"subject": "Welcome", "to": ["a@b.org"]})
        )
    return tables


def _action(cid: str, key: str, kind: str, now: str, detail: dict) -> dict[str, Any]:
    return {
        "Key": f"{cid}/{key}",
        "Community ID": cid,
        "Action": key,
        "Kind": kind,
        "Created at": now,
        "Detail": json.dumps(detail),
    }


def seed_store(store: EngagementStore, example: dict[str, Any], count: int, today: dt.date) -> None:
    """The same engagements written through a store's own methods."""
    from engagements.costs import record_month_costs

    for i in range(count):
        data = community(example, i, today)
        cid = data["community_id"]
        store.upsert_engagement(cid, data["name"], data, status=EngagementStatus.ONBOARDING)
        for key, due, done in milestones(data, i):
            store.plan_milestone(cid, key, due)
            if done:
                store.record_milestone(cid, key, by="seed")
        record_month_costs(store, cid, costs(i, today), account="123456789012")
        store.record_action(
            cid, "email:welcome", "email", {"subject": "Welcome", "to": ["a@b.org"]}
        )
