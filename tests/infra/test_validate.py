"""The product's own validation: helm's merge, the injected values, schema and structure checks."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from engagements.infra import RenderedChange
from engagements.infra.reference import ReferenceError
from engagements.infra.validate import (
    REFERENCE_ENV,
    helm_merge,
    injected_hub_values,
    load_reference,
    merged_hub_values,
    merged_support_values,
    validate_change,
)

from .conftest import REFERENCE, needs_reference, on, render_change

FOLDER = "config/clusters/openscience"


def edit(change: RenderedChange, name: str, update) -> RenderedChange:
    """The change with one YAML file's data passed through ``update``."""
    path = f"{FOLDER}/{name}"
    data = yaml.safe_load(change.files[path])
    update(data)
    return dataclasses.replace(change, files={**change.files, path: yaml.safe_dump(data)})


def test_helm_merge_merges_maps_replaces_lists_and_deletes_on_empty():
    base = {"a": {"b": 1, "c": [1, 2], "d": {"e": 1}}, "keep": True}
    overlay = {"a": {"b": 2, "c": [3], "d": None}, "new": "x"}
    assert helm_merge(base, overlay) == {"a": {"b": 2, "c": [3]}, "keep": True, "new": "x"}
    assert base == {"a": {"b": 1, "c": [1, 2], "d": {"e": 1}}, "keep": True}


def test_injected_values_follow_values_jsonnet(example):
    change = render_change(example)
    cluster = yaml.safe_load(change.files[f"{FOLDER}/cluster.yaml"])
    staging = injected_hub_values(cluster, cluster["hubs"][0])
    assert staging["jupyterhub"]["ingress"] == {
        "hosts": ["staging.openscience.2i2c.cloud"],
        "tls": [{"hosts": ["staging.openscience.2i2c.cloud"], "secretName": "https-auto-tls"}],
    }
    assert staging["userServiceAccount"] == {
        "enabled": True,
        "annotations": {
            "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/openscience-staging"
        },
    }
    assert (
        staging["jupyterhub-home-nfs"]["quotaEnforcer"]["config"]["QuotaManager"]["hard_quota"] == 1
    )
    prod = injected_hub_values(cluster, cluster["hubs"][1])
    assert prod["jupyterhub"]["hub"]["config"]["OAuthenticator"] == {
        "oauth_callback_url": "https://openscience.2i2c.cloud/hub/oauth_callback"
    }
    assert (
        prod["jupyterhub-home-nfs"]["quotaEnforcer"]["config"]["QuotaManager"]["hard_quota"] == 10
    )


def test_the_community_quota_overrides_the_injected_one(example):
    change = render_change(example.with_decisions({"storage.home_quota_gb": 25}))
    quota = merged_hub_values(change, "prod")["jupyterhub-home-nfs"]["quotaEnforcer"]["config"]
    assert quota["QuotaManager"]["hard_quota"] == 25
    staging = merged_hub_values(change, "staging")["jupyterhub-home-nfs"]["quotaEnforcer"]["config"]
    assert staging["QuotaManager"]["hard_quota"] == 1


def test_structural_checks_without_schemas(example, monkeypatch):
    monkeypatch.delenv(REFERENCE_ENV, raising=False)
    change = render_change(example)
    assert validate_change(change) == validate_change(change, None)
    report = validate_change(change)
    assert report.ok
    assert report.schemas is None


@pytest.mark.parametrize(
    ("name", "update", "where", "reason"),
    [
        (
            "prod.values.yaml",
            lambda d: d.update(surprise=1),
            "hub prod",
            "surprise: not a key of the basehub chart",
        ),
        (
            "cluster.yaml",
            lambda d: d["metadata"]["2i2c"].update(hubspot_deal_id="96602996427"),
            f"{FOLDER}/cluster.yaml",
            "hubspot_deal_id: must be an integer",
        ),
        (
            "cluster.yaml",
            lambda d: d["hubs"][2].update(helm_chart="binderhub"),
            f"{FOLDER}/cluster.yaml",
            "hubs[2].helm_chart",
        ),
        (
            "cluster.yaml",
            lambda d: d["hubs"][1]["helm_chart_values_files"].append("extra.values.yaml"),
            f"{FOLDER}/cluster.yaml",
            "lists extra.values.yaml",
        ),
        (
            "common.values.yaml",
            lambda d: d["jupyterhub"]["custom"]["homepage"]["templateVars"].pop("funded_by"),
            "hub prod",
            "templateVars: give either redirect_to",
        ),
        (
            "staging.values.yaml",
            lambda d: d["jupyterhub"]["hub"]["config"]["JupyterHub"].update(
                authenticator_class="saml"
            ),
            "hub staging",
            "'saml' is not one the chart supports",
        ),
        (
            "staging.values.yaml",
            lambda d: d["jupyterhub"]["hub"]["config"]["Authenticator"].update(allowed_users=["x"]),
            "hub staging",
            "allowed_users must not be set",
        ),
        (
            "workshop.values.yaml",
            lambda d: d["jupyterhub"]["hub"]["config"].update(
                SharedPasswordAuthenticator={"user_password": "hunter22"}
            ),
            f"{FOLDER}/workshop.values.yaml",
            "user_password: a secret value",
        ),
        (
            "support.values.yaml",
            lambda d: d.update(grafanaa={}),
            "support",
            "grafanaa: not a key of the support chart",
        ),
    ],
    ids=[
        "unknown-hub-key",
        "deal-id-string",
        "third-hub-chart",
        "missing-file",
        "homepage-rule",
        "authenticator",
        "allowed-users",
        "secret",
        "support-key",
    ],
)
def test_problems_are_found_without_schemas(example, monkeypatch, name, update, where, reason):
    monkeypatch.delenv(REFERENCE_ENV, raising=False)
    report = validate_change(edit(render_change(example), name, update))
    assert any(w == where and reason in r for w, r in report.problems), report.problems


@needs_reference
@pytest.mark.parametrize(
    ("name", "update", "where", "reason"),
    [
        (
            "prod.values.yaml",
            lambda d: d.update(surprise=1),
            "hub prod",
            "Additional properties are not allowed ('surprise' was unexpected)",
        ),
        (
            "cluster.yaml",
            lambda d: d["metadata"]["2i2c"].update(hubspot_deal_id="96602996427"),
            f"{FOLDER}/cluster.yaml",
            "metadata.2i2c.hubspot_deal_id: '96602996427' is not of type 'integer'",
        ),
        # The schema's tuple validation checks only the first hub; every hub is checked here.
        (
            "cluster.yaml",
            lambda d: d["hubs"][3].update(helm_chart="binderhub"),
            f"{FOLDER}/cluster.yaml",
            "hubs[3].helm_chart: 'binderhub' is not one of",
        ),
        (
            "cluster.yaml",
            lambda d: d["hubs"][2].pop("domain"),
            f"{FOLDER}/cluster.yaml",
            "hubs[2]: 'domain' is a required property",
        ),
        (
            "binder.values.yaml",
            lambda d: d["jupyterhub"]["custom"].update(binderhubUI={"enabled": "yes"}),
            "hub binder",
            "jupyterhub.custom.binderhubUI.enabled: 'yes' is not of type 'boolean'",
        ),
        (
            "support.values.yaml",
            lambda d: d.update(calico={"enabled": True, "mode": "x"}),
            "support",
            "calico: Additional properties",
        ),
    ],
    ids=[
        "unknown-hub-key",
        "deal-id-string",
        "fourth-hub",
        "third-hub-domain",
        "binder-ui",
        "support-calico",
    ],
)
def test_schema_problems_name_the_key(example, name, update, where, reason):
    report = validate_change(edit(render_change(example), name, update), REFERENCE)
    assert report.schemas is not None
    assert any(w == where and reason in r for w, r in report.problems), report.problems


def test_a_rendered_secret_file_is_a_problem(example):
    change = render_change(example)
    path = f"{FOLDER}/enc-prod.secret.values.yaml"
    leaked = dataclasses.replace(change, files={**change.files, path: "jupyterhub: {}\n"})
    assert (path, "a secret file must be added encrypted, never rendered") in validate_change(
        leaked
    ).problems


@needs_reference
def test_schemas_from_the_environment(example, monkeypatch):
    monkeypatch.setenv(REFERENCE_ENV, str(REFERENCE))
    assert validate_change(render_change(example)).schemas == REFERENCE.resolve()


def test_an_unusable_reference_folder_is_an_error_naming_what_is_missing(example, tmp_path):
    with pytest.raises(ReferenceError) as caught:
        validate_change(render_change(example), tmp_path)
    assert str(tmp_path) in str(caught.value)
    assert "cluster.schema.yaml" in str(caught.value)
    assert load_reference(None) is None or REFERENCE_ENV


@needs_reference
def test_support_values_merge_defaults_injection_and_files(example):
    change = render_change(on(example, "gcp"))
    support = merged_support_values(change, load_reference(REFERENCE))
    assert support["prometheusStorageClass"]["gke"]["enabled"] is True  # the file
    assert support["prometheusStorageClass"]["gke"]["name"] == "balanced-rwo-retain"  # defaults
    assert support["jupyterhub-cost-monitoring"]["enabled"] is False  # values.jsonnet, not AWS
    assert support["grafana"]["serviceAccount"]["annotations"] == {
        "iam.gke.io/gcp-service-account": "grafana-2i2c-sa@openscience-collective.iam.gserviceaccount.com"
    }
