"""What a reviewer of each change needs beside its files: secrets, plan, checklist.

The cluster's change and the hubs' change each come with the encrypted files an engineer
adds (never rendered), and a checklist of what to verify; the plan summarises the IaC inputs,
hubs, DNS records and runbook commands for the approval form and the logs.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from engagements.config import Billing, CloudProvider, HubAuth

from .iac import node_pools
from .layout import GCP_IMAGE_REPO, IMAGEBUILDING_SECRET, Hub, Layout
from .outputs import required_outputs
from .workflow import DEPLOY_WORKFLOW, staging_entry, support_entry


def hub_secret(lay: Layout, hub: Hub) -> str:
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
    if hub.role == "binder":
        parts.append(
            "binderhub-service.extraCredentials.googleServiceAccountKey: the key BinderHubs use "
            "to send launch events to 2i2c (sendLogsOfLaunchEventsTo2i2c)"
        )
    return f"{lay.path(hub.secret_file)}: " + "; ".join(parts) + "."


def registry_secret(lay: Layout) -> str:
    """The image registry credentials, once for every hub of the cluster that builds images."""
    registry = (
        "the Artifact Registry key from `terraform output -json registry_sa_keys` "
        f"(entry {GCP_IMAGE_REPO})"
        if lay.provider is CloudProvider.GCP
        else "the token of the quay.io robot imagebuilding-non-gcp-hubs+image_builder"
    )
    return (
        f"{lay.path(IMAGEBUILDING_SECRET)}: binderhub-service.config.DockerRegistry.password, "
        "binderhub-service.buildPodsRegistryCredentials.password and jupyterhub.imagePullSecret "
        f"(create, registry, username, password): {registry}; every hub that builds or runs "
        "built images lists this one file."
    )


def cluster_follow_ups(lay: Layout) -> tuple[str, ...]:
    """The encrypted files of the cluster's change; sops encrypts any path with ``secret``."""
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
    return tuple(items)


def hub_follow_ups(lay: Layout) -> tuple[str, ...]:
    """The encrypted files of the hubs' change."""
    shared = [registry_secret(lay)] if lay.registry_secret else []
    return (*shared, *(hub_secret(lay, hub) for hub in lay.hubs))


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
    """The runbook's commands, cluster first; the hubs after the second change merges."""
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


def plan(lay: Layout) -> dict[str, Any]:
    """What the change deploys: the IaC inputs, hubs, DNS and the commands, for review."""
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
        "outputs": [output.key for output in required_outputs(lay)],
    }


def cluster_checklist(lay: Layout, the_plan: dict[str, Any], workflow: bool) -> tuple[str, ...]:
    """What a reviewer checks in the cluster's change (cluster.yaml, support, IaC inputs)."""
    config, c = lay.config, lay.cluster
    paid = config.cloud.billing is Billing.PROVIDER
    payer = "2i2c (passed through monthly)" if paid else "the community"
    items = [
        f"metadata.2i2c.hubspot_deal_id {config.contract.hubspot_deal_id} is the deal of "
        f"{config.name}'s current contract.",
        f"Cloud: {lay.provider.value} {lay.region}, account {lay.account}, billed to {payer}; "
        f"the IaC inputs ({', '.join(lay.iac_paths)}) match.",
        f"DNS: {lay.support_domain} and *.{lay.support_domain} point at the support chart's "
        "load balancer once it is deployed, TTL 300 (Namecheap for *.2i2c.cloud).",
        f"cluster.yaml has `hubs: []`: the hubs follow in a second change, written with "
        f"terraform's outputs ({', '.join(the_plan['outputs']) or 'none needed'}).",
    ]
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
        f"{DEPLOY_WORKFLOW}: `{support_entry(c)}` is in the upgrade-support job's outputs"
        + (" (in this change)." if workflow else "; add it (the repository has no such file)."),
        f"Add {c} to .github/workflows/deploy-grafana-dashboards.yaml once Grafana has its token.",
        "Every follow-up secret file exists and is sops-encrypted before merging.",
    ]
    return tuple(items)


def hubs_checklist(
    lay: Layout, the_plan: dict[str, Any], outputs_source: str, workflow: bool
) -> tuple[str, ...]:
    """What a reviewer checks in the hubs' change, starting with where its outputs came from."""
    config = lay.config
    items = [
        f"Outputs of the applied cluster: {outputs_source}.",
        "Hub domains: " + ", ".join(h["url"] for h in the_plan["hubs"]) + "; DNS records as "
        "listed in the plan, TTL 300.",
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
    staging = ", ".join(f"`{staging_entry(lay.cluster, h.name)}`" for h in lay.staging_hubs)
    items += [
        "Image tags (scipy, datascience, pangeo, rocker) are still the current ones.",
        f"{DEPLOY_WORKFLOW}: {staging} in the upgrade-staging job's outputs"
        + (" (in this change)." if workflow else "; add it (the repository has no such file)."),
        "Every follow-up secret file exists and is sops-encrypted before merging.",
    ]
    return tuple(items)
