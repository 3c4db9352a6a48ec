"""``engagements upkeep plan FILE``: the planner on the command line, as an engineer runs it."""

from __future__ import annotations

import json

import pytest

from engagements.settings import PROJECT_ROOT

FLEET = PROJECT_ROOT / "include" / "fleet.yaml"


def test_prints_the_plan_of_the_example_and_exits_0(run):
    result = run("upkeep", "plan", str(FLEET), "--today", "2026-12-04")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    plan = json.loads(result.stdout)
    assert plan["today"] == "2026-12-04"
    assert [a["kind"] for a in plan["clusters"][0]["actions"]] == [
        "control_plane",
        "node_pool",
        "chart",
    ]
    assert plan["batches"] == [["openscience"]]


def test_reads_json_with_dates_as_text(run, tmp_path):
    path = tmp_path / "fleet.json"
    path.write_text(
        json.dumps(
            {
                "kubernetes": {"gcp": {"1.32": "2027-02-28", "1.33": "2027-06-30"}},
                "jupyterhub_chart": "4.3.3",
                "clusters": [
                    {
                        "name": "b",
                        "provider": "gcp",
                        "control_plane": {"version": "1.30", "upgraded_on": "2026-11-01"},
                        "chart": "4.3.3",
                    },
                    {
                        "name": "a",
                        "provider": "gcp",
                        "control_plane": {"version": "1.33", "upgraded_on": "2026-11-01"},
                        "node_pools": [],
                        "chart": "3.3.8",
                    },
                ],
            }
        )
    )
    result = run("upkeep", "plan", str(path), "--today", "2026-12-04", "--batch-size", "1")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["clusters"][0]["actions"][0]["to"] == "1.31"
    assert plan["clusters"][1]["actions"][0]["major"] is True
    assert plan["batches"] == [["a"], ["b"]]


def test_yaml_numbers_impossible_dates_and_batch_size_are_refused_together(run, tmp_path):
    text = FLEET.read_text()
    text = text.replace('"1.32": 2027-03-23', "1.32: 2027-03-23")
    text = text.replace("upgraded_on: 2026-01-10", "upgraded_on: 2026-02-30")
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    result = run("upkeep", "plan", str(path), "--batch-size", "0")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{path}: kubernetes.aws[1.32]: 1.32 is a number; write the version as a quoted "
        'string, e.g. "1.31"',
        f"{path}: clusters[0].node_pools[0].upgraded_on: '2026-02-30' is not a possible date: "
        "day is out of range for month",
        f"{path}: --batch-size: must be at least 1, not 0",
    ]
    assert "Traceback" not in result.stderr


def test_unreadable_and_unparsable_files_are_one_line(run, tmp_path):
    missing = run("upkeep", "plan", str(tmp_path / "none.yaml"))
    assert missing.returncode == 1
    assert (
        missing.stderr
        == f"{tmp_path / 'none.yaml'}: (file): cannot read it: No such file or directory\n"
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text("kubernetes: [unclosed\n")
    result = run("upkeep", "plan", str(broken))
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"{broken}: (file): cannot parse it:")


def test_usage_errors_exit_2(run):
    assert run("upkeep", "plan", str(FLEET), "--today", "2026-02-30").returncode == 2
    assert run("upkeep", "plan", str(FLEET), "--batch-size", "many").returncode == 2
    assert run("upkeep", "plan").returncode == 2


@pytest.fixture
def bad_batch_setting(monkeypatch):
    monkeypatch.setenv("ENGAGEMENTS_UPKEEP_BATCH_SIZE", "nope")


def test_a_bad_batch_size_setting_is_named(bad_batch_setting, run):
    result = run("upkeep", "plan", str(FLEET))
    assert result.returncode == 1
    assert result.stderr == (
        "engagements_upkeep_batch_size: 'nope' is not a whole number of at least 1\n"
    )
