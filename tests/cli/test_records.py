"""Commands that record and read an engagement's facts (status, milestones, seeding, the
agreement, support hours, costs): as a separate process (``run``) and through ``main``
(``cli``), where each bad input is one ``WHERE: reason`` line."""

from __future__ import annotations

import pytest

from engagements.store.local import LocalStore


def test_seed_mark_and_status(run, example_path):
    assert run("seed", str(example_path)).returncode == 0
    marked = run(
        "milestone", "mark", "openscience", "technical_meeting_held", "--note", "went well"
    )
    assert marked.returncode == 0, marked.stderr
    assert "recorded done by" in marked.stdout
    again = run("milestone", "mark", "openscience", "technical_meeting_held")
    assert "already recorded" in again.stdout
    status = run("status", "openscience")
    assert status.returncode == 0
    assert "technical_meeting_held" in status.stdout
    assert "Closed-Won" in status.stdout


def test_mark_unknown_milestone_or_community(run, example_path):
    run("seed", str(example_path))
    unknown = run("milestone", "mark", "openscience", "tea_drunk")
    assert unknown.returncode == 2
    assert "known milestones" in unknown.stderr
    missing = run("milestone", "mark", "nobody", "technical_meeting_held")
    assert missing.returncode == 1
    assert "no engagement" in missing.stderr


def test_status_shows_due_and_overdue(run, tmp_path, example_path):
    from engagements.config import load_config
    from engagements.onboarding import register
    from engagements.store.local import LocalStore

    register(
        LocalStore(tmp_path / "cli-store.sqlite"),
        load_config(example_path),
        run_id="r",
        run_state=lambda _: None,
    )
    lines = run("status", "openscience").stdout.splitlines()
    row = next(line for line in lines if line.startswith("technical_meeting_held"))
    assert "2026-11-27" in row


def test_agreement_records_bd_facts(run, example_path):
    run("seed", "--unsigned", str(example_path))
    result = run(
        "agreement", "openscience", "--signed-by", "community", "--url", "https://x.org/a.pdf"
    )
    assert result.returncode == 0
    assert "community=True 2i2c=False" in result.stdout


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (("0-1", "5"), "month: '0-1' is not a month; write it as YYYY-MM (2027-01)"),
        (("2026-00", "5"), "month: '2026-00' is not a month; write it as YYYY-MM (2027-01)"),
        (("2026-01", "1e26"), "amount: 1e26 is more than a month's cloud cost can be (10,000,000)"),
        (("2026-01", "NaN"), "amount: a monthly cost is a number of at least 0, not NaN"),
        (
            ("2026-01", "5", "--currency", "dollars"),
            "--currency: 'dollars' is not an ISO 4217 currency code such as USD or EUR",
        ),
        (
            ("2026-01", "5", "--by", "ada\x1b]0;owned\x07"),
            "--by: contains the control character U+001B",
        ),
    ],
)
def test_bad_cost_records(azure, args, line):
    code, _, err = azure("cost", "record", "marinelab", *args)
    assert (code, err) == (2, [line])


def test_a_cost_is_shown_as_it_is_stored(azure, store_path):
    code, out, _ = azure("cost", "record", "marinelab", "2026-01", "12.345")
    assert code == 0
    assert out == "marinelab: cloud cost for 2026-01 recorded: $12.35 (rounded from 12.345)\n"
    (entry,) = LocalStore(store_path).list_actions("marinelab", kind="cost_entry")
    assert entry.detail["amount"] == "12.35"
    milestone = LocalStore(store_path).get_milestone("marinelab", "cost_entry_2026_01")
    assert milestone.note == "$12.35"


@pytest.mark.parametrize(
    ("hours", "line"),
    [
        (
            "1E-400",
            "hours: hours are recorded to the hundredth (0.01 h, under a minute), not 1E-400",
        ),
        ("0", "hours: hours must be more than 0 and at most a quarter's worth, not 0"),
        ("-2", "hours: hours must be more than 0 and at most a quarter's worth, not -2"),
    ],
)
def test_bad_support_hours(seeded, cli, hours, line):
    assert cli("support-hours", "add", "openscience", hours, "--note", "x") == (2, "", [line])


@pytest.mark.parametrize(
    ("date", "line"),
    [
        ("2090-01-01", "--date: '2090-01-01': 2090-01-01 is more than 10 years ahead"),
        ("2026-02-30", "--date: '2026-02-30': day is out of range for month"),
        ("yesterday", "--date: 'yesterday': expected YYYY-MM-DD"),
    ],
)
def test_support_hours_on_a_day_that_cannot_be(seeded, cli, date, line):
    args = ("support-hours", "add", "openscience", "1", "--note", "x", "--date", date)
    assert cli(*args) == (2, "", [line])


@pytest.mark.parametrize(
    ("milestone", "line"),
    [
        (
            "renewal_decided_2027_02_30",
            "milestone: milestone 'renewal_decided_2027_02_30': 2027-02-30: "
            "day is out of range for month",
        ),
        (
            "cost_entry_2090_01",
            "milestone: milestone 'cost_entry_2090_01': 2090-01: "
            "2090-01-01 is more than 10 years ahead",
        ),
    ],
)
def test_milestone_names_with_impossible_dates(seeded, cli, milestone, line):
    assert cli("milestone", "mark", "openscience", milestone) == (2, "", [line])
    assert seeded.get_milestone("openscience", milestone) is None


@pytest.mark.parametrize("url", ["javascript:alert(1)", "data:text/html,x", "https://x.org/a\x1b"])
def test_an_agreement_url_that_is_not_a_web_address(seeded, cli, url):
    code, _, err = cli("agreement", "openscience", "--url", url)
    assert (code, err) == (2, [f"--url: {url!r} is not an http(s) address"])


def test_control_characters_are_refused_in_by_and_note(seeded, cli):
    args = ("milestone", "mark", "openscience", "technical_meeting_held")
    assert cli(*args, "--by", "ada\x1b[2J")[0] == 2
    assert cli(*args, "--note", "held\x1b[31m")[0] == 2
    assert seeded.get_milestone("openscience", "technical_meeting_held") is None


def test_status_escapes_control_characters_recorded_elsewhere(seeded, cli, store_path):
    """Recorded by hand in the store (Airtable's Done by field, say): shown, not obeyed."""
    seeded.record_milestone("openscience", "technical_meeting_held", by="ada\x1b[2J\x07")
    code, out, _ = cli("status", "openscience")
    assert code == 0
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "ada\\x1b[2J\\x07" in out


def test_seeding_adds_what_is_missing_and_never_changes_what_is_recorded(
    cli, seeded, tmp_path, example_path
):
    seeded.update_engagement(
        "openscience", status="Active", agreement_url="https://drive.example.org/signed.pdf"
    )
    changed = tmp_path / "openscience.yaml"
    changed.write_text(example_path.read_text().replace("expected_maus: 120", "expected_maus: 99"))

    code, out, _ = cli("seed", "--unsigned", str(changed))

    assert code == 0
    assert out == (
        "left alone openscience: already in the store as Active; agreement signed by "
        "community, 2i2c, CS&S; uploaded; its recorded config differs from the file and is "
        "kept (nothing changed)\n"
    )
    engagement = seeded.get_engagement("openscience")
    assert engagement.status.value == "Active"
    assert engagement.agreement_url == "https://drive.example.org/signed.pdf"
    assert engagement.agreement_signed_community
    assert engagement.agreement_signed_css
    assert engagement.config["contract"]["expected_maus"] == 120


def test_seeding_with_a_bad_file_seeds_nothing(cli, store_path, tmp_path, example_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("community_id: x\n")
    code, _, err = cli("seed", str(example_path), str(bad))
    assert code == 1
    assert err[-1] == "nothing was seeded"
    assert not store_path.exists()


def test_status_lists_emails_not_confirmed_sent(seeded, cli):
    seeded.record_action(
        "openscience", "email:welcome", "email", {"subject": "Welcome", "state": "sending"}
    )
    seeded.record_action("openscience", "email:other", "email", {"subject": "Sent one"})
    code, out, _ = cli("status", "openscience")
    assert code == 0
    listed = out.split("Emails recorded as being sent, not confirmed sent (re-run their task):\n")[
        1
    ]
    assert "email:welcome  Welcome" in listed
    assert "Sent one" not in listed
