"""Commands over a config file (validate, render-email, trigger-conf, render-infra): as a
separate process (``run``) and through ``main`` (``cli``)."""

from __future__ import annotations

import copy
import json

import pytest

from engagements.messages.emails import email_kinds
from tests.cli import write


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


def test_trigger_conf_is_valid_for_the_dag(run, example_path):
    from airflow.sdk.definitions.param import ParamsDict

    from engagements.params import build_params

    conf = json.loads(run("trigger-conf", str(example_path)).stdout)
    params = ParamsDict(build_params())
    params.update(conf)
    assert params.validate()["community_id"] == "openscience"


def test_trigger_conf_refuses_infinite_numbers(cli, tmp_path, example_path):
    path = tmp_path / "inf.yaml"
    path.write_text(example_path.read_text().replace("revenue_usd: 48000", "revenue_usd: .inf"))
    code, out, err = cli("trigger-conf", str(path))
    assert (code, out) == (1, "")
    assert err == [f"{path}: contract.revenue_usd: Input should be a finite number"]


def test_render_infra_out_onto_a_file(cli, tmp_path, example_path):
    target = tmp_path / "a-file"
    target.write_text("keep me")
    code, _, err = cli("render-infra", str(example_path), "--out", str(target / "sub"))
    assert code == 2
    assert err == [f"--out: {target} is a file; give a folder (created if missing)"]
    assert target.read_text() == "keep me"
