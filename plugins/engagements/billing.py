"""Money and months: the plain values that cost figures are made of.

A :class:`MonthlyCost` is what a billing source reported for a calendar :class:`Month`, in
exact cents (:func:`money`; never a float). The hooks that fetch costs return these, and the
cost lifecycle (:mod:`engagements.costs`) compares, projects and records them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from engagements.config import MAX_MONTHLY_COST_USD, check_date

CENT = Decimal("0.01")


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
