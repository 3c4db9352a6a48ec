"""The command line's check-in and cost commands, run as a user runs them."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from engagements.billing import Month

NEXT_MONTH = str(Month.of(dt.date.today()).next())


@pytest.fixture
def seeded(run, example_path):
    assert run("seed", str(example_path)).returncode == 0
    return run


@pytest.fixture
def azure(run, tmp_path, example_dict):
    example_dict["community_id"] = "marinelab"
    example_dict["cloud"].update(
        provider="azure", region="eastus", account="0b1f6471-1bf0-4dda-aec3-cb9272f09590"
    )
    path = tmp_path / "marinelab.yaml"
    path.write_text(yaml.safe_dump(example_dict))
    assert run("seed", str(path)).returncode == 0
    return run


def test_support_hours_are_added_and_shown_in_status(seeded):
    first = seeded(
        "support-hours",
        "add",
        "openscience",
        "1.5",
        "--note",
        "Pangeo pin",
        "--date",
        "2027-02-10",
        "--by",
        "ada",
    )
    assert first.returncode == 0, first.stderr
    assert "2027Q1: 1.5 of 4 h used" in first.stdout
    second = seeded(
        "support-hours", "add", "openscience", "3", "--note", "R image", "--date", "2027-03-01"
    )
    assert "2027Q1: 4.5 of 4 h used; over the allowance" in second.stdout
    status = seeded("status", "openscience")
    assert status.returncode == 0
    assert "Image-support hours (4 h included each quarter):" in status.stdout
    assert "2027Q1: 4.5 h used  over the allowance" in status.stdout
    assert "2027-02-10  1.5 h  Pangeo pin (ada)" in status.stdout


def test_support_hours_need_a_note_and_a_positive_number(seeded):
    assert seeded("support-hours", "add", "openscience", "2").returncode == 2
    bad = seeded("support-hours", "add", "openscience", "-1", "--note", "x")
    assert bad.returncode == 2
    assert "hours must be more than 0" in bad.stderr
    unknown = seeded("support-hours", "add", "nobody", "1", "--note", "x")
    assert unknown.returncode == 1


def test_cost_record_for_azure_replaces_and_marks_the_milestone(azure):
    first = azure("cost", "record", "marinelab", "2026-10", "800", "--by", "ada")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "marinelab: cloud cost for 2026-10 recorded: $800.00"
    again = azure("cost", "record", "marinelab", "2026-10", "812.5")
    assert "(replaces $800.00)" in again.stdout
    status = azure("status", "marinelab")
    assert "cost_entry_2026_10" in status.stdout
    euros = azure("cost", "record", "marinelab", "2026-09", "100", "--currency", "eur")
    assert "100.00 EUR" in euros.stdout


def test_cost_record_is_refused_where_an_api_is_the_source(seeded):
    result = seeded("cost", "record", "openscience", "2026-10", "800")
    assert result.returncode == 2
    assert "read from its billing API" in result.stderr


@pytest.mark.parametrize(
    ("month", "amount", "message"),
    [
        ("2026-13", "1", "YYYY-MM"),
        ("2026-10", "lots", "not an amount"),
        ("2026-10", "-5", "at least 0"),
        ("2999-01", "5", "2999-01-01 is more than 10 years ahead"),
        (NEXT_MONTH, "5", "has not ended yet"),
    ],
)
def test_bad_cost_records(azure, month, amount, message):
    result = azure("cost", "record", "marinelab", month, amount)
    assert result.returncode == 2
    assert message in result.stderr


def test_quarterly_checkin_milestone_can_be_marked(seeded):
    result = seeded("milestone", "mark", "openscience", "checkin_held_2027q1", "--note", "held")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Quarterly check-in meeting held (2027Q1): recorded done")
    wrong = seeded("milestone", "mark", "openscience", "checkin_held_2027q5")
    assert wrong.returncode == 2
    assert "checkin_held_<YYYY>q<N>" in wrong.stderr


@pytest.mark.parametrize("kind", ["checkin-invitation", "cost-alert", "cost-projection"])
def test_new_emails_can_be_previewed(run, example_path, kind):
    result = run("render-email", kind, str(example_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Subject: ")
    assert "To: ada@openscience.example.org, grace@openscience.example.org" in result.stdout
