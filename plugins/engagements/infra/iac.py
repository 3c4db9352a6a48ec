"""Infrastructure-as-code inputs: terraform ``.tfvars`` per cloud and the AWS eksctl jsonnet.

The files follow the repository's templates (``terraform/aws/projects/template.tfvars``,
``terraform/gcp/projects/cluster.tfvars.template``, ``eksctl/template.jsonnet``) and, for
Azure and Jetstream2 which have none, the variables their modules declare. Every variable
without a default is set, and so is every default that would cost money or pin an old
version unseen (GCP's default Filestore, Jetstream2's node image): ``terraform plan`` of the
cloud's ``variables.tf`` accepts each file as it is.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from engagements.config import Billing, CloudProvider

from .layout import GCP_BILLING_ACCOUNT, GCP_IMAGE_REPO, Layout

EKS_VERSION = "1.34"
AWS_CORE = "r8i-flex.large"
AWS_NOTEBOOK = ("r5.xlarge", "r5.4xlarge", "r5.16xlarge")
AWS_DASK = ("r5.4xlarge", "r7i.4xlarge", "r6i.4xlarge")
GCP_CORE = "n2-highmem-2"
GCP_NOTEBOOK = ("n2-highmem-4", "n2-highmem-16", "n2-highmem-64")
GCP_DASK = "n2-highmem-16"
AZURE_CORE = "Standard_E2s_v5"
AZURE_DASK = "Standard_E16_v4"
"""The instance type the chart's Dask Gateway options handler offers on AKS."""
JETSTREAM2_CORE = "m3.quad"
AKS_VERSION = "1.35.5"
"""The newest AKS version a cluster of the repository runs (utoronto); `az aks get-versions`."""
JETSTREAM2_IMAGE = "ubuntu-jammy-kube-v1.33.2-250626-0848"
JETSTREAM2_CAPI_CHART = "0.16.0"
"""The newest Kubernetes image and CAPI helm chart a Jetstream2 cluster of the repository
runs (projectpythia-binder); the module's defaults are a Kubernetes 1.31 image from 2024."""


@dataclass(frozen=True)
class NodePool:
    name: str
    instance_type: str
    purpose: str
    """core, notebook, dask or gpu."""
    min: int
    max: int


def node_pools(lay: Layout) -> list[NodePool]:
    """The cluster's node pools as the IaC files declare them (for the plan and the files)."""
    gpu, dask = lay.gpu, lay.dask
    if lay.provider is CloudProvider.AWS:
        pools = [NodePool("core", AWS_CORE, "core", 1, 6)]
        pools += [NodePool(f"nb-{t}", t, "notebook", 0, 500) for t in AWS_NOTEBOOK]
        pools.append(NodePool("dask", ", ".join(AWS_DASK), "dask", 0, 500))
        if gpu:
            pools.append(NodePool("gpu", gpu.instance_type, "gpu", 0, 500))
    elif lay.provider is CloudProvider.GCP:
        pools = [NodePool("core", GCP_CORE, "core", 1, 5)]
        pools += [NodePool(t, t, "notebook", 0, 100) for t in GCP_NOTEBOOK]
        if gpu:
            pools.append(NodePool("gpu-t4", gpu.instance_type, "gpu", 0, 20))
        if dask:
            pools.append(NodePool(GCP_DASK, GCP_DASK, "dask", 0, 200))
    elif lay.provider is CloudProvider.AZURE:
        user = lay.user_node.instance_type
        pools = [
            NodePool("core", AZURE_CORE, "core", 1, 10),
            NodePool(_azure_pool_name("user", user), user, "notebook", 0, 100),
        ]
        if gpu:
            pools.append(
                NodePool(
                    _azure_pool_name("gpu", gpu.instance_type), gpu.instance_type, "gpu", 0, 20
                )
            )
        if dask:
            pools.append(NodePool(_azure_pool_name("dask", AZURE_DASK), AZURE_DASK, "dask", 0, 100))
    else:
        # Magnum cannot scale a node group to zero: every pool keeps one node running.
        user = lay.user_node.instance_type
        pools = [
            NodePool("core", JETSTREAM2_CORE, "core", 1, 5),
            NodePool(user.replace(".", "-"), user, "notebook", 1, 100),
        ]
        if gpu:
            pools.append(
                NodePool(gpu.instance_type.replace(".", "-"), gpu.instance_type, "gpu", 1, 20)
            )
    return pools


def _azure_pool_name(prefix: str, vm_size: str) -> str:
    """AKS pool names: at most 12 lowercase letters and digits."""
    compact = re.sub(r"[^a-z0-9]", "", vm_size.lower().removeprefix("standard_"))
    return (prefix + compact)[:12]


# HCL ------------------------------------------------------------------------------------


class Map(dict):
    """A terraform map: keys are names chosen by us, written quoted."""


@dataclass(frozen=True)
class Comment:
    text: str


_BARE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return repr(value)
    return hcl_string(str(value))


def hcl_string(text: str) -> str:
    """A quoted HCL string that terraform reads back as exactly ``text``.

    JSON's quoting is HCL's, except that HCL would expand ``${...}`` and ``%{...}`` as
    templates: they are written as the literal escapes ``$${`` and ``%%{``.
    """
    quoted = json.dumps(text, ensure_ascii=False)
    return quoted.replace("${", "$${").replace("%{", "%%{")


def _value(value: Any, indent: int) -> str:
    pad = "  " * (indent + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        if isinstance(value, Map) and len(value) == 1:
            ((key, item),) = value.items()
            if not isinstance(item, dict | list):
                return f"{{ {hcl_string(key)} = {_scalar(item)} }}"
        lines = _attributes(
            [
                (hcl_string(k) if isinstance(value, Map) or not _BARE.match(k) else k, v)
                for k, v in value.items()
            ],
            indent + 1,
        )
        return "{\n" + lines + "  " * indent + "}"
    if isinstance(value, list):
        if all(not isinstance(v, dict | list) for v in value):
            return "[" + ", ".join(_scalar(v) for v in value) + "]"
        items = "".join(f"{pad}{_value(v, indent + 1)},\n" for v in value)
        return "[\n" + items + "  " * indent + "]"
    return _scalar(value)


def _attributes(items: list[tuple[str, Any]], indent: int) -> str:
    """``key = value`` lines, ``=`` aligned within runs of one-line values (terraform fmt)."""
    rendered = [(k, _value(v, indent)) for k, v in items]
    out, run = [], []

    def flush() -> None:
        width = max((len(k) for k, _ in run), default=0)
        out.extend(f"{'  ' * indent}{k.ljust(width)} = {v}\n" for k, v in run)
        run.clear()

    for key, text in rendered:
        if "\n" in text:
            flush()
            out.append(f"{'  ' * indent}{key} = {text}\n")
        else:
            run.append((key, text))
    flush()
    return "".join(out)


def hcl(*groups: list[tuple[str, Any] | Comment]) -> str:
    """A tfvars document: groups separated by a blank line."""
    blocks = []
    for group in groups:
        text, pending = "", []
        for item in group:
            if isinstance(item, Comment):
                text += _attributes(pending, 0)
                pending = []
                text += "".join(f"# {line}".rstrip() + "\n" for line in item.text.splitlines())
            else:
                pending.append(item)
        blocks.append(text + _attributes(pending, 0))
    return "\n".join(b for b in blocks if b)


# tfvars per provider ---------------------------------------------------------------------


def _disk(hub: str, size: int, **extra: Any) -> dict[str, Any]:
    return {"size": size, "name_suffix": hub, **extra}


def aws_tfvars(lay: Layout) -> str:
    volumes = Map(
        (
            hub.name,
            {
                "name_suffix": hub.name,
                "type": "gp3",
                # jupyterhub-home-nfs grows the disk as homes fill it.
                "size": 10,
                "tags": Map({"2i2c:hub-name": hub.name}),
            },
        )
        for hub in lay.home_hubs
    )
    extras: list[tuple[str, Any] | Comment] = [("enable_nfs_backup", True)]
    if lay.config.cloud.billing is Billing.PROVIDER:
        extras += [
            Comment("2i2c pays the bill: activate the cost allocation tags per-hub costs need."),
            ("enable_jupyterhub_cost_tags", True),
        ]
    return hcl(
        [
            ("region", lay.region),
            ("cluster_name", lay.cluster),
            ("cluster_nodes_location", f"{lay.region}a"),
        ],
        [("ebs_volumes", volumes), *extras],
    )


def gcp_tfvars(lay: Layout) -> str:
    paid = lay.config.cloud.billing is Billing.PROVIDER
    notebook = Map()
    for pool in node_pools(lay):
        if pool.purpose == "notebook":
            notebook[pool.name] = {
                "min": pool.min,
                "max": pool.max,
                "machine_type": pool.instance_type,
            }
        elif pool.purpose == "gpu":
            notebook[pool.name] = {
                "min": pool.min,
                "max": pool.max,
                "machine_type": pool.instance_type,
                "gpu": {"enabled": True, "type": "nvidia-tesla-t4", "count": 1},
            }
    groups: list[list[tuple[str, Any] | Comment]] = [
        [("prefix", lay.cluster), ("project_id", lay.account)],
        [("zone", lay.gcp_zone), ("region", lay.region)],
        [
            Comment("Budget alerts to support@2i2c.org when 2i2c pays the bill and passes it on."),
            ("budget_alert_enabled", paid),
            ("billing_account_id", GCP_BILLING_ACCOUNT if paid else ""),
        ],
        [("core_node_machine_type", GCP_CORE), ("enable_network_policy", True)],
        [("notebook_nodes", notebook)],
    ]
    if lay.dask:
        groups.append(
            [("dask_nodes", Map({GCP_DASK: {"min": 0, "max": 200, "machine_type": GCP_DASK}}))]
        )
    groups.append(
        [
            Comment(
                "Homes are on per-hub disks served by jupyterhub-home-nfs: no Filestore (the\n"
                "module's default would create a 1 TiB one, about 200 USD a month)."
            ),
            ("filestores", {}),
            ("persistent_disks", Map((hub.name, _disk(hub.name, 10)) for hub in lay.home_hubs)),
        ]
    )
    if lay.image_building or lay.config.hubs.binder.enabled:
        groups.append([("container_repos", [GCP_IMAGE_REPO])])
    return hcl(*groups)


def azure_tfvars(lay: Layout, ssh_public_key: str) -> str:
    config = lay.config
    estimate = config.contract.cloud_cost_estimate_usd_month
    paid = config.cloud.billing is Billing.PROVIDER
    pools: dict[str, list[dict[str, Any]]] = {"core": [], "user": [], "dask": []}
    for pool in node_pools(lay):
        kind = {"core": "core", "dask": "dask"}.get(pool.purpose, "user")
        entry: dict[str, Any] = {"name": pool.name, "vm_size": pool.instance_type}
        if pool.purpose == "core":
            entry["os_disk_size_gb"] = 40
        pools[kind].append(entry | {"min": pool.min, "max": pool.max})
    return hcl(
        [
            ("tenant_id", config.cloud.tenant_id),
            ("subscription_id", lay.account),
            ("resourcegroup_name", lay.azure_resource_group),
            ("location", lay.region),
            ("global_storage_account_name", lay.azure_storage_account),
            # The share grows on demand; 100 GB is the smallest Azure allows.
            ("storage_size", 100),
            ("ssh_pub_key", ssh_public_key),
        ],
        [
            Comment("`az aks get-versions --location <location>` lists the newer ones."),
            ("kubernetes_version", AKS_VERSION),
        ],
        [
            Comment("Forecast alert at the estimated monthly cost + 20%, when 2i2c pays the bill."),
            ("budget_alert_enabled", paid and estimate is not None),
            ("budget_alert_amount", str(round(estimate * 1.2)) if paid and estimate else None),
        ],
        [("node_pools", pools)],
    )


def openstack_tfvars(lay: Layout) -> str:
    notebook = Map(
        (pool.name, {"min": pool.min, "max": pool.max, "machine_type": pool.instance_type})
        for pool in node_pools(lay)
        if pool.purpose in ("notebook", "gpu")
    )
    disks = Map(
        (hub.name, _disk(hub.name, 10, tags=Map({"2i2c:hub-name": hub.name})))
        for hub in lay.home_hubs
    )
    return hcl(
        [
            Comment(f"Jetstream2 allocation {lay.account}, region {lay.region}."),
            ("prefix", lay.cluster),
        ],
        [
            Comment("`openstack image list` shows newer Kubernetes images."),
            ("image", JETSTREAM2_IMAGE),
            ("capi_helm_chart_version", JETSTREAM2_CAPI_CHART),
        ],
        [("notebook_nodes", notebook)],
        [("persistent_disks", disks)],
    )


def eksctl_jsonnet(lay: Layout) -> str:
    """``eksctl/<cluster>.jsonnet``: ``jsonnet`` renders it to the eksctl cluster config."""

    def strings(items: tuple[str, ...] | list[str], indent: str) -> str:
        return "".join(f"{indent}'{item}',\n" for item in items)

    gpu = (
        f"[\n    {{\n      instanceType: '{lay.gpu.instance_type}',\n    }},\n  ]"
        if lay.gpu
        else "[]"
    )
    return (
        "local cluster = import './libsonnet/cluster.jsonnet';\n"
        "\n"
        "local c = cluster.makeCluster(\n"
        f"  name='{lay.cluster}',\n"
        f"  region='{lay.region}',\n"
        f"  nodeAz='{lay.region}a',\n"
        f"  version='{EKS_VERSION}',\n"
        f"  coreNodeInstanceType='{AWS_CORE}',\n"
        "  notebookCPUInstanceTypes=[\n"
        f"{strings(AWS_NOTEBOOK, '    ')}"
        "  ],\n"
        "  daskInstanceTypes=[\n"
        "    [\n"
        "      // Allow for a range of spot instance types\n"
        f"{strings(AWS_DASK, '      ')}"
        "    ],\n"
        "  ],\n"
        "  hubs=[\n"
        f"{strings([h.name for h in lay.hubs], '    ')}"
        "  ],\n"
        f"  notebookGPUNodeGroups={gpu},\n"
        "  nodeGroupGenerations=['a']\n"
        ");\n"
        "\n"
        "c\n"
    )


def iac_files(lay: Layout, ssh_public_key: str = "") -> dict[str, str]:
    if lay.provider is CloudProvider.AZURE:
        text = azure_tfvars(lay, ssh_public_key)
    else:
        tfvars = {
            CloudProvider.AWS: aws_tfvars,
            CloudProvider.GCP: gcp_tfvars,
            CloudProvider.JETSTREAM2: openstack_tfvars,
        }[lay.provider]
        text = tfvars(lay)
    files = {lay.tfvars_path: text}
    if lay.eksctl_path:
        files[lay.eksctl_path] = eksctl_jsonnet(lay)
    return files
