"""Cloud cost arithmetic: months, the 20% alert rule, the contract projection, the statement.

Pure functions over :class:`decimal.Decimal` (money is never a float here) and the store
protocol; no Airflow, no network. The hooks in :mod:`engagements.hooks.costs` fetch the
figures; the operators in :mod:`engagements.operators.costs` wire them to a run.

What is recorded in the store (Actions table, one key per community and month, replaced when a
month is fetched again so that a re-run never duplicates):

- ``cost:<YYYY-MM>`` (kind ``cost_month``): a month's cost as the source reported it;
- ``cost-entry:<YYYY-MM>`` (kind ``cost_entry``): a cost an engineer recorded by hand for a
  provider with no billing API here (Azure, Jetstream2);
- ``cost-statement:<YYYY-MM>`` (kind ``cost_statement``): the community's line in that
  month's pass-through statement, with the statement's location.

A community without a cost source gets none of these: no figure is ever invented as zero.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from engagements.config import (
    MAX_MONTHLY_COST_USD,
    Billing,
    CloudProvider,
    CommunityConfig,
    check_date,
)
from engagements.settings import Settings
from engagements.store.base import ActionRecord, EngagementStore, upsert_action

CENT = Decimal("0.01")
CONTRACT_CURRENCY = "USD"
ENTRY_PROVIDERS = frozenset({CloudProvider.AZURE, CloudProvider.JETSTREAM2})
"""Providers with no billing API here: an engineer records each month's cost in the store."""
COST_ENTRY_DUE_DAYS = 7
"""A hand-recorded cost is due this many days after the month closes."""
GCP_CLUSTER_LABEL = "goog-k8s-cluster-name"
"""The label GKE cost allocation puts on a cluster's resources in the billing export."""

COST_MONTH = "cost_month"
COST_ENTRY = "cost_entry"
COST_STATEMENT = "cost_statement"


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month; ``str()`` gives ``YYYY-MM``, the form every key and file name uses."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12:
            raise ValueError(f"month must be 1-12, not {self.month}")

    @classmethod
    def parse(cls, text: str) -> Month:
        """``YYYY-MM``, a month from 2000 to ten years ahead (a typo is not a month)."""
        found = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
        try:
            if found is None:
                raise ValueError
            month = cls(int(found[1]), int(found[2]))
        except ValueError:
            raise ValueError(f"{text!r} is not a month; write it as YYYY-MM (2027-01)") from None
        check_date(month.first_day)
        return month

    @classmethod
    def of(cls, day: dt.date) -> Month:
        return cls(day.year, day.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first_day(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    @property
    def end(self) -> dt.date:
        """The first day of the next month: the exclusive end that Cost Explorer expects."""
        return self.next().first_day

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Month:
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def label(self) -> str:
        """``January 2027``: for people."""
        return f"{self.first_day:%B %Y}"


def last_full_month(run_date: dt.date) -> Month:
    """The month that has closed most recently on ``run_date``."""
    return Month.of(run_date).previous()


def months_between(first: Month, last: Month) -> list[Month]:
    """Every month from ``first`` to ``last``, both included."""
    months = []
    month = first
    while month <= last:
        months.append(month)
        month = month.next()
    return months


class CostSource(StrEnum):
    AWS = "aws-cost-explorer"
    GCP = "gcp-billing-export"
    ENTRY = "cost-entry"


@dataclass(frozen=True)
class MonthlyCost:
    month: Month
    amount: Decimal
    currency: str
    source: CostSource
    estimated: bool = False

    def to_detail(self) -> dict[str, Any]:
        return {
            "month": str(self.month),
            "amount": str(self.amount),
            "currency": self.currency,
            "source": self.source.value,
            "estimated": self.estimated,
        }

    @classmethod
    def from_detail(cls, detail: Mapping[str, Any]) -> MonthlyCost:
        return cls(
            month=Month.parse(detail["month"]),
            amount=Decimal(detail["amount"]),
            currency=detail["currency"],
            source=CostSource(detail["source"]),
            estimated=bool(detail.get("estimated", False)),
        )


def money(value: Any) -> Decimal:
    """A cost as exact cents; floats (BigQuery's FLOAT64) go through their shortest repr."""
    amount = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


ISO_4217 = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN
    BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP
    GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS
    KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR
    MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF
    SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD
    TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG""".split()  # noqa: SIM905 - a table is easier to check against the standard
)
"""The ISO 4217 codes of the currencies in use (not funds, metals or test codes)."""


def parse_currency(text: str) -> str:
    """An ISO 4217 currency code (``usd`` is ``USD``)."""
    code = text.strip().upper()
    if code not in ISO_4217:
        raise ValueError(f"{text!r} is not an ISO 4217 currency code such as USD or EUR")
    return code


def parse_amount(text: str) -> Decimal:
    """A month's cost as typed, in cents (rounded half up once: what is stored is shown)."""
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{text!r} is not an amount such as 1234.56") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"a monthly cost is a number of at least 0, not {text}")
    if amount > MAX_MONTHLY_COST_USD:
        raise ValueError(
            f"{text} is more than a month's cloud cost can be ({MAX_MONTHLY_COST_USD:,})"
        )
    return money(amount)


def format_money(amount: Decimal, currency: str) -> str:
    if currency == "USD":
        return f"${amount:,.2f}"
    return f"{amount:,.2f} {currency}"


# Where a community's costs come from.


class NoCostSource(LookupError):
    """No cost source is configured for the community; the message says what is missing."""


@dataclass(frozen=True)
class CostQuery:
    """What to ask which source for one community's costs."""

    source: CostSource
    account: str | None = None
    cluster_filter: tuple[str, str] | None = None
    """(tag or label key, cluster name) when the account is shared with other communities."""
    table: str | None = None

    def describe(self) -> str:
        where = {
            CostSource.AWS: f"AWS Cost Explorer, linked account {self.account}",
            CostSource.GCP: f"BigQuery billing export {self.table}, project {self.account}",
            CostSource.ENTRY: "costs recorded by an engineer (engagements cost record)",
        }[self.source]
        if self.cluster_filter:
            key, value = self.cluster_filter
            where += f", shared account: only resources with {key}={value}"
        return where


def shared_accounts(configs: Iterable[CommunityConfig], settings: Settings) -> frozenset[str]:
    """Accounts used by more than one community, or listed as shared in the settings."""
    seen: set[str] = set()
    shared = {a.strip() for a in settings.aws_shared_accounts.split(",") if a.strip()}
    for config in configs:
        account = config.cloud.account
        if account is None:
            continue
        if account in seen:
            shared.add(account)
        seen.add(account)
    return frozenset(shared)


def plan_cost_query(config: CommunityConfig, settings: Settings, *, shared: bool) -> CostQuery:
    """Decide the source from the community config and the settings, or raise NoCostSource."""
    cloud = config.cloud
    if cloud.provider in ENTRY_PROVIDERS:
        return CostQuery(CostSource.ENTRY, account=cloud.account)
    if cloud.account is None:
        raise NoCostSource(
            f"cloud.account is empty: no {cloud.provider.value.upper()} account to read costs from"
        )
    if cloud.provider is CloudProvider.AWS:
        tag = (settings.aws_cluster_tag, config.cluster_name) if shared else None
        return CostQuery(CostSource.AWS, account=cloud.account, cluster_filter=tag)
    if not settings.gcp_billing_table.strip():
        raise NoCostSource(
            "no BigQuery billing export is configured (Variable engagements_gcp_billing_table)"
        )
    names = {"community_id": config.community_id, "account": cloud.account}
    try:
        project = settings.gcp_billing_project.format(**names)
        dataset_table = settings.gcp_billing_table.format(**names)
    except (KeyError, IndexError, ValueError) as exc:
        raise NoCostSource(
            "engagements_gcp_billing_project/_table may only use {community_id} and {account}: "
            f"{exc!r}"
        ) from None
    label = (GCP_CLUSTER_LABEL, config.cluster_name) if shared else None
    return CostQuery(
        CostSource.GCP,
        account=cloud.account,
        cluster_filter=label,
        table=f"{project}.{dataset_table}",
    )


# The alert rule.


def parse_threshold(text: str) -> Decimal:
    """The alert threshold in percent (``20`` means 20%), from the Variable's text."""
    try:
        value = Decimal(str(text).strip().rstrip("%"))
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0:
        raise ValueError(
            f"engagements_cost_alert_threshold_pct must be a percentage >= 0 such as 20, "
            f"not {text!r}"
        )
    return value


class Verdict(StrEnum):
    ALERT = "alert"
    WITHIN = "within threshold"
    MISSING = "missing month"
    INCOMPARABLE = "different currencies"


@dataclass(frozen=True)
class Comparison:
    """This month against the previous one, and whether that is an alert."""

    month: Month
    previous: MonthlyCost | None
    current: MonthlyCost | None
    threshold_pct: Decimal
    verdict: Verdict
    reason: str

    @property
    def increase(self) -> Decimal | None:
        if self.previous is None or self.current is None:
            return None
        return self.current.amount - self.previous.amount

    @property
    def increase_pct(self) -> Decimal | None:
        """None when there is nothing to divide by (a missing or zero previous month)."""
        if self.increase is None or not self.previous.amount:
            return None
        return (self.increase * 100 / self.previous.amount).quantize(Decimal("0.1"))


def compare(
    previous: MonthlyCost | None,
    current: MonthlyCost | None,
    threshold_pct: Decimal,
    *,
    month: Month,
) -> Comparison:
    """The runbook's rule: alert when this month is MORE than ``threshold_pct`` above the last.

    Exactly at the threshold is not an alert. A previous month of zero followed by any cost is
    an alert (it is more than any percentage above nothing). A missing month is never guessed.
    """

    def result(verdict: Verdict, reason: str) -> Comparison:
        return Comparison(month, previous, current, threshold_pct, verdict, reason)

    if current is None or previous is None:
        missing = month if current is None else month.previous()
        return result(Verdict.MISSING, f"no cost for {missing}: nothing to compare")
    if current.currency != previous.currency:
        return result(
            Verdict.INCOMPARABLE,
            f"{previous.month} is in {previous.currency} and {month} in {current.currency}",
        )
    threshold = f"{threshold_pct.normalize():f}%"
    if previous.amount == 0:
        if current.amount > 0:
            return result(Verdict.ALERT, f"{previous.month} had no cost; {month} had some")
        return result(Verdict.WITHIN, "no cost in either month")
    if (current.amount - previous.amount) * 100 > threshold_pct * previous.amount:
        return result(Verdict.ALERT, f"more than {threshold} above {previous.month}")
    return result(Verdict.WITHIN, f"not more than {threshold} above {previous.month}")


# The projection against the contract's estimate.


@dataclass(frozen=True)
class Projection:
    """Known months of the contract plus the latest month's cost for every month left."""

    estimate_month: Decimal
    months_known: int
    spent: Decimal
    run_rate: Decimal
    months_left: int
    contract_end: dt.date

    @property
    def projected(self) -> Decimal:
        return self.spent + self.run_rate * self.months_left

    @property
    def budget(self) -> Decimal:
        return self.estimate_month * (self.months_known + self.months_left)

    @property
    def exceeds(self) -> bool:
        return self.projected > self.budget


def project(
    config: CommunityConfig, known: Mapping[Month, MonthlyCost], latest: Month
) -> Projection | None:
    """Where the run rate takes the contract's cloud cost, or None when it cannot be said.

    Only months inside the contract count, and only months whose cost is known; the budget is
    the contract's monthly estimate over the same months. None without an estimate, without a
    cost for ``latest``, or when costs are not in the contract's currency.
    """
    contract = config.contract
    estimate = contract.cloud_cost_estimate_usd_month
    if estimate is None or latest not in known:
        return None
    first, last = Month.of(contract.start), Month.of(contract.end)
    counted = [known[m] for m in months_between(first, min(latest, last)) if m in known]
    if any(cost.currency != CONTRACT_CURRENCY for cost in counted):
        return None
    return Projection(
        estimate_month=money(estimate),
        months_known=len(counted),
        spent=sum((c.amount for c in counted), Decimal(0)),
        run_rate=known[latest].amount,
        months_left=len(months_between(latest.next(), last)),
        contract_end=contract.end,
    )


# Pass-through statements.

STATEMENT_COLUMNS = ("community", "account", "month", "cost", "currency")


@dataclass(frozen=True)
class StatementLine:
    community: str
    account: str
    month: Month
    cost: Decimal
    currency: str


def passes_through(config: CommunityConfig) -> bool:
    """2i2c pays this community's cloud bill and invoices it monthly."""
    return config.cloud.billing is Billing.PROVIDER


def statement_name(month: Month) -> str:
    return f"cloud-costs-{month}.csv"


def statement_csv(lines: Iterable[StatementLine]) -> str:
    """One CSV per month for invoicing, one line per community, sorted for stable diffs."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(STATEMENT_COLUMNS)
    for line in sorted(lines, key=lambda x: (x.community, str(x.month))):
        writer.writerow(
            [line.community, line.account, str(line.month), f"{line.cost:.2f}", line.currency]
        )
    return out.getvalue()


# Store records.


def month_key(month: Month) -> str:
    return f"cost:{month}"


def entry_key(month: Month) -> str:
    return f"cost-entry:{month}"


def record_month_costs(
    store: EngagementStore, community_id: str, costs: Iterable[MonthlyCost], *, account: str | None
) -> None:
    for cost in costs:
        detail = cost.to_detail() | {"account": account}
        upsert_action(store, community_id, month_key(cost.month), COST_MONTH, detail)


def recorded_costs(store: EngagementStore, community_id: str) -> dict[Month, MonthlyCost]:
    """Every month's cost recorded for the community (the projection's history)."""
    return {
        Month.parse(a.detail["month"]): MonthlyCost.from_detail(a.detail)
        for a in store.list_actions(community_id, kind=COST_MONTH)
    }


def record_cost_entry(
    store: EngagementStore,
    community_id: str,
    month: Month,
    amount: Decimal,
    currency: str,
    *,
    by: str,
    note: str | None = None,
) -> MonthlyCost | None:
    """Record a hand-entered monthly cost and mark its milestone; return the one it replaced."""
    from engagements.milestones import COST_ENTRY_RECORDED

    amount = parse_amount(str(amount))
    currency = parse_currency(currency)
    key = entry_key(month)
    before = store.get_action(community_id, key)
    cost = MonthlyCost(month, amount, currency, CostSource.ENTRY)
    upsert_action(store, community_id, key, COST_ENTRY, cost.to_detail() | {"by": by, "note": note})
    store.record_milestone(
        community_id,
        COST_ENTRY_RECORDED.key(str(month)),
        by=by,
        note=format_money(amount, currency),
    )
    return MonthlyCost.from_detail(before.detail) if before else None


def cost_entries(store: EngagementStore, community_id: str) -> dict[Month, MonthlyCost]:
    return entries_of(store.list_actions(community_id, kind=COST_ENTRY))


def entries_of(actions: Iterable[ActionRecord]) -> dict[Month, MonthlyCost]:
    """The recorded monthly costs among a community's actions."""
    return {
        Month.parse(a.detail["month"]): MonthlyCost.from_detail(a.detail)
        for a in actions
        if a.kind == COST_ENTRY
    }


def cost_entry_due(month: Month) -> dt.date:
    return month.end + dt.timedelta(days=COST_ENTRY_DUE_DAYS - 1)


def preview_alert_extra(config: CommunityConfig) -> dict[str, Any]:
    """Made-up figures for ``engagements render-email cost-alert``: a 25% rise."""
    month = last_full_month(dt.datetime.now(dt.UTC).date())
    previous = MonthlyCost(month.previous(), Decimal("1000.00"), "USD", CostSource.AWS)
    current = MonthlyCost(month, Decimal("1250.00"), "USD", CostSource.AWS)
    return {"comparison": compare(previous, current, Decimal(20), month=month)}


def preview_projection_extra(config: CommunityConfig) -> dict[str, Any]:
    """Made-up figures for ``engagements render-email cost-projection``."""
    estimate = money(config.contract.cloud_cost_estimate_usd_month or 1000)
    return {
        "projection": Projection(
            estimate_month=estimate,
            months_known=3,
            spent=estimate * 3,
            run_rate=(estimate * Decimal("1.3")).quantize(CENT),
            months_left=6,
            contract_end=config.contract.end,
        ),
        "month": last_full_month(dt.datetime.now(dt.UTC).date()),
    }
