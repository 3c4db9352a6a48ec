"""The tooling pod's script: apply a merged cluster change and report what the hubs need.

Pure text, no Airflow. The script applies the IaC inputs as the runbook does (eksctl only if
the cluster is absent, then terraform), then reports what the hubs' change is written with:
``terraform output -json`` and, where hubs mount their homes by the NFS server's address (AWS
and Jetstream2 nodes cannot resolve cluster DNS names), the address of each hub's NFS server.

That address exists only once the server's Service does, and the Service comes with the hub's
chart, which needs the address in its values. So the script creates the Service first
(:func:`reserved_nfs_service`), exactly as jupyterhub-home-nfs templates it, with the
ownership metadata Helm adopts an existing object by; on the hub's first deploy Helm takes it
over, and Kubernetes keeps a Service's cluster IP when an update leaves it out.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

CLONE_DIR = "/tmp/infrastructure"
XCOM_FILE = "/airflow/xcom/return.json"
NFS_SERVICE = "storage-quota-home-nfs"
"""basehub names jupyterhub-home-nfs ``storage-quota`` (fullnameOverride); its server's Service
is ``<fullname>-home-nfs``."""
NFS_HOME_PROVIDERS = ("aws", "jetstream2")
"""Providers whose hub values name the NFS server by address (``nfs.pv.serverIP``)."""


def reserved_nfs_service(hub: str) -> dict[str, Any]:
    """The Service of ``hub``'s NFS server, ready for Helm to adopt.

    ``deployer deploy`` installs a hub as release ``<hub>`` in namespace ``<hub>``: those are
    the release and namespace Helm checks in the annotations before adopting the object.
    """
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": NFS_SERVICE,
            "namespace": hub,
            "labels": {"app.kubernetes.io/managed-by": "Helm"},
            "annotations": {
                "meta.helm.sh/release-name": hub,
                "meta.helm.sh/release-namespace": hub,
            },
        },
        "spec": {
            "type": "ClusterIP",
            "ports": [
                {"name": "nfs", "port": 2049},
                {"name": "mountd", "port": 20048},
                {"name": "rpcbind", "port": 111},
            ],
            "selector": {"app": "nfs-server"},
        },
    }


def nfs_hubs(plan: dict[str, Any]) -> list[str]:
    """The hubs whose NFS server address the script reserves and reports."""
    if plan["provider"] not in NFS_HOME_PROVIDERS:
        return []
    return [hub["name"] for hub in plan.get("hubs", []) if hub.get("role") != "binder"]


def _kubeconfig(plan: dict[str, Any], clone_dir: str) -> list[str]:
    cluster, region = plan["cluster_name"], plan["region"]
    if plan["provider"] == "aws":
        return [f"aws eks update-kubeconfig --name {cluster} --region {region}"]
    # Jetstream2: the kubeconfig of the Magnum cluster terraform created (`<prefix>-cluster`),
    # beside the clone's own config/ folder.
    kube = f"{clone_dir}/.kube"
    return [
        f"mkdir -p {kube}",
        f"openstack coe cluster config {cluster}-cluster --dir {kube} --force",
        f"export KUBECONFIG={kube}/config",
    ]


def provisioning_script(
    plan: dict[str, Any], *, clone_dir: str = CLONE_DIR, xcom_file: str = XCOM_FILE
) -> str:
    """The runbook's IaC steps for the plan, safe to repeat, then the outputs as the pod's XCom.

    The XCom file holds ``{"terraform": <terraform output -json>, "nfs_server_ip": {<hub>:
    <address>}}``; ``clone_dir`` and ``xcom_file`` are where the pod clones the repository and
    where its XCom sidecar reads the result.
    """
    cluster, region = plan["cluster_name"], plan["region"]
    steps = [
        "set -eu",
        f'git clone --depth 1 --branch "$INFRA_REF" "https://github.com/$INFRA_REPO" {clone_dir}',
        f"cd {clone_dir}",
    ]
    tf_dir = ""
    for path in plan["iac_files"]:
        if path.endswith(".jsonnet"):
            config = f"eksctl/{cluster}.eksctl.yaml"
            steps += [
                f"jsonnet {shlex.quote(path)} > {config}",
                f"eksctl get cluster --name {cluster} --region {region} >/dev/null 2>&1 "
                f"|| eksctl create cluster --config-file={config}",
            ]
    for path in plan["iac_files"]:
        if path.endswith(".tfvars"):
            tf_dir, tfvars = path.split("/projects/")
            steps.append(
                f"(cd {tf_dir} && terraform init -input=false "
                f"&& terraform workspace select -or-create {cluster} "
                f"&& terraform apply -input=false -auto-approve -var-file=projects/{tfvars})"
            )
    steps.append(f"(cd {tf_dir} && terraform output -json) > terraform-outputs.json")
    hubs = nfs_hubs(plan)
    if hubs:
        steps += _kubeconfig(plan, clone_dir)
    fields, args = [], []
    for i, hub in enumerate(hubs):
        manifest = json.dumps(reserved_nfs_service(hub), indent=2)
        steps += [
            f"kubectl create namespace {hub} --dry-run=client -o yaml | kubectl apply -f -",
            f"kubectl apply -f - <<'EOF'\n{manifest}\nEOF",
            f"NFS_{i}=$(kubectl -n {hub} get svc {NFS_SERVICE} -o jsonpath='{{.spec.clusterIP}}')",
        ]
        fields.append(f'"{hub}": "%s"')
        args.append(f' "$NFS_{i}"')
    xcom_dir = xcom_file.rpartition("/")[0]
    steps += [
        f"mkdir -p {xcom_dir}",
        f'printf \'{{"terraform": %s, "nfs_server_ip": {{{", ".join(fields)}}}}}\' '
        f'"$(cat terraform-outputs.json)"{"".join(args)} > {xcom_file}',
    ]
    return "\n".join(steps)
