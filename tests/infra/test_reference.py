"""Both changes pass the infrastructure repository's own validation, run by its own tools.

The vendored checkout (``tests/data/2i2c-infrastructure``) and the tools of ``make reference``
(helm on Helm's SDK, Go jsonnet, terraform as a library, the deployer) run what the provider's
engineers run before a merge. Each run takes seconds per hub, so the real tools cover a set
of configs that together touches every provider, GPU, BinderHub (open and logged-in), Dask,
an own domain and each authenticator; the in-process schema checks cover the whole matrix
(test_render.py).
"""

from __future__ import annotations

import dataclasses

import pytest

from engagements.infra import example_cluster_outputs
from engagements.infra.reference import ReferenceError, check_checkout, validate_with_checkout
from engagements.infra.workflow import DEPLOY_WORKFLOW

from .conftest import CHECKOUT, on, render_steps

WORKFLOW = (CHECKOUT / DEPLOY_WORKFLOW).read_text(encoding="utf-8")
COVERING = {
    # provider: decisions; together every feature and authenticator at least once.
    "aws-example": ("aws", {}),
    "aws-gpu-dask-cilogon-own-domain": (
        "aws",
        {
            "cloud.gpu": True,
            "hubs.community.dask_gateway": True,
            "hubs.community.auth": "cilogon",
            "hubs.binder.authenticated": True,
            "domain": "jupyter.openscience.org",
        },
    ),
    "gcp-gpu-dask-google-2i2c-billing": (
        "gcp",
        {
            "cloud.gpu": True,
            "cloud.billing": "2i2c",
            "hubs.community.dask_gateway": True,
            "hubs.community.auth": "google",
            "hubs.workshop.auth": "github",
        },
    ),
    "gcp-no-binder-no-workshop": (
        "gcp",
        {"hubs.binder.enabled": False, "hubs.workshop.enabled": False},
    ),
    "azure-gpu-dask-cilogon": (
        "azure",
        {"cloud.gpu": True, "hubs.community.dask_gateway": True, "hubs.community.auth": "cilogon"},
    ),
    "azure-no-binder": ("azure", {"hubs.binder.enabled": False}),
    "jetstream2-gpu-google-own-domain": (
        "jetstream2",
        {"cloud.gpu": True, "hubs.community.auth": "google", "domain": "hub.openscience.org"},
    ),
    "jetstream2-no-image-building": (
        "jetstream2",
        {"images.dynamic_image_building": False, "hubs.binder.enabled": False},
    ),
}


@pytest.mark.parametrize("case", list(COVERING))
def test_both_changes_pass_the_repository_validation(example, tools, case):
    provider, decisions = COVERING[case]
    cluster, hubs = render_steps(on(example, provider, decisions), workflow=WORKFLOW)
    assert validate_with_checkout(CHECKOUT, cluster, hubs) == []


def test_a_placeholder_in_a_hub_file_fails_helm_template(example, tools):
    """What the repository's validation said of values only known after provisioning."""
    cluster, hubs = render_steps(example, workflow=WORKFLOW)
    path = "config/clusters/openscience/prod.values.yaml"
    outputs = example_cluster_outputs(example)
    text = hubs.files[path].replace(
        outputs["ebs_volume_id_map"]["prod"], "'PENDING: terraform output ebs_volume_id_map'"
    )
    broken = dataclasses.replace(hubs, files={**hubs.files, path: text})
    problems = validate_with_checkout(CHECKOUT, cluster, broken)
    assert [where for where, _ in problems] == [
        "hubs: deployer validate all-hub-config openscience prod"
    ]
    assert "YAML parse error" in problems[0][1]


def test_terraform_refuses_missing_and_unknown_variables(example, tools):
    config = on(example, "azure")
    cluster, _ = render_steps(config, workflow=WORKFLOW)
    path = "terraform/azure/projects/openscience.tfvars"
    text = "\n".join(
        line for line in cluster.files[path].splitlines() if not line.startswith("tenant_id")
    )
    broken = dataclasses.replace(cluster, files={**cluster.files, path: text + "\nbogus=1\n"})
    problems = dict(validate_with_checkout(CHECKOUT, broken))
    plan = problems["cluster: terraform plan -var-file=" + path]
    assert "tenant_id" in plan
    assert "bogus" in plan
    assert "cluster: terraform fmt -check " + path in problems


def test_a_missing_deploy_workflow_entry_is_found(example, tools):
    cluster, _ = render_steps(example, workflow=None)
    problems = validate_with_checkout(CHECKOUT, cluster)
    assert problems == [
        (
            f"cluster: {DEPLOY_WORKFLOW}",
            "the change does not add openscience's entries to the deploy workflow",
        )
    ]


def test_an_incomplete_checkout_names_what_is_missing(tmp_path):
    (tmp_path / "src" / "deployer").mkdir(parents=True)
    with pytest.raises(ReferenceError) as caught:
        check_checkout(tmp_path)
    message = str(caught.value)
    assert str(tmp_path) in message
    assert "helm-charts/basehub/Chart.yaml" in message
    assert "terraform/azure/variables.tf" in message
