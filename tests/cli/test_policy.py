"""The command line's error policy: one line per problem, exit code 1 (2 for usage),
nothing written, never a traceback; a store that is not there is never created."""

from __future__ import annotations

import sqlite3

import pytest


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
