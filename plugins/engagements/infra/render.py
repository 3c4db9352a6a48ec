"""Render a community's infrastructure-repository change: pure functions, no Airflow.

2i2c deploys by committing configuration to its infrastructure repository; CI applies it.
:func:`render_change` turns a community config (with its technical decisions) into the new
files of that change, laid out as the repository lays them out (FACTS.md sections 1-4):
``config/clusters/<id>/`` with ``cluster.yaml``, the support and hub values files, and the
terraform / eksctl inputs. Secrets are never rendered: each encrypted file an engineer must
add is a follow-up with what goes in it. Decisions the repository cannot deploy are refused,
all at once and with their keys, before anything is rendered.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from engagements.config import (
    REGIONS,
    Billing,
    CloudProvider,
    CommunityConfig,
    HubAuth,
    Image,
)

from .iac import iac_files, node_pools
from .layout import GCP_BILLING_ACCOUNT, GCP_IMAGE_REPO, PENDING, Hub, Layout
from .values import binder_values, common_values, hub_values, support_values
from .yamlfmt import dump_yaml

COMMUNITY_AUTH = (HubAuth.GITHUB, HubAuth.CILOGON, HubAuth.GOOGLE)
WORKSHOP_AUTH = (HubAuth.SHARED_PASSWORD, HubAuth.GITHUB, HubAuth.CILOGON, HubAuth.GOOGLE)
CONSUMER_GOOGLE_DOMAINS = ("gmail.com", "googlemail.com")
ACCOUNT_MEANING = {
    CloudProvider.AWS: "the 12-digit AWS account id (cluster.yaml aws.account)",
    CloudProvider.GCP: "the GCP project id (cluster.yaml gcp.project, terraform project_id)",
    CloudProvider.AZURE: "the Azure subscription id (terraform subscription_id)",
    CloudProvider.JETSTREAM2: "the Jetstream2 allocation the cluster is billed to",
}


class InfraError(ValueError):
    """Decisions the infrastructure repository cannot deploy, each with its config key."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__(
            f"{len(problems)} problem(s) with the technical decisions:\n"
            + "\n".join(f"  {key}: {reason}" for key, reason in problems)
        )


@dataclass(frozen=True)
class RenderedChange:
    """The change to propose: new files, secrets to add, what to review, the IaC plan."""

    files: dict[str, str]
    """Repository-relative path -> file text, sorted by path."""
    follow_ups: tuple[str, ...]
    """Encrypted files an engineer must add, each with what goes in it and how."""
    reviewer_checklist: tuple[str, ...]
    plan: dict[str, Any]
    """Infrastructure-as-code inputs: provider, region, cluster, GPU, node pools, files."""


E = TypeVar("E", bound=Enum)


def _member(enum: type[E], value: Any) -> E | None:
    """``value`` as a member of ``enum``; None when it is none (configs built unvalidated)."""
    try:
        return enum(value)
    except ValueError:
        return None


def _auth_problem(config: CommunityConfig, auth: Any, allowed: tuple[HubAuth, ...]) -> str | None:
    """Why ``auth`` cannot log people in on a hub that allows ``allowed``; None if it can."""
    member = _member(HubAuth, auth)
    names = ", ".join(a.value for a in allowed)
    if member is HubAuth.SHARED_PASSWORD and member not in allowed:
        return f"a shared password does not identify people; choose one of {names}"
    if member not in allowed:
        return f"{auth!r} is not an authenticator the chart supports here; choose one of {names}"
    if member is HubAuth.GITHUB and not (config.hubs.community.allowed_teams or config.github_org):
        return (
            "GitHub login needs an organization to allow: set github_org or "
            "hubs.community.allowed_teams"
        )
    if member is HubAuth.GOOGLE:
        public = sorted(
            {r.email.rsplit("@", 1)[1].lower() for r in config.representatives}
            & set(CONSUMER_GOOGLE_DOMAINS)
        )
        if public:
            return (
                "Google login admits the Google accounts of the representatives' email domains, "
                f"and {', '.join(public)} would admit everyone; use cilogon or github"
            )
    return None


def check_decisions(config: CommunityConfig) -> list[tuple[str, str]]:
    """Every reason the repository could not deploy these decisions, as (key, reason)."""
    problems: list[tuple[str, str]] = []
    cloud = config.cloud
    provider = _member(CloudProvider, cloud.provider)
    if provider is None:
        choices = ", ".join(p.value for p in CloudProvider)
        problems.append(
            ("cloud.provider", f"unknown provider {cloud.provider!r}; choose one of {choices}")
        )
    elif cloud.region not in REGIONS[provider]:
        problems.append(
            (
                "cloud.region",
                f"{cloud.region!r} is not a {provider.value} region; choose one of "
                + ", ".join(REGIONS[provider]),
            )
        )
    elif cloud.zone and (
        provider is not CloudProvider.GCP or not cloud.zone.startswith(cloud.region + "-")
    ):
        problems.append(
            ("cloud.zone", f"{cloud.zone!r} is not a zone of GCP region {cloud.region!r}")
        )
    if not cloud.account:
        meaning = ACCOUNT_MEANING.get(provider, "the cloud account")
        problems.append(("cloud.account", f"missing: the cluster needs {meaning}"))
    elif provider is CloudProvider.AWS and not re.fullmatch(r"\d{12}", cloud.account):
        problems.append(("cloud.account", f"{cloud.account!r} is not a 12-digit AWS account id"))
    deal = config.contract.hubspot_deal_id
    if not isinstance(deal, int) or deal <= 0:
        problems.append(
            (
                "contract.hubspot_deal_id",
                "missing: cluster.yaml requires metadata.2i2c.hubspot_deal_id, the last number "
                "of the HubSpot deal URL",
            )
        )
    hubs = config.hubs
    community = _auth_problem(config, hubs.community.auth, COMMUNITY_AUTH)
    if community:
        problems.append(("hubs.community.auth", community))
    if hubs.workshop.enabled:
        workshop = _auth_problem(config, hubs.workshop.auth, WORKSHOP_AUTH)
        if workshop:
            problems.append(("hubs.workshop.auth", workshop))
    if hubs.binder.enabled and hubs.binder.authenticated and community:
        problems.append(
            (
                "hubs.binder.authenticated",
                "an authenticated BinderHub logs in like the community hub, which has no "
                "working login method; fix hubs.community.auth or make the BinderHub open",
            )
        )
    if hubs.community.dask_gateway and provider is CloudProvider.JETSTREAM2:
        problems.append(
            (
                "hubs.community.dask_gateway",
                "the chart's Dask Gateway options know only GKE, EKS and AKS node types; "
                "Dask Gateway cannot run on jetstream2",
            )
        )
    offered = config.images.offered
    if not offered:
        problems.append(("images.offered", "offer at least one image: the first is the default"))
    for i, image in enumerate(offered):
        if _member(Image, image) is None:
            problems.append((f"images.offered[{i}]", f"unknown image {image!r}"))
    return problems


def _provider_url(lay: Layout) -> str:
    if lay.provider is CloudProvider.AWS:
        if lay.config.cloud.billing is Billing.PROVIDER:
            return "https://2i2c.awsapps.com/start#/"
        return f"https://{lay.account}.signin.aws.amazon.com/console"
    if lay.provider is CloudProvider.GCP:
        return (
            f"https://console.cloud.google.com/kubernetes/clusters/details/{lay.region}/"
            f"{lay.cluster}-cluster/observability?project={lay.account}"
        )
    if lay.provider is CloudProvider.AZURE:
        return (
            f"https://portal.azure.com/#resource/subscriptions/{lay.account}/resourceGroups/"
            f"{lay.azure_resource_group}/overview"
        )
    return "https://js2.jetstream-cloud.org/project/"


def cluster_config(lay: Layout) -> dict[str, Any]:
    """``cluster.yaml``: how the deployer reaches the cluster, and its hubs in deploy order."""
    paid = lay.config.cloud.billing is Billing.PROVIDER
    data: dict[str, Any] = {
        "name": lay.cluster,
        "provider": lay.cluster_provider,
        "provider_url": _provider_url(lay),
        "metadata": {"2i2c": {"hubspot_deal_id": lay.config.contract.hubspot_deal_id}},
    }
    if lay.provider is CloudProvider.AWS:
        data["aws"] = {
            "account": int(lay.account),
            "key": lay.deployer_key_file,
            "clusterType": "eks",
            "clusterName": lay.cluster,
            "region": lay.region,
            "billing": {"paid_by_us": paid},
        }
    elif lay.provider is CloudProvider.GCP:
        billing: dict[str, Any] = {"paid_by_us": paid}
        if paid:
            billing["bigquery"] = {
                "project": lay.account,
                "dataset": "cloud_costs",
                "billing_id": GCP_BILLING_ACCOUNT,
            }
        data["gcp"] = {
            "key": lay.deployer_key_file,
            "project": lay.account,
            "cluster": f"{lay.cluster}-cluster",
            # A regional cluster: the zone key holds the region.
            "zone": lay.region,
            "billing": billing,
        }
    else:
        data["kubeconfig"] = {"file": lay.deployer_key_file}
    data["support"] = {
        "helm_chart_values_files": ["support.values.yaml", "enc-support.secret.values.yaml"]
    }
    data["hubs"] = [
        {
            "name": hub.name,
            "display_name": hub.display_name,
            "domain": hub.domain,
            "helm_chart": "basehub",
            "helm_chart_values_files": list(hub.helm_chart_values_files),
        }
        for hub in lay.hubs
    ]
    return data


def _values_documents(lay: Layout) -> dict[str, dict[str, Any]]:
    docs = {
        "cluster.yaml": cluster_config(lay),
        "support.values.yaml": support_values(lay),
        "common.values.yaml": common_values(lay),
    }
    for hub in lay.hubs:
        values = binder_values(lay, hub) if hub.role == "binder" else hub_values(lay, hub)
        docs[hub.values_files[-1]] = values
    return docs


def pending_values(documents: dict[str, Any]) -> list[dict[str, str]]:
    """Values marked :data:`PENDING` (known only after provisioning), with their key paths."""
    found: list[dict[str, str]] = []

    def walk(node: Any, path: str, file: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{path}.{key}" if path else str(key), file)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]", file)
        elif isinstance(node, str) and node.startswith(PENDING):
            found.append({"file": file, "key": path, "needs": node.removeprefix(PENDING)})

    for file, document in documents.items():
        walk(document, "", file)
    return found


def _hub_secret(lay: Layout, hub: Hub) -> str:
    parts = []
    config = "jupyterhub.hub.config"
    if hub.auth is HubAuth.GITHUB:
        parts.append(
            f"{config}.GitHubOAuthenticator.client_id and client_secret of the GitHub OAuth app "
            f"{lay.cluster}-{hub.name} created in the 2i2c-org organization with callback URL "
            f"https://{hub.domain}/hub/oauth_callback"
        )
    elif hub.auth in (HubAuth.CILOGON, HubAuth.GOOGLE):
        parts.append(
            f"{config}.CILogonOAuthenticator.client_id and client_secret: "
            f"`deployer cilogon-client create {lay.cluster} {hub.name} {hub.domain}` creates the "
            "client and writes this file"
        )
    elif hub.auth is HubAuth.SHARED_PASSWORD:
        parts.append(
            f"{config}.SharedPasswordAuthenticator.user_password (at least 8 characters, for "
            "the workshop's instructors to share) and admin_password (at least 32 characters)"
        )
    if hub.role == "binder" or lay.image_building:
        registry = (
            "the Artifact Registry key from `terraform output -json registry_sa_keys` "
            f"(entry {GCP_IMAGE_REPO})"
            if lay.provider is CloudProvider.GCP
            else "the token of the quay.io robot imagebuilding-non-gcp-hubs+image_builder"
        )
        parts.append(
            "binderhub-service.config.DockerRegistry.password, "
            "binderhub-service.buildPodsRegistryCredentials.password and "
            f"jupyterhub.imagePullSecret (create, registry, username, password): {registry}"
        )
    if hub.role == "binder":
        parts.append(
            "binderhub-service.extraCredentials.googleServiceAccountKey: the key BinderHubs use "
            "to send launch events to 2i2c (sendLogsOfLaunchEventsTo2i2c)"
        )
    return f"{lay.path(hub.secret_file)}: " + "; ".join(parts) + "."


def follow_ups(lay: Layout) -> tuple[str, ...]:
    """The encrypted files of the change; sops encrypts any path containing ``secret``."""
    c = lay.cluster
    credentials = {
        CloudProvider.AWS: "`terraform output -raw continuous_deployer_creds` (terraform/aws)",
        CloudProvider.GCP: "`terraform output -raw ci_deployer_key` (terraform/gcp)",
        CloudProvider.AZURE: "`terraform output -raw kubeconfig` (terraform/azure)",
        CloudProvider.JETSTREAM2: f"`openstack coe cluster config {c}-cluster` (a kubeconfig)",
    }[lay.provider]
    items = [
        f"{lay.path(lay.deployer_key_file)}: the deployer's credentials from {credentials}, "
        f"encrypted with `sops --output {lay.path(lay.deployer_key_file)} --encrypt <file>`.",
        f"{lay.path('enc-support.secret.values.yaml')}: the Prometheus basic-auth user and "
        "password (prometheusAuthSecret, prometheus.server.probeHeaders and serverFiles web.yml, "
        "as `deployer generate dedicated-cluster` writes them) and "
        "grafana.grafana.ini.auth.github.client_id and client_secret of the GitHub OAuth app "
        f"{c}-grafana in 2i2c-org with callback URL https://{lay.grafana_domain}/login/github.",
        f"{lay.path('enc-grafana-token.secret.yaml')}: written by `deployer grafana new-token {c}` "
        "once the support chart is deployed.",
    ]
    if lay.provider is CloudProvider.AWS:
        items.append(
            f"eksctl/ssh-keys/secret/{c}.key: the cluster's SSH private key for node access "
            "(one of the files `deployer generate dedicated-cluster aws` lists), sops-encrypted."
        )
    items += [_hub_secret(lay, hub) for hub in lay.hubs]
    return tuple(items)


def _dns(lay: Layout) -> list[dict[str, Any]]:
    record = "CNAME" if lay.provider is CloudProvider.AWS else "A"
    target = "external address of service support/cluster-entrypoint (LoadBalancer)"
    records = [
        {"name": lay.support_domain, "type": record, "target": target, "ttl": 300},
        {"name": f"*.{lay.support_domain}", "type": record, "target": target, "ttl": 300},
    ]
    if lay.config.domain:
        names = [h.domain for h in lay.hubs] + [
            h.binder_domain for h in lay.hubs if h.binder_domain
        ]
        records += [
            {"name": name, "type": "CNAME", "target": lay.support_domain, "ttl": 300}
            for name in names
        ]
    return records


def _commands(lay: Layout) -> list[str]:
    c, tf = lay.cluster, lay.tfvars_path.split("/projects/")[0]
    commands = []
    if lay.eksctl_path:
        commands += [
            f"jsonnet {lay.eksctl_path} > eksctl/{c}.eksctl.yaml",
            f"eksctl create cluster --config-file=eksctl/{c}.eksctl.yaml",
        ]
    commands += [
        f"cd {tf} && terraform init && terraform workspace new {c}",
        f"cd {tf} && terraform plan -var-file=projects/{c}.tfvars -out={c}.plan",
        f"cd {tf} && terraform apply {c}.plan",
    ]
    if lay.provider is CloudProvider.AWS:
        commands.append(f"cd {tf} && $(terraform output -raw eksctl_iam_command)")
    commands += [
        f"deployer deploy-support {c}",
        f"deployer grafana new-token {c}",
        f"deployer deploy-dashboards {c}",
        f"deployer grafana central-ds add {c}",
        *(f"deployer deploy {c} {hub.name}" for hub in lay.hubs),
        *(f"deployer run-hub-health-check {c} {hub.name}" for hub in lay.hubs),
    ]
    return commands


def plan(lay: Layout, documents: dict[str, Any]) -> dict[str, Any]:
    config = lay.config
    return {
        "community_id": config.community_id,
        "cluster_name": lay.cluster,
        "provider": lay.provider.value,
        "cluster_provider": lay.cluster_provider,
        "region": lay.region,
        "zone": lay.gcp_zone if lay.provider is CloudProvider.GCP else None,
        "account": lay.account,
        "billing": config.cloud.billing.value,
        "gpu": lay.gpu is not None,
        "gpu_instance_type": lay.gpu.instance_type if lay.gpu else None,
        "dask_gateway": lay.dask,
        "node_pools": [asdict(pool) for pool in node_pools(lay)],
        "iac_files": list(lay.iac_paths),
        "cluster_config": lay.path("cluster.yaml"),
        "hubs": [
            {
                "name": hub.name,
                "role": hub.role,
                "domain": hub.domain,
                "url": f"https://{hub.binder_domain or hub.domain}",
                "authenticator": hub.authenticator_class,
            }
            for hub in lay.hubs
        ],
        "grafana_url": f"https://{lay.grafana_domain}",
        "prometheus_url": f"https://{lay.prometheus_domain}",
        "dns": _dns(lay),
        "commands": _commands(lay),
        "pending_values": pending_values({lay.path(name): doc for name, doc in documents.items()}),
    }


def reviewer_checklist(lay: Layout, the_plan: dict[str, Any]) -> tuple[str, ...]:
    config, c = lay.config, lay.cluster
    paid = config.cloud.billing is Billing.PROVIDER
    payer = "2i2c (passed through monthly)" if paid else "the community"
    items = [
        f"metadata.2i2c.hubspot_deal_id {config.contract.hubspot_deal_id} is the deal of "
        f"{config.name}'s current contract.",
        f"Cloud: {lay.provider.value} {lay.region}, account {lay.account}, billed to {payer}; "
        f"the IaC inputs ({', '.join(lay.iac_paths)}) match.",
        "Hub domains: " + ", ".join(h["url"] for h in the_plan["hubs"]) + "; DNS records as "
        "listed in the plan, TTL 300 (Namecheap for *.2i2c.cloud).",
    ]
    if config.domain:
        items.append(
            f"{config.domain} belongs to the community: they create the CNAME records to "
            f"{lay.support_domain} before the hubs can get TLS certificates."
        )
    for hub in lay.hubs:
        if hub.auth is HubAuth.GITHUB:
            who = ", ".join(lay.github_allowed)
            items.append(f"{hub.name}: GitHub login for {who} (sub-teams listed explicitly).")
        elif hub.auth is HubAuth.CILOGON:
            items.append(
                f"{hub.name}: CILogon admits only the admins and 2i2c staff until the "
                "community's institutional identity provider is added under "
                "CILogonOAuthenticator.allowed_idps (its EntityID from "
                "https://cilogon.org/idplist, username_claim email, allow_all or "
                "allowed_domains); the config does not name it."
            )
        elif hub.auth is HubAuth.GOOGLE:
            items.append(
                f"{hub.name}: Google login (through CILogon) admits every Google account in "
                f"{', '.join(lay.representative_domains)}; confirm these are the community's "
                "Google Workspace domains."
            )
        elif hub.auth is HubAuth.SHARED_PASSWORD:
            items.append(f"{hub.name}: anyone with the shared password can log in (allow_all).")
        elif hub.role == "binder":
            scope = (
                f"only repositories of github.com/{config.github_org}"
                if config.github_org
                else "any public GitHub repository (no github_org to restrict it to)"
            )
            items.append(f"binder: an open BinderHub, without login, that builds {scope}.")
    items.append(
        "Admin users: " + ", ".join(config.admin_users) + " (GitHub logins; email "
        "addresses on CILogon hubs)."
    )
    if the_plan["pending_values"]:
        keys = "; ".join(f"{p['file']} {p['key']}" for p in the_plan["pending_values"])
        items.append(
            "Values marked PENDING are only known after provisioning; replace them before the "
            f"hubs deploy: {keys}."
        )
    if not lay.user_node.measured:
        items.append(
            f"Resource choices for {lay.user_node.instance_type} are estimated from its nominal "
            "size; regenerate them with `deployer generate resource-allocation` once its "
            "capacity is measured."
        )
    if lay.provider is CloudProvider.AZURE:
        items.append(
            f"Azure homes are an Azure Files NFS share without per-user quotas: the "
            f"{config.storage.home_quota_gb} GB home quota is not enforced."
        )
    if lay.provider is CloudProvider.JETSTREAM2:
        items.append(
            "Jetstream2 node groups cannot scale to zero: each keeps one node running "
            "(allocation usage)."
        )
    if lay.gpu:
        items.append(
            f"GPU nodes ({lay.gpu.instance_type}): the account's GPU quota in {lay.region} "
            "allows them."
        )
    items += [
        "Image tags (scipy, datascience, pangeo, rocker) are still the current ones.",
        f"Add {c} and its staging hub to .github/workflows/deploy-hubs.yaml and {c} to "
        ".github/workflows/deploy-grafana-dashboards.yaml (shared files, not in this change).",
        "Every follow-up secret file exists and is sops-encrypted before merging.",
    ]
    return tuple(items)


def render_change(config: CommunityConfig) -> RenderedChange:
    """Render the change for ``config``; raise :class:`InfraError` before rendering if refused."""
    problems = check_decisions(config)
    if problems:
        raise InfraError(problems)
    lay = Layout(config)
    documents = _values_documents(lay)
    files = {lay.path(name): dump_yaml(doc) for name, doc in documents.items()}
    files |= iac_files(lay)
    the_plan = plan(lay, documents)
    return RenderedChange(
        files=dict(sorted(files.items())),
        follow_ups=follow_ups(lay),
        reviewer_checklist=reviewer_checklist(lay, the_plan),
        plan=the_plan,
    )


def write_change(change: RenderedChange, out_dir: Path) -> list[Path]:
    """Write the files under ``out_dir`` (a checkout of the repository, or any folder)."""
    written = []
    for relative, text in change.files.items():
        path = Path(out_dir) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
