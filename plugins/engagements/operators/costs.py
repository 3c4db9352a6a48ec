"""Operators of the monthly cost watch, and the pieces the quarterly check-in shares with it.

Thin wrappers over :mod:`engagements.costs`: they read the store and the cost source when they
run, call the pure functions, and record the results. One run is mapped over communities by
``select_engagements``, the only task that reads the list of engagements.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from engagements.hooks import connection_exists
from engagements.store.base import EngagementStatus, upsert_action
from engagements.tasks import EngagementMixin, EngagementOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from engagements.billing import Month, MonthlyCost
    from engagements.config import CommunityConfig
    from engagements.costs import CostQuery
    from engagements.settings import Settings
    from engagements.store.base import ActionRecord, Engagement, EngagementStore

log = logging.getLogger(__name__)

WATCHED_STATUSES = frozenset(
    {EngagementStatus.ACTIVE, EngagementStatus.RENEWAL, EngagementStatus.DECOMMISSIONING}
)
"""Engagements whose hubs run, and so cost money."""


def run_date(context: Context) -> dt.date:
    """The day the run stands for: its logical date, or when it was queued (manual runs)."""
    when = context.get("logical_date") or context["dag_run"].run_after
    return when.astimezone(dt.UTC).date()


@dataclass(frozen=True)
class Roster:
    """The engagements of one run, from ONE pass over the store (however many there are)."""

    engagements: list[tuple[Engagement, CommunityConfig]]
    broken: dict[str, str]
    """Engagements whose stored config cannot be used, with the reason."""
    shared: frozenset[str]
    """Cloud accounts that hold more than one community (or are configured as shared)."""

    def is_shared(self, config: CommunityConfig) -> bool:
        return config.cloud.account in self.shared


def read_roster(
    store: EngagementStore, settings: Settings, community_id: str | None = None
) -> Roster:
    """List every engagement once; keep only ``community_id`` when given.

    All of them are read even for one community, to tell whether its account is shared; one
    broken record is reported instead of stopping the run for the others.
    """
    from engagements.config import ConfigError
    from engagements.costs import shared_accounts
    from engagements.onboarding import effective_config
    from engagements.store.base import NotFound

    usable, broken = [], {}
    for engagement in store.list_engagements():
        try:
            usable.append((engagement, effective_config(engagement)))
        except ConfigError as exc:
            broken[engagement.community_id] = f"its stored config is not valid: {exc}"
    shared = shared_accounts((config for _, config in usable), settings)
    if community_id:
        usable = [(e, c) for e, c in usable if e.community_id == community_id]
        broken = {k: v for k, v in broken.items() if k == community_id}
        if not usable and not broken:
            raise NotFound(f"no engagement for community {community_id!r} in the store")
    return Roster(usable, broken, shared)


class CostSourceMixin(EngagementMixin):
    """Monthly costs of one community from whatever source its config and settings name."""

    aws_conn_id: str
    gcp_conn_id: str

    def fetch_costs(
        self,
        config: CommunityConfig,
        months: Sequence[Month],
        *,
        shared: bool,
        actions: Sequence[ActionRecord] | None = None,
    ) -> tuple[CostQuery, dict[Month, MonthlyCost]]:
        """The source asked and the months it has figures for; NoCostSource when none applies.

        Recorded costs come from ``actions`` (the community's, already read) when given.
        """
        from engagements.billing import CostSource
        from engagements.costs import cost_entries, entries_of, plan_cost_query
        from engagements.hooks.costs import BillingExportHook, CostExplorerHook

        query = plan_cost_query(config, self.settings, shared=shared)
        if query.source is CostSource.ENTRY:
            if actions is None:
                entries = cost_entries(self.store, config.community_id)
            else:
                entries = entries_of(actions)
            return query, {m: entries[m] for m in months if m in entries}
        if query.source is CostSource.AWS:
            self._require_connection(self.aws_conn_id, "AWS Cost Explorer")
            hook = CostExplorerHook(aws_conn_id=self.aws_conn_id)
            costs = hook.monthly_costs(query.account, months, cluster_tag=query.cluster_filter)
            return query, costs
        self._require_connection(self.gcp_conn_id, "the BigQuery billing export")
        hook = BillingExportHook(gcp_conn_id=self.gcp_conn_id)
        costs = hook.monthly_costs(
            query.table, query.account, months, cluster_label=query.cluster_filter
        )
        return query, costs

    @staticmethod
    def _require_connection(conn_id: str, what: str) -> None:
        """A source without its connection is not configured (the embedded default)."""
        from engagements.costs import NoCostSource

        if not connection_exists(conn_id):
            raise NoCostSource(
                f"{what} needs the Airflow connection {conn_id!r}, which is not defined"
            )


class _MonthOperator(EngagementOperator):
    template_fields: Sequence[str] = ("community_id", "month")

    def __init__(self, *, month: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.month = month


class SelectCostWatchOperator(EngagementOperator):
    """Which communities this run watches, and for which month: the fan-out's input."""

    template_fields: Sequence[str] = ("community_id", "month")

    def __init__(
        self,
        *,
        community_id: str = "{{ params.community_id or '' }}",
        month: str = "{{ params.month or '' }}",
        **kwargs: Any,
    ) -> None:
        super().__init__(community_id=community_id, **kwargs)
        self.month = month

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from engagements.billing import Month, last_full_month
        from engagements.milestones import COST_ENTRY_RECORDED

        try:
            month = Month.parse(self.month) if self.month else last_full_month(run_date(context))
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from None
        roster = read_roster(self.store, self.settings, self.community_id or None)
        selected = []
        for engagement, config in roster.engagements:
            if engagement.status not in WATCHED_STATUSES:
                log.info(
                    "%s is %s: its costs are not watched",
                    engagement.community_id,
                    engagement.status,
                )
                continue
            selected.append(
                {
                    "community_id": engagement.community_id,
                    "month": str(month),
                    "milestone": COST_ENTRY_RECORDED.key(str(month)),
                    "shared_account": roster.is_shared(config),
                }
            )
        for community_id, reason in roster.broken.items():
            log.error("%s is not watched: %s", community_id, reason)
        context["ti"].xcom_push(key="month", value=str(month))
        log.info("Watching the %s costs of %d engagement(s)", month, len(selected))
        return selected


class MonthlyCostOperator(CostSourceMixin, _MonthOperator):
    """Fetch the month's and the previous month's cost and record them; never invent one."""

    template_fields: Sequence[str] = ("community_id", "month", "shared_account")

    def __init__(
        self,
        *,
        shared_account: bool = False,
        aws_conn_id: str = "aws_default",
        gcp_conn_id: str = "google_cloud_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.shared_account = shared_account
        self.aws_conn_id = aws_conn_id
        self.gcp_conn_id = gcp_conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from engagements.billing import Month
        from engagements.costs import NoCostSource, passes_through, record_month_costs

        _, config = self.engagement()
        month = Month.parse(self.month)
        result: dict[str, Any] = {"community_id": config.community_id, "month": str(month)}
        try:
            query, costs = self.fetch_costs(
                config, [month.previous(), month], shared=bool(self.shared_account)
            )
        except NoCostSource as exc:
            log.warning(
                "No cost source is configured for %s: %s. Nothing was recorded.",
                config.community_id,
                exc,
            )
            return result | {"status": "no cost source", "reason": str(exc)}
        for wanted in (month.previous(), month):
            if wanted not in costs:
                log.warning("%s: %s has no cost for %s", config.community_id, query.source, wanted)
        record_month_costs(self.store, config.community_id, costs.values(), account=query.account)
        log.info(
            "%s (%s): %s",
            config.community_id,
            query.describe(),
            ", ".join(f"{m} {c.amount} {c.currency}" for m, c in sorted(costs.items())) or "none",
        )
        return result | {
            "status": "recorded",
            "source": query.describe(),
            "account": query.account,
            "pass_through": passes_through(config),
            "costs": {str(m): c.to_detail() for m, c in costs.items()},
        }


class CostAlertOperator(_MonthOperator):
    """Alert once per month when it is more than the threshold above the previous month; warn
    once per month when the run rate projects past the contract's estimate."""

    def execute(self, context: Context) -> dict[str, Any]:
        from engagements.billing import Month
        from engagements.costs import Verdict, compare, parse_threshold, project, recorded_costs

        _, config = self.engagement()
        month = Month.parse(self.month)
        try:
            threshold = parse_threshold(self.settings.cost_alert_threshold_pct)
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from None
        known = recorded_costs(self.store, config.community_id)
        comparison = compare(known.get(month.previous()), known.get(month), threshold, month=month)
        pct = comparison.increase_pct
        result: dict[str, Any] = {
            "verdict": comparison.verdict.value,
            "reason": comparison.reason,
            "increase_pct": None if pct is None else str(pct),
        }
        if comparison.verdict is Verdict.ALERT:
            self.send(
                "cost-alert", config, key=f"cost-alert:{month}", extra={"comparison": comparison}
            )
            log.warning("%s: cost alert for %s: %s", config.community_id, month, comparison.reason)
        else:
            log.info("%s: no alert for %s: %s", config.community_id, month, comparison.reason)
        projection = project(config, known, month)
        if projection is not None and projection.exceeds:
            self.send(
                "cost-projection",
                config,
                key=f"cost-projection:{month}",
                extra={"projection": projection, "month": month},
            )
            log.warning(
                "%s: projected %s against a budget of %s",
                config.community_id,
                projection.projected,
                projection.budget,
            )
        result["projection_exceeds"] = bool(projection and projection.exceeds)
        return result


def mapped_results(value: Any) -> list[dict[str, Any]]:
    """The return values of a mapped task group's task, however many instances ran.

    Airflow hands a downstream task a sequence for several instances, the bare value for one
    and None for none (every instance skipped, or nothing to map over).
    """
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    return [item for item in value if item is not None]


class WriteStatementOperator(EngagementMixin, BaseOperator):
    """The month's pass-through statement: one CSV, replaced on a re-run, recorded per line.

    ``results`` are the mapped ``fetch_costs`` results of every community in the run.
    """

    template_fields: Sequence[str] = ("results", "month")

    def __init__(self, *, results: Any, month: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.results = results
        self.month = month

    def execute(self, context: Context) -> dict[str, Any]:
        from engagements.billing import Month, MonthlyCost
        from engagements.costs import COST_STATEMENT, StatementLine, statement_csv, statement_name

        month = Month.parse(self.month)
        lines, left_out = [], {}
        for result in mapped_results(self.results):
            community_id = result["community_id"]
            if result["status"] != "recorded":
                left_out[community_id] = result.get("reason", result["status"])
            elif not result["pass_through"]:
                continue  # billed to the community's own account: nothing to invoice
            elif str(month) not in result["costs"]:
                left_out[community_id] = f"no cost for {month}"
            else:
                cost = MonthlyCost.from_detail(result["costs"][str(month)])
                lines.append(
                    StatementLine(
                        community_id, result["account"], month, cost.amount, cost.currency
                    )
                )
        path = self.settings.artifacts_path / "statements" / statement_name(month)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".csv.partial")
        partial.write_text(statement_csv(lines), encoding="utf-8")
        os.replace(partial, path)
        for line in lines:
            detail = {
                "month": str(month),
                "path": str(path),
                "account": line.account,
                "amount": str(line.cost),
                "currency": line.currency,
            }
            upsert_action(
                self.store, line.community, f"cost-statement:{month}", COST_STATEMENT, detail
            )
        for community_id, reason in sorted(left_out.items()):
            log.warning("%s is not in the %s statement: %s", community_id, month, reason)
        log.info("Statement for %s: %s (%d line(s))", month, path, len(lines))
        return {"path": str(path), "lines": len(lines), "left_out": left_out}
