"""``engagements render-infra FILE --out DIR``, run as a user runs it (a separate process)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from .conftest import CHECKOUT, REFERENCE, needs_reference


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


def test_writes_both_trees_and_lists_the_secrets(run, example_path, tmp_path):
    result = run(str(example_path), "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    first = tmp_path / "1-cluster"
    cluster = yaml.safe_load((first / "config/clusters/openscience/cluster.yaml").read_text())
    assert cluster["name"] == "openscience"
    assert cluster["hubs"] == []
    assert (first / "terraform/aws/projects/openscience.tfvars").is_file()
    assert (first / "eksctl/openscience.jsonnet").is_file()
    second = tmp_path / "2-hubs" / "config/clusters/openscience"
    assert [h["name"] for h in yaml.safe_load((second / "cluster.yaml").read_text())["hubs"]] == [
        "staging",
        "prod",
        "workshop",
        "binder",
    ]
    assert "NOTE: EXAMPLE outputs" in result.stdout
    assert "validated with structural checks only" in result.stdout
    assert "enc-prod.secret.values.yaml: " in result.stdout


def test_a_checkout_runs_the_repository_validation(run, example_path, tmp_path):
    from engagements.infra.reference import ReferenceError, find_tools

    try:
        find_tools()
    except ReferenceError as exc:
        pytest.skip(str(exc))
    outputs = tmp_path / "outputs.yaml"
    outputs.write_text(
        yaml.safe_dump(
            {
                "ebs_volume_id_map": {
                    "staging": "vol-0123456789abcdef0",
                    "prod": "vol-0123456789abcdef1",
                    "workshop": "vol-0123456789abcdef2",
                },
                "nfs_server_ip": {
                    "staging": "10.100.7.1",
                    "prod": "10.100.7.2",
                    "workshop": "10.100.7.3",
                },
            }
        )
    )
    out = tmp_path / "out"
    result = run(
        str(example_path),
        "--out",
        str(out),
        "--reference",
        str(CHECKOUT),
        "--outputs",
        str(outputs),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"the repository's own validation from {CHECKOUT.resolve()}" in result.stdout
    assert "EXAMPLE" not in result.stdout
    prod = (out / "2-hubs/config/clusters/openscience/prod.values.yaml").read_text()
    assert "vol-0123456789abcdef1" in prod
    assert (
        "failure_openscience_staging"
        in (out / "2-hubs/.github/workflows/deploy-hubs.yaml").read_text()
    )


def test_an_unusable_reference_is_exit_1_naming_the_path(run, example_path, tmp_path):
    (tmp_path / "helm-charts").mkdir()
    result = run(str(example_path), "--out", str(tmp_path / "out"), "--reference", str(tmp_path))
    assert result.returncode == 1
    assert str(tmp_path) in result.stderr
    assert "src/deployer/commands/validate/config.py" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_missing_output_is_exit_1(run, example_path, tmp_path):
    outputs = tmp_path / "outputs.yaml"
    outputs.write_text("ebs_volume_id_map: {staging: vol-0123456789abcdef0}\n")
    result = run(str(example_path), "--out", str(tmp_path / "out"), "--outputs", str(outputs))
    assert result.returncode == 1
    assert "outputs.nfs_server_ip.staging: missing" in result.stderr
    assert not (tmp_path / "out").exists()


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
    assert f"{config}: contract.hubspot_deal_id: missing" in result.stderr
    assert f"{config}: hubs.community.auth: GitHub login needs an organization" in result.stderr
    assert "2 problem(s); nothing was written" in result.stderr
    assert not out.exists()


def test_invalid_config_exits_1(run, example_dict, tmp_path):
    example_dict["cloud"]["region"] = "mars-north-1"
    config = tmp_path / "community.yaml"
    config.write_text(yaml.safe_dump(example_dict))
    result = run(str(config), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert f"{config}: cloud: " in result.stderr
    assert "mars-north-1" in result.stderr
    assert not (tmp_path / "out").exists()
