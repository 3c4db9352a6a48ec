"""Lifecycle commands made by hand: their bad input is one ``WHERE: reason`` line."""

from __future__ import annotations


def test_a_decommission_end_decades_ahead(seeded, cli):
    args = ("decommission", "cluster-gone", "openscience", "9999-12-31", "--how", "x")
    assert cli(*args) == (
        2,
        "",
        ["end_date: '9999-12-31': 9999-12-31 is more than 10 years ahead"],
    )
