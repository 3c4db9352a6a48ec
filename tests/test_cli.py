"""The ``engagements`` command line, run as a user runs it (a separate process)."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from engagements.messages.emails import email_kinds


def write(tmp_path, data) -> str:
    path = tmp_path / "community.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_validate_ok(run, example_path):
    result = run("validate", str(example_path))
    assert result.returncode == 0
    assert result.stdout.startswith("OK: openscience (Open Science Collective)")
    assert len(result.stdout.strip().splitlines()) == 1


def test_validate_prints_every_problem_and_exits_1(run, tmp_path, example_dict):
    data = copy.deepcopy(example_dict)
    data["community_id"] = "Open--Science"
    data["representatives"][0]["email"] = "not-an-email"
    data["contract"]["end"] = "2020-01-01"
    data["surprise"] = 1
    result = run("validate", write(tmp_path, data))
    assert result.returncode == 1
    for key in ("community_id", "representatives[0].email", "contract", "surprise"):
        assert f": {key}: " in result.stdout, key


def test_validate_missing_file(run, tmp_path):
    result = run("validate", str(tmp_path / "nope.yaml"))
    assert result.returncode == 1
    assert (
        result.stdout
        == f"{tmp_path / 'nope.yaml'}: (file): cannot read it: No such file or directory\n"
    )


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


@pytest.mark.parametrize("template", email_kinds())
def test_render_email(run, example_path, template):
    result = run("render-email", template, str(example_path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Subject:" in out
    assert "To:" in out


def test_render_email_unknown_template(run, example_path):
    result = run("render-email", "farewell", str(example_path))
    assert result.returncode == 2
    assert "welcome" in result.stderr


def test_agreement_records_bd_facts(run, example_path):
    run("seed", "--unsigned", str(example_path))
    result = run(
        "agreement", "openscience", "--signed-by", "community", "--url", "https://x.org/a.pdf"
    )
    assert result.returncode == 0
    assert "community=True 2i2c=False" in result.stdout


def test_trigger_conf_is_valid_for_the_dag(run, example_path):
    from airflow.sdk.definitions.param import ParamsDict

    from engagements.params import build_params

    conf = json.loads(run("trigger-conf", str(example_path)).stdout)
    params = ParamsDict(build_params())
    params.update(conf)
    assert params.validate()["community_id"] == "openscience"
