"""``engagements render-infra FILE --out DIR``, run as a user runs it (a separate process)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from .conftest import REFERENCE, needs_reference


@pytest.fixture
def run():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("ENGAGEMENTS_INFRA_REFERENCE_DIR", None)

    def _run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "engagements.cli", "render-infra", *args],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )

    return _run


def test_writes_the_tree_and_lists_the_secrets(run, example_path, tmp_path):
    result = run(str(example_path), "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    cluster = yaml.safe_load((tmp_path / "config/clusters/openscience/cluster.yaml").read_text())
    assert cluster["name"] == "openscience"
    assert (tmp_path / "terraform/aws/projects/openscience.tfvars").is_file()
    assert (tmp_path / "eksctl/openscience.jsonnet").is_file()
    assert "validated with structural checks only" in result.stdout
    assert "enc-prod.secret.values.yaml: " in result.stdout


@needs_reference
def test_validates_with_the_reference_schemas(run, example_path, tmp_path):
    result = run(str(example_path), "--out", str(tmp_path), "--reference", str(REFERENCE))
    assert result.returncode == 0, result.stderr
    assert f"validated with the schemas in {REFERENCE.resolve()}" in result.stdout


def test_refused_decisions_exit_1_and_write_nothing(run, example_dict, tmp_path):
    example_dict["contract"]["hubspot_deal_id"] = None
    example_dict["github_org"] = None
    example_dict["hubs"]["community"]["allowed_teams"] = []
    config = tmp_path / "community.yaml"
    config.write_text(yaml.safe_dump(example_dict))
    out = tmp_path / "out"
    result = run(str(config), "--out", str(out))
    assert result.returncode == 1
    assert f"{config}: contract.hubspot_deal_id: missing" in result.stdout
    assert f"{config}: hubs.community.auth: GitHub login needs an organization" in result.stdout
    assert "2 problem(s); nothing was written" in result.stderr
    assert not out.exists()


def test_invalid_config_exits_1(run, example_dict, tmp_path):
    example_dict["cloud"]["region"] = "mars-north-1"
    config = tmp_path / "community.yaml"
    config.write_text(yaml.safe_dump(example_dict))
    result = run(str(config), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert f"{config}: cloud: " in result.stdout
    assert "mars-north-1" in result.stdout
    assert not (tmp_path / "out").exists()
