"""Monthly cloud costs from each provider's billing source.

- AWS: Cost Explorer through the amazon provider (``aws_default``), by linked account, and by
  the cluster tag when the account is shared with other communities.
- GCP: the BigQuery billing export through the google provider (``google_cloud_default``), by
  project, and by the GKE cluster label when the project is shared.
- Azure and Jetstream2 have no billing API here: their costs are the entries engineers record
  in the store (:func:`engagements.costs.cost_entries`), so there is no hook for them.

Each hook answers ``{Month: MonthlyCost}`` for the months it has figures for; a month the
source does not report is absent, never zero.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.sdk import BaseHook

from engagements.billing import CostSource, Month, MonthlyCost, money

if TYPE_CHECKING:
    from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

COST_METRIC = "UnblendedCost"
"""What the account is billed before credits and discounts are shared out across accounts."""
DEFAULT_BILLING_LOCATION = "US"
"""Where billing export datasets usually live; the connection's ``location`` extra overrides."""
_TABLE = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]\.[A-Za-z0-9_]{1,1024}\.[A-Za-z0-9_*$-]{1,1024}")


class CostSourceError(RuntimeError):
    """The source answered something we cannot turn into monthly costs."""


def cost_explorer_request(
    account: str, months: Sequence[Month], cluster_tag: tuple[str, str] | None = None
) -> dict[str, Any]:
    """The ``GetCostAndUsage`` arguments for these (consecutive) months of one account."""
    account_filter = {"Dimensions": {"Key": "LINKED_ACCOUNT", "Values": [account]}}
    if cluster_tag is not None:
        key, value = cluster_tag
        tag_filter = {"Tags": {"Key": key, "Values": [value], "MatchOptions": ["EQUALS"]}}
        account_filter = {"And": [account_filter, tag_filter]}
    return {
        "TimePeriod": {
            "Start": min(months).first_day.isoformat(),
            "End": max(months).end.isoformat(),
        },
        "Granularity": "MONTHLY",
        "Metrics": [COST_METRIC],
        "Filter": account_filter,
    }


class CostExplorerHook(AwsBaseHook):
    """AWS Cost Explorer (``ce``), whose endpoint lives in us-east-1 whatever the account."""

    hook_name = "AWS Cost Explorer (engagement costs)"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "ce"
        kwargs.setdefault("region_name", "us-east-1")
        super().__init__(*args, **kwargs)

    def monthly_costs(
        self,
        account: str,
        months: Sequence[Month],
        *,
        cluster_tag: tuple[str, str] | None = None,
    ) -> dict[Month, MonthlyCost]:
        request = cost_explorer_request(account, months, cluster_tag)
        results: list[dict[str, Any]] = []
        while True:
            page = self.conn.get_cost_and_usage(**request)
            results.extend(page.get("ResultsByTime", []))
            if not page.get("NextPageToken"):
                break
            request["NextPageToken"] = page["NextPageToken"]
        return _parse_results(results, set(months))


def _parse_results(results: list[dict[str, Any]], wanted: set[Month]) -> dict[Month, MonthlyCost]:
    costs: dict[Month, MonthlyCost] = {}
    for result in results:
        start = result["TimePeriod"]["Start"]
        month = Month.parse(start[:7])
        if start[8:] != "01" or month not in wanted:
            raise CostSourceError(f"Cost Explorer answered for an unexpected period {start}")
        total = result.get("Total", {}).get(COST_METRIC)
        if not total or total.get("Amount") in (None, ""):
            continue  # the period is listed but has no figure: missing, not zero
        costs[month] = MonthlyCost(
            month,
            money(total["Amount"]),
            total.get("Unit") or "USD",
            CostSource.AWS,
            estimated=bool(result.get("Estimated", False)),
        )
    return costs


def billing_export_query(table: str, *, cluster_label: tuple[str, str] | None = None) -> str:
    """The SQL over a billing export table, with ``%(name)s`` parameters.

    Costs are counted by invoice month (what the bill says) with credits, which are negative,
    included. The table name cannot be a query parameter, so it is checked instead.
    """
    if not _TABLE.fullmatch(table):
        raise CostSourceError(
            f"{table!r} is not a BigQuery table name of the form project.dataset.table"
        )
    label = ""
    if cluster_label is not None:
        label = (
            "\n  AND EXISTS (SELECT 1 FROM UNNEST(labels) AS l"
            " WHERE l.key = %(label_key)s AND l.value = %(cluster)s)"
        )
    return (
        "SELECT invoice.month AS invoice_month, currency,\n"
        "  SUM(cost) + SUM(IFNULL((SELECT SUM(c.amount) FROM UNNEST(credits) AS c), 0)) AS total\n"
        f"FROM `{table}`\n"
        "WHERE invoice.month BETWEEN %(first_month)s AND %(last_month)s\n"
        f"  AND project.id = %(project_id)s{label}\n"
        "GROUP BY invoice_month, currency\n"
        "ORDER BY invoice_month"
    )


class BillingExportHook(BaseHook):
    """GCP billing export in BigQuery, queried through the google provider's ``BigQueryHook``."""

    conn_name_attr = "gcp_conn_id"
    default_conn_name = "google_cloud_default"
    conn_type = "google_cloud_platform"
    hook_name = "GCP billing export (BigQuery)"

    def __init__(self, gcp_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.gcp_conn_id = gcp_conn_id

    @cached_property
    def bigquery(self) -> BigQueryHook:
        from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

        hook = BigQueryHook(gcp_conn_id=self.gcp_conn_id, use_legacy_sql=False)
        if hook.location is None:
            hook.location = DEFAULT_BILLING_LOCATION
        return hook

    def monthly_costs(
        self,
        table: str,
        project_id: str,
        months: Sequence[Month],
        *,
        cluster_label: tuple[str, str] | None = None,
    ) -> dict[Month, MonthlyCost]:
        sql = billing_export_query(table, cluster_label=cluster_label)
        parameters = {
            "first_month": f"{min(months).year}{min(months).month:02d}",
            "last_month": f"{max(months).year}{max(months).month:02d}",
            "project_id": project_id,
        }
        if cluster_label is not None:
            parameters |= {"label_key": cluster_label[0], "cluster": cluster_label[1]}
        rows = self.bigquery.get_records(sql, parameters=parameters) or []
        costs: dict[Month, MonthlyCost] = {}
        for invoice_month, currency, total in rows:
            month = Month(int(invoice_month[:4]), int(invoice_month[4:]))
            if month in costs:
                raise CostSourceError(
                    f"billing export {table} has {month} in two currencies "
                    f"({costs[month].currency}, {currency}); cannot add them up"
                )
            if total is not None:
                costs[month] = MonthlyCost(month, money(total), currency, CostSource.GCP)
        return costs
