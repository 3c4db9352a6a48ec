"""Months and money: the values cost figures are made of."""

from __future__ import annotations

import datetime as dt

import pytest

from engagements.billing import Month, last_full_month, months_between


def test_month_arithmetic_across_the_year_boundary():
    assert Month(2027, 1).previous() == Month(2026, 12)
    assert Month(2026, 12).next() == Month(2027, 1)
    assert Month(2026, 12).end == dt.date(2027, 1, 1)
    assert str(Month.parse("2027-01")) == "2027-01"
    assert last_full_month(dt.date(2027, 1, 3)) == Month(2026, 12)
    assert last_full_month(dt.date(2027, 3, 1)) == Month(2027, 2)
    assert months_between(Month(2026, 11), Month(2027, 2)) == [
        Month(2026, 11),
        Month(2026, 12),
        Month(2027, 1),
        Month(2027, 2),
    ]


@pytest.mark.parametrize("text", ["2027-13", "2027/01", "January", ""])
def test_bad_months_are_refused(text):
    with pytest.raises(ValueError, match="YYYY-MM"):
        Month.parse(text)
