"""The tooling pod's script, run against stand-ins for its command-line tools, and the NFS
Service it reserves, compared with what the hub's chart renders through the real helm.

No cluster is needed for either: what these cannot show (Helm adopting the Service on a real
API server, which keeps its address) is stated in the README.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from engagements.infra import write_change
from engagements.infra.apply import NFS_SERVICE, provisioning_script, reserved_nfs_service
from engagements.infra.layout import Layout
from engagements.infra.outputs import check_outputs, disk_name, outputs_from_terraform
from engagements.infra.reference import Workspace, check_checkout

from .conftest import CHECKOUT, on, render_steps

NFS_IPS = {"staging": "10.100.41.7", "prod": "10.100.203.19", "workshop": "10.100.7.250"}
STUBS = {
    # Each tool logs its command line (with the kubeconfig it would use) and does its part.
    "git": 'for last; do :; done; mkdir -p "$last"; cp -R "$REPO_TREE/." "$last"',
    "jsonnet": "echo 'apiVersion: eksctl.io/v1alpha5'",
    "eksctl": '[ "$1" != get ]',  # the cluster does not exist yet: create it
    "aws": "true",
    "openstack": 'for a; do [ "$prev" = --dir ] && dir=$a; prev=$a; done; echo k > "$dir/config"',
    "terraform": '[ "$1" != output ] || cat "$TF_OUTPUTS"',
    "kubectl": """case "$*" in
  "create namespace "*) printf 'apiVersion: v1\\nkind: Namespace\\nmetadata:\\n  name: %s\\n' "$3";;
  "apply -f -") cat >> "$APPLIED"; echo --- >> "$APPLIED";;
  "-n "*" get svc "*) eval "printf %s \\"\\$IP_$2\\"";;
esac""",
}


def terraform_outputs(lay: Layout) -> dict[str, Any]:
    """``terraform output -json`` of the applied cluster, as terraform writes it."""
    if lay.provider.value == "aws":
        ids = {disk_name(lay, h): f"vol-0a{i:015x}" for i, h in enumerate(lay.home_hubs, 1)}
        return {"ebs_volume_id_map": {"sensitive": False, "type": ["map", "string"], "value": ids}}
    ids = {
        disk_name(lay, h): f"5b7c{i:04x}-0000-4000-8000-{i:012x}"
        for i, h in enumerate(lay.home_hubs, 1)
    }
    return {"persistent_disk_id_map": {"sensitive": False, "type": ["map", "string"], "value": ids}}


def run_script(tmp_path: Path, config) -> tuple[dict[str, Any], list[str], list[dict[str, Any]]]:
    """Run the pod's script; return its XCom, the commands it ran and what it applied."""
    cluster, _ = render_steps(config)
    lay = Layout(config)
    tree, bin_dir = tmp_path / "upstream", tmp_path / "bin"
    write_change(cluster, tree)
    bin_dir.mkdir()
    for tool, body in STUBS.items():
        path = bin_dir / tool
        path.write_text(f'#!/bin/sh\necho "{tool}[${{KUBECONFIG:-}}] $*" >> "$CALLS"\n{body}\n')
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "outputs.json").write_text(json.dumps(terraform_outputs(lay)))
    xcom = tmp_path / "xcom" / "return.json"
    script = provisioning_script(
        cluster.plan, clone_dir=str(tmp_path / "clone"), xcom_file=str(xcom)
    )
    env = {
        "PATH": f"{bin_dir}{os.pathsep}/usr/bin:/bin",
        "INFRA_REF": "main",
        "INFRA_REPO": "2i2c-org/infrastructure",
        "REPO_TREE": str(tree),
        "CALLS": str(tmp_path / "calls.log"),
        "APPLIED": str(tmp_path / "applied.yaml"),
        "TF_OUTPUTS": str(tmp_path / "outputs.json"),
        **{f"IP_{hub}": ip for hub, ip in NFS_IPS.items()},
    }
    result = subprocess.run(
        ["/bin/sh", "-c", script], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "calls.log").read_text().splitlines()
    applied_path = tmp_path / "applied.yaml"
    applied = list(yaml.safe_load_all(applied_path.read_text())) if applied_path.exists() else []
    return json.loads(xcom.read_text()), calls, [d for d in applied if d]


@pytest.mark.parametrize("provider", ["aws", "jetstream2"])
def test_the_pod_reports_the_outputs_and_the_reserved_nfs_addresses(example, tmp_path, provider):
    config = on(example, provider)
    lay = Layout(config)
    xcom, calls, applied = run_script(tmp_path, config)

    assert xcom["terraform"] == terraform_outputs(lay)
    assert xcom["nfs_server_ip"] == NFS_IPS  # the binder hub has no home
    outputs = outputs_from_terraform(lay, xcom["terraform"], xcom["nfs_server_ip"])
    assert check_outputs(lay, outputs) == []
    assert outputs["nfs_server_ip"] == NFS_IPS

    services = [d for d in applied if d["kind"] == "Service"]
    assert services == [reserved_nfs_service(hub) for hub in NFS_IPS]
    namespaces = [d["metadata"]["name"] for d in applied if d["kind"] == "Namespace"]
    assert namespaces == list(NFS_IPS)
    # Applied first, then the outputs; kubectl reaches the new cluster.
    tf = next(i for i, c in enumerate(calls) if c.startswith("terraform[") and " apply " in c)
    first_kubectl = next(i for i, c in enumerate(calls) if c.startswith("kubectl["))
    assert tf < first_kubectl
    if provider == "aws":
        assert "eksctl[] create cluster --config-file=eksctl/openscience.eksctl.yaml" in calls
        assert "aws[] eks update-kubeconfig --name openscience --region us-west-2" in calls
    else:
        assert any(
            c.startswith("openstack[] coe cluster config openscience-cluster") for c in calls
        )
        assert calls[first_kubectl].startswith(f"kubectl[{tmp_path / 'clone'}/.kube/config] ")


def test_gcp_needs_no_address_and_reaches_no_cluster(example, tmp_path):
    xcom, calls, applied = run_script(tmp_path, on(example, "gcp"))
    assert xcom["nfs_server_ip"] == {}
    assert set(xcom["terraform"]) == {"persistent_disk_id_map"}
    assert not [c for c in calls if c.startswith("kubectl[")]
    assert applied == []


def test_the_script_applies_the_plans_iac_files_and_is_safe_to_repeat(example):
    cluster, _ = render_steps(example)
    aws = provisioning_script(cluster.plan)
    assert "jsonnet eksctl/openscience.jsonnet > eksctl/openscience.eksctl.yaml" in aws
    assert (
        "eksctl get cluster --name openscience --region us-west-2 >/dev/null 2>&1 "
        "|| eksctl create cluster --config-file=eksctl/openscience.eksctl.yaml"
    ) in aws
    assert "terraform workspace select -or-create openscience" in aws
    assert "-auto-approve -var-file=projects/openscience.tfvars" in aws
    assert aws.index("eksctl create") < aws.index("terraform apply")
    assert "> /airflow/xcom/return.json" in aws
    gcp = provisioning_script(render_steps(on(example, "gcp"))[0].plan)
    assert "eksctl" not in gcp
    assert "(cd terraform/gcp && terraform init" in gcp


HELM_TEMPLATE = """
import subprocess, sys
from pathlib import Path
from deployer.infra_components.cluster import Cluster

cluster = Cluster.from_name(sys.argv[1])
hub = next(h for h in cluster.hubs if h.spec["name"] == sys.argv[2])
chart = Path(sys.argv[3])
with hub.render_jsonnet(chart / "values.jsonnet") as values:
    cmd = ["helm", "template", sys.argv[2], str(chart), "--namespace=" + sys.argv[2],
           "--values", str(values)]
    cmd += ["--values=%s" % (cluster.config_dir / f)
            for f in hub.spec["helm_chart_values_files"] if "secret" not in f]
    manifests = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
Path(sys.argv[4]).write_text(manifests)
"""


def helm_template(config, tools, hubs: list[str], outputs) -> dict[str, list[dict[str, Any]]]:
    """Each hub's manifests as ``deployer deploy`` installs it: release and namespace the hub's
    name, values.jsonnet rendered by the deployer, then every values file that is not secret;
    the hubs' change written with ``outputs``."""
    cluster, hubs_change = render_steps(config, outputs)
    rendered = {}
    with tempfile.TemporaryDirectory(prefix="infra-apply-") as tmp:
        ws = Workspace(check_checkout(CHECKOUT), tools, Path(tmp))
        ws.write(cluster)
        ws.write(hubs_change)
        for hub in hubs:
            chart = str(ws.root / "helm-charts" / "basehub")
            out = ws.root / f"{hub}.yaml"
            result = ws.run(
                str(tools.python), "-c", HELM_TEMPLATE, "openscience", hub, chart, str(out)
            )
            assert result.returncode == 0, result.stderr[-2000:]
            rendered[hub] = [d for d in yaml.safe_load_all(out.read_text()) if d]
    return rendered


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]


@pytest.mark.parametrize(
    ("provider", "hubs"), [("aws", ["staging", "prod"]), ("jetstream2", ["staging"])]
)
def test_the_reserved_service_is_the_one_the_hub_chart_adopts(example, tools, provider, hubs):
    config = on(example, provider)
    lay = Layout(config)
    outputs = outputs_from_terraform(lay, terraform_outputs(lay), NFS_IPS)
    rendered = helm_template(config, tools, hubs, outputs)
    for hub in hubs:
        reserved = reserved_nfs_service(hub)
        (chart,) = find(rendered[hub], "Service", NFS_SERVICE)
        # Helm adopts an object whose ownership metadata names this release and namespace.
        labels = chart["metadata"]["labels"]
        assert (
            labels["app.kubernetes.io/managed-by"]
            == reserved["metadata"]["labels"]["app.kubernetes.io/managed-by"]
        )
        annotations = reserved["metadata"]["annotations"]
        assert labels["app.kubernetes.io/instance"] == annotations["meta.helm.sh/release-name"]
        assert annotations["meta.helm.sh/release-namespace"] == reserved["metadata"]["namespace"]
        assert chart["metadata"].get("namespace", hub) == hub
        # Adopting changes nothing that routes traffic, and leaves the address alone.
        assert chart["spec"] == reserved["spec"]
        assert "clusterIP" not in chart["spec"]
        # The hub mounts its homes at the reserved address, from its own disk.
        mounts = [pv["spec"]["nfs"]["server"] for pv in find(rendered[hub], "PersistentVolume")
                  if "nfs" in pv["spec"]]  # fmt: skip
        assert mounts == [NFS_IPS[hub]]
        disks = [pv["spec"]["csi"]["volumeHandle"] for pv in find(rendered[hub], "PersistentVolume")
                 if "csi" in pv["spec"]]  # fmt: skip
        volume = outputs["ebs_volume_id_map" if provider == "aws" else "persistent_disk_id_map"]
        assert disks == [volume[hub]]
