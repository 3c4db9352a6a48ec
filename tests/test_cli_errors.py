"""Every bad input to the command line is one line per problem (``WHERE: reason``), exit code
1 (2 for a value the command cannot take), nothing written, never a traceback.

Run in-process through ``main`` (the same edge as the installed command) for speed; the
commands' own behaviour is run as a separate process in test_cli.py.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import yaml

from engagements.cli import main
from engagements.store.local import LocalStore

AZURE_ACCOUNT = "0b1f6471-1bf0-4dda-aec3-cb9272f09590"


@pytest.fixture
def store_path(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "engagements.sqlite"
    monkeypatch.setenv("ENGAGEMENTS_STORE", "local")
    monkeypatch.setenv("ENGAGEMENTS_STORE_PATH", str(path))
    return path


@pytest.fixture
def cli(store_path, capsys):
    """``engagements <args>``: (exit code, stdout, stderr lines)."""

    def run(*args: str) -> tuple[int, str, list[str]]:
        code = main(list(args))
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return code, out, err.splitlines()

    return run


@pytest.fixture
def seeded(cli, example_path, store_path):
    assert cli("seed", str(example_path))[0] == 0
    return LocalStore(store_path)


@pytest.fixture
def azure(cli, tmp_path, example_dict):
    example_dict["community_id"] = "marinelab"
    example_dict["cloud"].update(provider="azure", region="eastus", account=AZURE_ACCOUNT)
    path = tmp_path / "marinelab.yaml"
    path.write_text(yaml.safe_dump(example_dict))
    assert cli("seed", str(path))[0] == 0
    return cli


@pytest.mark.parametrize(
    "args",
    [
        ("validate", "FILE"),
        ("render-email", "welcome", "FILE"),
        ("seed", "FILE"),
        ("trigger-conf", "FILE"),
        ("render-infra", "FILE", "--out", "OUT"),
    ],
)
def test_a_missing_file_for_any_command(cli, tmp_path, store_path, args):
    missing = tmp_path / "nope.yaml"
    places = {"FILE": str(missing), "OUT": str(tmp_path / "out")}
    code, out, err = cli(*(places.get(a, a) for a in args))
    assert code == 1
    assert f"{missing}: (file): cannot read it: No such file or directory" in [
        *out.splitlines(),
        *err,
    ]
    assert not store_path.exists()
    assert not (tmp_path / "out").exists()


def test_trigger_conf_refuses_infinite_numbers(cli, tmp_path, example_path):
    path = tmp_path / "inf.yaml"
    path.write_text(example_path.read_text().replace("revenue_usd: 48000", "revenue_usd: .inf"))
    code, out, err = cli("trigger-conf", str(path))
    assert (code, out) == (1, "")
    assert err == [f"{path}: contract.revenue_usd: Input should be a finite number"]


def test_an_unknown_store_backend(cli, monkeypatch, example_path):
    monkeypatch.setenv("ENGAGEMENTS_STORE", "bogus")
    code, _, err = cli("status", "openscience")
    assert code == 1
    assert err[0].startswith("ENGAGEMENTS_STORE: 'bogus' is not a store; use local or airtable")


def test_a_store_path_whose_folder_is_missing(cli, monkeypatch, tmp_path, example_path):
    path = tmp_path / "typo" / "engagements.sqlite"
    monkeypatch.setenv("ENGAGEMENTS_STORE_PATH", str(path))
    code, _, err = cli("seed", str(example_path))
    assert code == 1
    assert err[0].startswith(f"SQLite store {path}: the folder {path.parent} does not exist")
    assert not path.parent.exists()


@pytest.mark.parametrize(
    "args",
    [
        ("status", "openscience"),
        ("milestone", "mark", "openscience", "technical_meeting_held"),
        ("agreement", "openscience", "--signed-by", "css"),
        ("support-hours", "add", "openscience", "1", "--note", "x"),
    ],
)
def test_commands_never_create_a_store_that_is_not_there(cli, store_path, args):
    code, _, err = cli(*args)
    assert code == 1
    assert err == [
        f"SQLite store {store_path}: does not exist, so nothing is recorded there; check "
        "ENGAGEMENTS_STORE_PATH, or create it with `engagements seed FILE`"
    ]
    assert not store_path.exists()


def test_render_infra_out_onto_a_file(cli, tmp_path, example_path):
    target = tmp_path / "a-file"
    target.write_text("keep me")
    code, _, err = cli("render-infra", str(example_path), "--out", str(target / "sub"))
    assert code == 2
    assert err == [f"--out: {target} is a file; give a folder (created if missing)"]
    assert target.read_text() == "keep me"


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


def test_a_decommission_end_decades_ahead(seeded, cli):
    args = ("decommission", "cluster-gone", "openscience", "9999-12-31", "--how", "x")
    assert cli(*args) == (
        2,
        "",
        ["end_date: '9999-12-31': 9999-12-31 is more than 10 years ahead"],
    )


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


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [("config", "{oops", "its JSON is not valid"), ("status", "Paused", "'Paused'")],
)
@pytest.mark.parametrize(
    "args",
    [("status", "openscience"), ("milestone", "mark", "openscience", "technical_meeting_held")],
)
def test_a_corrupt_record_names_the_store_and_the_record(
    seeded, cli, store_path, column, value, reason, args
):
    with sqlite3.connect(store_path) as db:
        db.execute(f"UPDATE engagements SET {column} = ?", (value,))
    code, _, err = cli(*args)
    assert code == 1
    (line,) = err
    assert line.startswith(f"SQLite store {store_path}: engagement 'openscience' cannot be read: ")
    assert reason in line


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
