"""Rendering the change: the layout, the matrix of decisions, secrets, determinism, refusals."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml

from engagements.infra import InfraError, RenderedChange, example_cluster_outputs, write_change
from engagements.infra import render as render_module
from engagements.infra.layout import Layout
from engagements.infra.outputs import PLACEHOLDER, outputs_from_terraform, required_outputs
from engagements.infra.validate import SECRET_KEYS, merged_hub_values, validate_change

from .conftest import (
    CLOUDS,
    REFERENCE,
    needs_reference,
    on,
    render_change,
    render_steps,
    unvalidated,
)

EXAMPLE_FILES = [
    "config/clusters/openscience/binder.values.yaml",
    "config/clusters/openscience/cluster.yaml",
    "config/clusters/openscience/common.values.yaml",
    "config/clusters/openscience/prod.values.yaml",
    "config/clusters/openscience/staging.values.yaml",
    "config/clusters/openscience/support.values.yaml",
    "config/clusters/openscience/workshop.values.yaml",
    "eksctl/openscience.jsonnet",
    "terraform/aws/projects/openscience.tfvars",
]
MATRIX = list(
    itertools.product(
        CLOUDS, (False, True), (False, True), ("github", "cilogon"), ("shared-password", "github")
    )
)


def load(change: RenderedChange, name: str) -> dict[str, Any]:
    path = name if "/" in name else f"config/clusters/openscience/{name}"
    return yaml.safe_load(change.files[path])


def test_example_community_renders_the_repository_layout(example):
    change = render_change(example)
    assert list(change.files) == EXAMPLE_FILES
    cluster = load(change, "cluster.yaml")
    assert cluster["metadata"] == {"2i2c": {"hubspot_deal_id": 96602996427}}
    assert cluster["aws"]["account"] == 123456789012
    assert [(h["name"], h["domain"]) for h in cluster["hubs"]] == [
        ("staging", "staging.openscience.2i2c.cloud"),
        ("prod", "openscience.2i2c.cloud"),
        ("workshop", "workshop.openscience.2i2c.cloud"),
        ("binder", "hub.binder.openscience.2i2c.cloud"),
    ]
    # The registry credentials are one file for the cluster, listed by every hub.
    assert cluster["hubs"][1]["helm_chart_values_files"] == [
        "common.values.yaml",
        "prod.values.yaml",
        "enc-imagebuilding-common.secret.values.yaml",
        "enc-prod.secret.values.yaml",
    ]
    # The hub URLs the emails promise are the ones deployed.
    urls = {hub["name"]: hub["url"] for hub in change.plan["hubs"]}
    assert urls["prod"] == example.hub_urls["community"]
    assert urls["workshop"] == example.hub_urls["workshop"]
    assert urls["binder"] == example.hub_urls["binder"]


def test_yaml_is_formatted_as_the_repository_formats_it(example):
    text = render_change(example).files["config/clusters/openscience/cluster.yaml"]
    assert "\nhubs:\n- name: staging\n  display_name: " in text
    assert "  helm_chart_values_files:\n  - common.values.yaml\n" in text
    binder = render_change(example).files["config/clusters/openscience/binder.values.yaml"]
    assert "authenticator_class: 'null'" in binder
    assert "    singleuserAdmin:\n      extraVolumeMounts:\n" in binder  # helm's delete
    assert "    - |\n      import os\n" in binder  # scripts stay readable


def test_community_hub_values(example):
    change = render_change(example)
    common, prod = load(change, "common.values.yaml"), load(change, "prod.values.yaml")
    home = common["jupyterhub"]["custom"]["homepage"]["templateVars"]
    assert home["org"] == {
        "name": "Open Science Collective",
        "logo_url": "https://2i2c.org/media/logo.png",
        "url": "https://openscience.example.org",
    }
    assert home["designed_by"] == home["operated_by"] == {"name": "2i2c", "url": "https://2i2c.org"}
    assert home["funded_by"] == {"name": "Sloan Foundation", "url": "https://sloan.org"}
    config = prod["jupyterhub"]["hub"]["config"]
    assert config["JupyterHub"] == {"authenticator_class": "github"}
    assert config["GitHubOAuthenticator"] == {
        "allowed_organizations": ["openscience-org:hub-users"]
    }
    assert config["Authenticator"] == {"admin_users": ["adalovelace", "ghopper"]}
    assert prod["jupyterhub-home-nfs"]["quotaEnforcer"]["config"]["QuotaManager"] == {
        "hard_quota": 10
    }
    (profile,) = prod["jupyterhub"]["singleuser"]["profileList"]
    image = profile["profile_options"]["image"]
    assert image["dynamic_image_building"] == {"enabled": True}
    assert image["unlisted_choice"]["kubespawner_override"] == {"image": "{value}"}
    assert list(image["choices"]) == ["scipy", "datascience", "pangeo", "rocker"]
    assert image["choices"]["scipy"]["default"] is True
    assert image["choices"]["rocker"]["kubespawner_override"] == {
        "image": "rocker/binder:4.4",
        "image_pull_policy": "Always",
        "default_url": "/rstudio",
        "working_dir": "/home/rstudio",
    }
    resources = profile["profile_options"]["resources"]["choices"]
    # The repository's generated r5.xlarge choices, to the byte.
    assert resources["mem_29_gb"]["kubespawner_override"] == {
        "mem_guarantee": 31222718077,
        "mem_limit": 31222718077,
        "cpu_guarantee": 3.6505,
        "cpu_limit": 3.6505,
        "node_selector": {"node.kubernetes.io/instance-type": "r5.xlarge"},
    }
    assert resources["mem_4_gb"]["kubespawner_override"]["cpu_guarantee"] == 0.4563125
    assert prod["binderhub-service"]["config"]["BinderHub"]["image_prefix"] == (
        "quay.io/imagebuilding-non-gcp-hubs/openscience-prod-"
    )


def test_workshop_hub_uses_a_shared_password(example):
    workshop = load(render_change(example), "workshop.values.yaml")
    assert workshop["jupyterhub"]["hub"]["config"] == {
        "JupyterHub": {"authenticator_class": "shared-password"},
        "Authenticator": {
            "manage_groups": False,
            "allow_all": True,
            "admin_users": ["adalovelace", "ghopper"],
        },
    }
    assert workshop["jupyterhub"]["custom"]["homepage"] == {"gitRepoBranch": "unify-logins-2"}
    # Workshops get no GPU profile.
    assert len(workshop["jupyterhub"]["singleuser"]["profileList"]) == 1


def test_open_binderhub(example):
    binder = load(render_change(example), "binder.values.yaml")
    service = binder["binderhub-service"]
    assert service["ingress"]["hosts"] == ["binder.openscience.2i2c.cloud"]
    assert service["config"]["BinderHub"]["auth_enabled"] is False
    assert service["config"]["BinderHub"]["hub_url"] == "https://hub.binder.openscience.2i2c.cloud"
    assert service["config"]["GitHubRepoProvider"] == {"allowed_specs": ["^openscience-org/.*$"]}
    assert binder["jupyterhub"]["custom"]["homepage"] == {"templateVars": {"enabled": False}}
    assert binder["jupyterhub"]["hub"]["loadRoles"]["binder"]["scopes"] == [
        "servers",
        "admin:users",
    ]


def test_authenticated_binderhub_logs_in_like_the_community_hub(example):
    config = example.with_decisions({"hubs.binder.authenticated": True})
    binder = load(render_change(config), "binder.values.yaml")
    hub = binder["jupyterhub"]["hub"]
    assert hub["config"]["BinderSpawnerMixin"] == {"auth_enabled": True}
    assert hub["config"]["GitHubOAuthenticator"] == {
        "allowed_organizations": ["openscience-org:hub-users"]
    }
    assert hub["services"]["binder"]["oauth_redirect_uri"] == (
        "https://binder.openscience.2i2c.cloud/oauth_callback"
    )
    assert binder["binderhub-service"]["config"]["BinderHub"]["auth_enabled"] is True
    assert "GitHubRepoProvider" not in binder["binderhub-service"]["config"]


def test_cilogon_and_google_log_in_through_cilogon(example):
    cilogon = render_change(example.with_decisions({"hubs.community.auth": "cilogon"}))
    config = load(cilogon, "prod.values.yaml")["jupyterhub"]["hub"]["config"]
    assert config["JupyterHub"] == {"authenticator_class": "cilogon"}
    assert config["Authenticator"] == {
        "admin_users": ["ada@openscience.example.org", "grace@openscience.example.org"]
    }
    assert any("institutional identity provider" in item for item in cilogon.reviewer_checklist)
    google = render_change(example.with_decisions({"hubs.community.auth": "google"}))
    idps = load(google, "prod.values.yaml")["jupyterhub"]["hub"]["config"]["CILogonOAuthenticator"]
    assert idps["allowed_idps"]["http://google.com/accounts/o8/id"]["allowed_domains"] == [
        "openscience.example.org"
    ]
    staff = load(google, "prod.values.yaml")["jupyterhub"]["custom"]["2i2c"]
    assert staff["add_staff_user_ids_of_type"] == "google"


def test_dask_gateway_and_gpu(example):
    change = render_change(
        on(example, "gcp", {"cloud.gpu": True, "hubs.community.dask_gateway": True})
    )
    prod = load(change, "prod.values.yaml")
    assert prod["dask-gateway"]["enabled"] is True
    assert prod["jupyterhub"]["custom"]["daskhubSetup"] == {"enabled": True}
    assert (
        "access:services!service=dask-gateway"
        in prod["jupyterhub"]["hub"]["loadRoles"]["user"]["scopes"]
    )
    gpu = prod["jupyterhub"]["singleuser"]["profileList"][1]
    assert gpu["kubespawner_override"]["extra_resource_limits"] == {"nvidia.com/gpu": "1"}
    assert gpu["kubespawner_override"]["node_selector"] == {
        "node.kubernetes.io/instance-type": "n1-highmem-8"
    }
    assert "dask-gateway" not in load(change, "workshop.values.yaml")
    tfvars = change.files["terraform/gcp/projects/openscience.tfvars"]
    assert 'type    = "nvidia-tesla-t4"' in tfvars
    assert "dask_nodes = {" in tfvars
    pools = {(p["purpose"], p["instance_type"]) for p in change.plan["node_pools"]}
    assert ("gpu", "n1-highmem-8") in pools


@pytest.mark.parametrize(
    ("provider", "file", "gpu_text"),
    [
        ("aws", "eksctl/openscience.jsonnet", "instanceType: 'g4dn.xlarge'"),
        ("gcp", "terraform/gcp/projects/openscience.tfvars", '"gpu-t4" = {'),
        ("azure", "terraform/azure/projects/openscience.tfvars", '"Standard_NC4as_T4_v3"'),
        ("jetstream2", "terraform/openstack/projects/openscience.tfvars", '"g3.medium"'),
    ],
)
def test_gpu_node_pools_only_when_chosen(example, provider, file, gpu_text):
    with_gpu = render_change(on(example, provider, {"cloud.gpu": True}))
    without = render_change(on(example, provider))
    assert gpu_text in with_gpu.files[file]
    assert gpu_text not in without.files[file]
    assert with_gpu.plan["gpu"] is True
    assert file in with_gpu.plan["iac_files"]


@pytest.mark.parametrize(
    ("provider", "cluster_provider", "iac"),
    [
        ("aws", "aws", ["terraform/aws/projects/openscience.tfvars", "eksctl/openscience.jsonnet"]),
        ("gcp", "gcp", ["terraform/gcp/projects/openscience.tfvars"]),
        ("azure", "kubeconfig", ["terraform/azure/projects/openscience.tfvars"]),
        ("jetstream2", "kubeconfig", ["terraform/openstack/projects/openscience.tfvars"]),
    ],
)
def test_provider_blocks(example, provider, cluster_provider, iac):
    change = render_change(on(example, provider))
    cluster = load(change, "cluster.yaml")
    assert cluster["provider"] == cluster_provider
    assert cluster_provider in cluster
    assert change.plan["iac_files"] == iac
    assert all(path in change.files for path in iac)
    if cluster_provider == "kubeconfig":
        assert cluster["kubeconfig"] == {"file": "enc-deployer-credentials.secret.yaml"}


def test_own_domain(example):
    """As the repository's own-domain BinderHubs are: the BinderHub at ``binder.<domain>``
    (binderhub-service ingress, badge URL, OAuth callback), its JupyterHub, which cluster.yaml
    names, at ``hub.binder.<domain>`` (config/clusters/earthscope and nasa-veda: cluster.yaml
    and binder.values.yaml at 2i2c-org/infrastructure 9ad7cd0)."""
    change = render_change(example.with_decisions({"domain": "jupyter.openscience.org"}))
    domains = [h["domain"] for h in load(change, "cluster.yaml")["hubs"]]
    assert domains == [
        "staging.jupyter.openscience.org",
        "jupyter.openscience.org",
        "workshop.jupyter.openscience.org",
        "hub.binder.jupyter.openscience.org",
    ]
    service = load(change, "binder.values.yaml")["binderhub-service"]
    assert service["ingress"]["hosts"] == ["binder.jupyter.openscience.org"]
    assert (
        service["config"]["BinderHub"]["badge_base_url"] == "https://binder.jupyter.openscience.org"
    )
    assert service["config"]["BinderHub"]["hub_url"] == "https://hub.binder.jupyter.openscience.org"
    binder = next(h for h in change.plan["hubs"] if h["name"] == "binder")
    assert binder["url"] == "https://binder.jupyter.openscience.org"
    # Grafana stays under 2i2c's domain.
    support = load(change, "support.values.yaml")
    assert support["grafana"]["ingress"]["hosts"] == ["grafana.openscience.2i2c.cloud"]
    cnames = {r["name"]: r["target"] for r in change.plan["dns"] if r["type"] == "CNAME"}
    assert cnames["binder.jupyter.openscience.org"] == "openscience.2i2c.cloud"


def test_optional_hubs_are_left_out(example):
    config = example.with_decisions({"hubs.workshop.enabled": False, "hubs.binder.enabled": False})
    change = render_change(config)
    assert [h["name"] for h in load(change, "cluster.yaml")["hubs"]] == ["staging", "prod"]
    assert not any(p.endswith(("workshop.values.yaml", "binder.values.yaml")) for p in change.files)
    assert "'workshop'" not in change.files["eksctl/openscience.jsonnet"]


@needs_reference
@pytest.mark.parametrize(
    ("provider", "gpu", "binder", "community_auth", "workshop_auth"),
    MATRIX,
    ids=["-".join(map(str, case)) for case in MATRIX],
)
def test_matrix_validates_against_the_repository_schemas(
    example, provider, gpu, binder, community_auth, workshop_auth
):
    config = on(
        example,
        provider,
        {
            "cloud.gpu": gpu,
            "hubs.binder.enabled": binder,
            "hubs.community.auth": community_auth,
            "hubs.workshop.auth": workshop_auth,
        },
    )
    change = render_change(config)
    report = validate_change(change, REFERENCE)
    assert report.schemas == REFERENCE.resolve()
    assert report.problems == ()
    expected = {"staging": community_auth, "prod": community_auth, "workshop": workshop_auth}
    for hub, auth in expected.items():
        config = merged_hub_values(change, hub)["jupyterhub"]["hub"]["config"]
        assert config["JupyterHub"]["authenticator_class"] == auth


@needs_reference
def test_home_hubs_keep_the_shared_directories_of_the_chart(example):
    from engagements.infra.validate import load_reference

    change = render_change(example)
    values = merged_hub_values(change, "prod", load_reference(REFERENCE))
    mounts = values["jupyterhub"]["singleuser"]["storage"]["extraVolumeMounts"]
    assert mounts["002-shared-volumemount"]["mountPath"] == "/home/jovyan/shared"
    assert mounts["002-shared-volumemount"]["readOnly"] is True
    admin = values["jupyterhub"]["custom"]["singleuserAdmin"]["extraVolumeMounts"]
    assert admin["001-shared-readwrite-volumemount"]["mountPath"] == "/home/jovyan/shared-readwrite"


@pytest.mark.parametrize("provider", list(CLOUDS))
def test_no_secret_is_rendered(example, provider):
    config = on(example, provider, {"hubs.binder.authenticated": True, "cloud.gpu": True})
    change = render_change(config)
    for path, text in change.files.items():
        assert "secret" not in Path(path).name, path

        def walk(node: Any, where: str = path) -> None:
            if isinstance(node, dict):
                for key, value in node.items():
                    assert key not in SECRET_KEYS, f"{where}: {key}"
                    walk(value, f"{where}.{key}")
            elif isinstance(node, list):
                for item in node:
                    walk(item, where)

        if path.endswith(".yaml"):
            walk(yaml.safe_load(text))
    cluster = load(change, "cluster.yaml")
    secret_files = {
        f for hub in cluster["hubs"] for f in hub["helm_chart_values_files"] if "secret" in f
    }
    # Every encrypted file the change refers to is a follow-up saying what goes in it.
    for name in secret_files | {"enc-support.secret.values.yaml"}:
        assert any(
            item.startswith(f"config/clusters/openscience/{name}: ") for item in change.follow_ups
        ), name


def test_follow_ups_say_what_goes_in_each_secret(example):
    change = render_change(example.with_decisions({"hubs.community.auth": "cilogon"}))
    text = "\n".join(change.follow_ups)
    assert "enc-deployer-credentials.secret.json" in text
    assert "deployer cilogon-client create openscience prod openscience.2i2c.cloud" in text
    assert "SharedPasswordAuthenticator.user_password (at least 8 characters" in text
    assert "openscience-grafana" in text
    # What exists only after the merge is a step of the checklist, not a secret to add first.
    assert "grafana-token" not in text
    assert (
        "After the merge deploys the support chart: `deployer grafana new-token openscience` "
        "writes config/clusters/openscience/enc-grafana-token.secret.yaml"
    ) in "\n".join(change.reviewer_checklist)
    github = "\n".join(render_change(example).follow_ups)
    assert (
        "GitHub OAuth app openscience-staging created in the 2i2c-org organization with callback "
        "URL https://staging.openscience.2i2c.cloud/hub/oauth_callback"
    ) in github


def test_the_cluster_change_has_no_hubs_and_the_hubs_change_no_iac(example):
    cluster, hubs = render_steps(example)
    assert yaml.safe_load(cluster.files["config/clusters/openscience/cluster.yaml"])["hubs"] == []
    assert sorted(cluster.files) == [
        "config/clusters/openscience/cluster.yaml",
        "config/clusters/openscience/support.values.yaml",
        "eksctl/openscience.jsonnet",
        "terraform/aws/projects/openscience.tfvars",
    ]
    assert not any(p.endswith((".tfvars", ".jsonnet", "support.values.yaml")) for p in hubs.files)
    assert cluster.step == "cluster"
    assert hubs.step == "hubs"


@pytest.mark.parametrize("provider", list(CLOUDS))
def test_no_placeholder_reaches_a_chart_value(example, provider):
    """Every output the hubs need is refused missing or made up, then used as given."""
    config = on(example, provider)
    lay = Layout(config)
    needed = required_outputs(lay)
    assert bool(needed) == (provider != "azure")  # Azure homes need no per-hub output
    if needed:
        with pytest.raises(InfraError) as missing:
            render_steps(config, outputs={})
        assert {key for key, _ in missing.value.problems} == {f"outputs.{o.key}" for o in needed}
    real = example_cluster_outputs(config)
    for output in needed:
        name, _, hub = output.key.partition(".")
        for fake in ("PENDING: terraform output", "TODO", "<volume id>", ""):
            outputs = {**real, name: {**real[name], hub: fake}}
            with pytest.raises(InfraError) as refused:
                render_steps(config, outputs=outputs)
            assert f"outputs.{output.key}" in dict(refused.value.problems)
    _, hubs = render_steps(config, outputs=real)
    text = "\n".join(hubs.files.values())
    # The one angle-bracketed text is the image field's help message for users.
    shown = text.replace("<image-name>:<tag>", "")
    assert not PLACEHOLDER.search(shown), PLACEHOLDER.search(shown)
    for output in needed:
        assert output.example in text


def test_outputs_from_terraform_are_keyed_by_hub(example):
    lay = Layout(example)
    terraform = {
        "ebs_volume_id_map": {
            "value": {f"hub-nfs-home-dirs-{h}": f"vol-0abc{i:013x}" for i, h in enumerate("abc")}
            | {
                "hub-nfs-home-dirs-staging": "vol-0123456789abcdef0",
                "hub-nfs-home-dirs-prod": "vol-0123456789abcdef1",
                "hub-nfs-home-dirs-workshop": "vol-0123456789abcdef2",
            }
        }
    }
    nfs = {"staging": "10.100.1.1", "prod": "10.100.1.2", "workshop": "10.100.1.3"}
    outputs = outputs_from_terraform(lay, terraform, nfs)
    assert outputs["ebs_volume_id_map"]["prod"] == "vol-0123456789abcdef1"
    _, hubs = render_steps(example, outputs=outputs)
    prod = yaml.safe_load(hubs.files["config/clusters/openscience/prod.values.yaml"])
    assert prod["nfs"]["pv"]["serverIP"] == "10.100.1.2"
    assert prod["jupyterhub-home-nfs"]["eks"]["volumeId"] == "vol-0123456789abcdef1"
    assert not any("EXAMPLE" in note for note in hubs.notes)  # real outputs


def test_example_outputs_say_so(example):
    _, hubs = render_steps(example)
    assert any("EXAMPLE outputs" in note for note in hubs.notes)
    assert "the tests' example outputs" in hubs.reviewer_checklist[0]


def test_plan_summarises_the_iac_inputs(example):
    plan = render_change(example).plan
    assert plan["provider"] == "aws"
    assert plan["region"] == "us-west-2"
    assert plan["cluster_name"] == "openscience"
    assert plan["gpu"] is False
    assert {p["purpose"] for p in plan["node_pools"]} == {"core", "notebook", "dask"}
    assert (
        plan["commands"][0] == "jsonnet eksctl/openscience.jsonnet > eksctl/openscience.eksctl.yaml"
    )
    assert plan["grafana_url"] == example.grafana_url


def test_same_config_same_bytes(example, tmp_path):
    config = on(example, "azure", {"cloud.gpu": True, "hubs.community.dask_gateway": True})
    first, second = render_change(config), render_change(config)
    assert first == second
    assert list(first.files) == sorted(first.files)
    a = write_change(first, tmp_path / "a")
    b = write_change(second, tmp_path / "b")
    assert [p.relative_to(tmp_path / "a") for p in a] == [p.relative_to(tmp_path / "b") for p in b]
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b, strict=True))


def test_write_change_writes_the_tree(example, tmp_path):
    change = render_change(example)
    written = write_change(change, tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in written] == EXAMPLE_FILES
    assert (tmp_path / "eksctl/openscience.jsonnet").read_text() == change.files[
        "eksctl/openscience.jsonnet"
    ]


BAD_DECISIONS = [
    ("cloud.provider", "oracle", "cloud.provider", "unknown provider 'oracle'"),
    ("cloud.region", "eu-west-1x", "cloud.region", "is not a aws region"),
    ("cloud.account", None, "cloud.account", "12-digit AWS account id"),
    ("contract.hubspot_deal_id", None, "contract.hubspot_deal_id", "hubspot_deal_id"),
    ("hubs.community.auth", "shared-password", "hubs.community.auth", "does not identify people"),
    ("hubs.community.auth", "saml", "hubs.community.auth", "not an authenticator"),
    ("hubs.workshop.auth", "saml", "hubs.workshop.auth", "not an authenticator"),
    ("images.offered", (), "images.offered", "at least one image"),
]


@pytest.mark.parametrize(
    ("dotted", "value", "key", "reason"),
    BAD_DECISIONS,
    ids=[b[0] + "=" + str(b[1]) for b in BAD_DECISIONS],
)
def test_bad_decisions_are_refused_before_rendering(
    example, monkeypatch, dotted, value, key, reason
):
    def must_not_render(*args: Any) -> None:
        raise AssertionError("rendered despite a refused decision")

    monkeypatch.setattr(render_module, "cluster_config", must_not_render)
    monkeypatch.setattr(render_module, "iac_files", must_not_render)
    with pytest.raises(InfraError) as caught:
        render_change(unvalidated(example, dotted, value))
    problems = dict(caught.value.problems)
    assert key in problems, caught.value.problems
    assert reason in problems[key]
    assert key in str(caught.value)


def test_binder_asking_for_login_needs_a_login_method(example):
    config = unvalidated(
        example.with_decisions({"hubs.binder.authenticated": True}),
        "hubs.community.auth",
        "shared-password",
    )
    with pytest.raises(InfraError) as caught:
        render_change(config)
    keys = [key for key, _ in caught.value.problems]
    assert keys == ["hubs.community.auth", "hubs.binder.authenticated"]


@pytest.mark.parametrize(
    ("decisions", "key", "reason"),
    [
        (
            {"github_org": None, "hubs.community.allowed_teams": []},
            "hubs.community.auth",
            "needs an organization",
        ),
        (
            {
                "hubs.community.auth": "google",
                "representatives": [
                    {"name": "A", "email": "a@gmail.com", "github": "a", "technical_lead": True}
                ],
            },
            "hubs.community.auth",
            "gmail.com would admit everyone",
        ),
        (
            {
                "cloud.provider": "jetstream2",
                "cloud.region": "IU",
                "cloud.account": "CIS230045",
                "hubs.community.dask_gateway": True,
            },
            "hubs.community.dask_gateway",
            "cannot run on jetstream2",
        ),
        (
            {"cloud.provider": "gcp", "cloud.region": "us-central1", "cloud.account": None},
            "cloud.account",
            "GCP project id",
        ),
    ],
)
def test_valid_configs_the_repository_cannot_deploy(example, decisions, key, reason):
    with pytest.raises(InfraError) as caught:
        render_change(example.with_decisions(decisions))
    assert reason in dict(caught.value.problems)[key]


def test_every_problem_is_reported_at_once(example):
    config = unvalidated(
        unvalidated(example, "contract.hubspot_deal_id", None), "cloud.account", None
    )
    with pytest.raises(InfraError) as caught:
        render_change(config)
    assert [key for key, _ in caught.value.problems] == [
        "cloud.account",
        "contract.hubspot_deal_id",
    ]


def test_rendered_paths_are_the_files_of_both_changes(example):
    cluster, hubs = render_steps(example)
    assert render_module.rendered_paths(example) == sorted({*cluster.files, *hubs.files})
    assert render_module.rendered_paths(example) == EXAMPLE_FILES
    with pytest.raises(InfraError, match="engagements_ssh_public_key"):
        render_module.rendered_paths(on(example, "azure"))
