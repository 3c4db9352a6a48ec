"""What a reviewer of each change needs beside its files: secrets, plan, checklist.

The cluster's change and the hubs' change each come with the encrypted files an engineer
adds before merging it (never rendered), and a checklist of what to verify: the cluster's
names its costs, the hubs' the outputs they were written with and what follows the merge.
Files that only the applied cluster can give (the deployer's credentials) belong to the
hubs' change. The plan summarises the IaC inputs, hubs, DNS records and runbook commands for
the approval form and the logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from engagements.config import Billing, CloudProvider, HubAuth

from .iac import node_pools
from .layout import GCP_IMAGE_REPO, IMAGEBUILDING_SECRET, Hub, Layout
from .outputs import lookup, required_outputs
from .workflow import DEPLOY_WORKFLOW, staging_entry, support_entry

WORKFLOW_STATE = {
    "added": " (in this change).",
    "present": " (already there).",
    "absent": "; add it (the repository has no such file).",
}
"""How the checklist ends a deploy workflow entry: what :func:`render._workflow` found."""


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
    items = [
        f"{lay.path('enc-support.secret.values.yaml')}: the Prometheus basic-auth user and "
        "password (prometheusAuthSecret, prometheus.server.probeHeaders and serverFiles web.yml, "
        "as `deployer generate dedicated-cluster` writes them) and "
        "grafana.grafana.ini.auth.github.client_id and client_secret of the GitHub OAuth app "
        f"{c}-grafana in 2i2c-org with callback URL https://{lay.grafana_domain}/login/github.",
    ]
    if lay.provider is CloudProvider.AWS:
        items.append(
            f"eksctl/ssh-keys/secret/{c}.key: the cluster's SSH private key for node access "
            "(one of the files `deployer generate dedicated-cluster aws` lists), sops-encrypted."
        )
    return tuple(items)


def deployer_credentials(lay: Layout) -> str:
    """The key cluster.yaml names, which exists only once terraform has applied the cluster."""
    c = lay.cluster
    source = {
        CloudProvider.AWS: "`terraform output -raw continuous_deployer_creds` (terraform/aws)",
        CloudProvider.GCP: "`terraform output -raw ci_deployer_key` (terraform/gcp)",
        CloudProvider.AZURE: "`terraform output -raw kubeconfig` (terraform/azure)",
        CloudProvider.JETSTREAM2: f"`openstack coe cluster config {c}-cluster` (a kubeconfig)",
    }[lay.provider]
    path = lay.path(lay.deployer_key_file)
    return (
        f"{path}: the deployer's credentials for the applied cluster from {source}, "
        f"encrypted with `sops --output {path} --encrypt <file>`."
    )


def hub_follow_ups(lay: Layout) -> tuple[str, ...]:
    """The encrypted files of the hubs' change, the applied cluster's credentials first."""
    shared = [registry_secret(lay)] if lay.registry_secret else []
    return (deployer_credentials(lay), *shared, *(hub_secret(lay, hub) for hub in lay.hubs))


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


def _payer(lay: Layout) -> str:
    paid = lay.config.cloud.billing is Billing.PROVIDER
    return "2i2c (passed through monthly)" if paid else "the community"


def costs(lay: Layout, the_plan: dict[str, Any]) -> str:
    """What the cluster costs while nobody uses it, and what grows with use."""
    pools = the_plan["node_pools"]
    always = ", ".join(f"{p['instance_type']} x{p['min']} ({p['name']})" for p in pools if p["min"])
    kinds = {"notebook": "user nodes", "gpu": "GPU nodes", "dask": "Dask workers"}
    on_demand = "; ".join(
        f"{label} {', '.join(p['instance_type'] for p in pools if p['purpose'] == kind)}"
        for kind, label in kinds.items()
        if any(p["purpose"] == kind and not p["min"] for p in pools)
    )
    homes = len(lay.home_hubs)
    storage = {
        CloudProvider.AWS: f"{homes} EBS gp3 home disks of 10 GiB, grown by jupyterhub-home-nfs "
        "as homes fill, with nightly backups",
        CloudProvider.GCP: f"{homes} persistent home disks of 10 GiB, grown by jupyterhub-home-nfs "
        "as homes fill; `filestores = {}`: no Filestore (the module's default is 1 TiB, about "
        "200 USD a month)",
        CloudProvider.AZURE: "one Azure Files share of 100 GiB for every hub's homes",
        CloudProvider.JETSTREAM2: f"{homes} Cinder home volumes of 10 GiB, grown by "
        "jupyterhub-home-nfs as homes fill",
    }[lay.provider]
    estimate = lay.config.contract.cloud_cost_estimate_usd_month
    return (
        "Costs"
        + (f" (the contract estimates {estimate:,.0f} USD a month)" if estimate else "")
        + f", billed to {_payer(lay)}: always running {always}"
        + (f"; from zero as users start servers: {on_demand}" if on_demand else "")
        + f"; {storage}."
    )


def cluster_checklist(lay: Layout, the_plan: dict[str, Any], workflow: str) -> tuple[str, ...]:
    """What a reviewer checks in the cluster's change (cluster.yaml, support, IaC inputs)."""
    config, c = lay.config, lay.cluster
    items = [
        f"metadata.2i2c.hubspot_deal_id {config.contract.hubspot_deal_id} is the deal of "
        f"{config.name}'s current contract.",
        f"Cloud: {lay.provider.value} {lay.region}, account {lay.account}, billed to "
        f"{_payer(lay)}; the IaC inputs ({', '.join(lay.iac_paths)}) match.",
        costs(lay, the_plan),
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
        + WORKFLOW_STATE[workflow],
        "Every secret file listed below exists and is sops-encrypted before merging; the "
        "deployer's credentials follow with the hubs, once terraform has created them.",
    ]
    return tuple(items)


def _outputs(lay: Layout, outputs: Mapping[str, Any], outputs_source: str) -> str:
    needed = required_outputs(lay)
    if not needed:
        return "Outputs of the applied cluster: none needed (homes on Azure Files)."
    values = "; ".join(f"{o.key} `{lookup(outputs, o.key)}` ({o.source})" for o in needed)
    return f"Outputs of the applied cluster, from {outputs_source}: {values}."


def hubs_checklist(
    lay: Layout,
    the_plan: dict[str, Any],
    outputs: Mapping[str, Any],
    outputs_source: str,
    workflow: str,
) -> tuple[str, ...]:
    """What a reviewer checks in the hubs' change, starting with the outputs it was written
    with, and what an engineer does once it is merged and deployed."""
    config, c = lay.config, lay.cluster
    binder = next((h for h in lay.hubs if h.binder_domain), None)
    items = [
        _outputs(lay, outputs, outputs_source),
        "Hub URLs: "
        + ", ".join(h["url"] for h in the_plan["hubs"])
        + (f" (the BinderHub's JupyterHub at https://{binder.domain})" if binder else "")
        + ".",
    ]
    if config.domain:
        names = ", ".join(r["name"] for r in the_plan["dns"] if r["type"] == "CNAME")
        items.append(
            f"{config.domain} belongs to the community: they create CNAME records {names} to "
            f"{lay.support_domain}, TTL 300, before the hubs can get TLS certificates."
        )
    else:
        items.append(
            f"DNS: the *.{lay.support_domain} record of the cluster's change covers every hub."
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
            items.append(
                f"binder: an open BinderHub, without login, that builds {scope}; anyone may "
                "start sessions (1 CPU, 2 GB each) billed to the community's cluster."
            )
    items.append(
        "Admin users: " + ", ".join(config.admin_users) + " (GitHub logins; email "
        "addresses on CILogon hubs)."
    )
    if lay.gpu:
        items.append(
            f"The GPU profile starts one {lay.gpu.instance_type} node for each user, billed by "
            "the hour while the server runs."
        )
    images = ", ".join(image.value for image in config.images.offered)
    staging = ", ".join(f"`{staging_entry(c, h.name)}`" for h in lay.staging_hubs)
    items += [
        f"Image tags ({images}) are still the current ones.",
        f"{DEPLOY_WORKFLOW}: {staging} in the upgrade-staging job's outputs"
        + WORKFLOW_STATE[workflow],
        "Every secret file listed below exists and is sops-encrypted before merging.",
        f"After the merge deploys the support chart: `deployer grafana new-token {c}` writes "
        f"{lay.path('enc-grafana-token.secret.yaml')} (commit it), then add {c} to "
        ".github/workflows/deploy-grafana-dashboards.yaml.",
    ]
    return tuple(items)
