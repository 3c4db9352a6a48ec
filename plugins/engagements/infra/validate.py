"""Validate a rendered change as the infrastructure repository's own validation sees it.

The repository checks ``cluster.yaml`` against its JSON schema (``deployer validate
cluster-config``) and renders each hub chart with helm, which validates the merged values:
chart defaults, then what ``values.jsonnet`` injects, then the hub's non-secret values files
in ``cluster.yaml`` order (``deployer validate all-hub-config``); support likewise. This
module runs the same merges, with helm's rules (mappings merge, lists and scalars replace, an
empty value deletes a default). With the repository's schemas and chart defaults (a folder
given as ``reference_dir`` or in ``$ENGAGEMENTS_INFRA_REFERENCE_DIR``, holding
``cluster.schema.yaml``, ``basehub_values.schema.yaml``, ``basehub_values.defaults.yaml``,
``support_values.schema.yaml`` and ``support_values.defaults.yaml``) it validates with them.
Without them it can only check the structure it knows (required keys, the chart's top-level
keys, the home-page rule, the deployer's authenticator rules), which :class:`ValidationReport`
says. Either way it also checks that no secret value and no secret file is rendered.

What ``values.jsonnet`` injects is modelled for the keys the schema constrains (ingress and
TLS, the OAuth callback, the user service account, NFS and home quota, node selectors), not
its usage-quota service wiring or resource requests.
"""

from __future__ import annotations

import copy
import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft7Validator

from .reference import ReferenceError
from .render import RenderedChange

REFERENCE_ENV = "ENGAGEMENTS_INFRA_REFERENCE_DIR"
SECRET_KEYS = frozenset(
    {
        "client_secret",
        "password",
        "user_password",
        "admin_password",
        "apiToken",
        "googleServiceAccountKey",
        "private_key",
    }
)
BASEHUB_KEYS = frozenset(
    {
        "userServiceAccount",
        "nfs",
        "nodePlaceholder",
        "inClusterNFS",
        "global",
        "dask-gateway",
        "jupyterhub-home-nfs",
        "jupyterhub-groups-exporter",
        "binderhub-service",
        "jupyterhub",
    }
)
SUPPORT_KEYS = frozenset(
    {
        "cluster-autoscaler",
        "nginx-ingress",
        "prometheus",
        "grafana",
        "jupyterhub-cost-monitoring",
        "cryptnono",
        "global",
        "reflector",
        "fluent-bit",
        "copyfail",
        "dirtyfrag",
        "clusterEntrypoint",
        "nvidiaDevicePlugin",
        "calico",
        "disableCoredumps",
        "prometheusAuthSecret",
        "prometheusStorageClass",
    }
)
AUTHENTICATORS = frozenset({"github", "cilogon", "generic-oauth", "shared-password", "null", "tmp"})
AWS_NFS_MOUNT_OPTIONS = [
    "rsize=1048576",
    "wsize=1048576",
    "timeo=600",
    "soft",
    "retrans=2",
    "noresvport",
]


@dataclass(frozen=True)
class Reference:
    """The repository's schemas and chart defaults."""

    directory: Path
    cluster_schema: dict[str, Any]
    basehub_schema: dict[str, Any]
    basehub_defaults: dict[str, Any]
    support_schema: dict[str, Any]
    support_defaults: dict[str, Any]


REFERENCE_FILES = {
    "cluster_schema": "cluster.schema.yaml",
    "basehub_schema": "basehub_values.schema.yaml",
    "basehub_defaults": "basehub_values.defaults.yaml",
    "support_schema": "support_values.schema.yaml",
    "support_defaults": "support_values.defaults.yaml",
}


def _load(text: str) -> Any:
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def load_reference(directory: str | Path | None = None) -> Reference | None:
    """The schemas from ``directory`` or ``$ENGAGEMENTS_INFRA_REFERENCE_DIR``; None if neither.

    A folder that lacks any of the files is a :class:`ReferenceError` naming them: a reviewer
    must never believe a change was checked against schemas it was not.
    """
    directory = directory or os.environ.get(REFERENCE_ENV)
    return _read_reference(str(Path(directory).resolve())) if directory else None


@functools.cache
def _read_reference(folder: str) -> Reference:
    """Read once per process: the files are large and never change while it runs."""
    paths = {key: Path(folder) / name for key, name in REFERENCE_FILES.items()}
    missing = [path.name for path in paths.values() if not path.is_file()]
    if missing:
        raise ReferenceError(
            f"{folder}: neither a checkout of the infrastructure repository nor a folder of its "
            f"schemas; missing {', '.join(missing)}"
        )
    loaded = {key: _load(path.read_text(encoding="utf-8")) for key, path in paths.items()}
    return Reference(directory=Path(folder), **loaded)


@dataclass(frozen=True)
class ValidationReport:
    problems: tuple[tuple[str, str], ...]
    """(where, reason): a file, ``hub <name>`` or ``support`` for merged values."""
    schemas: Path | None
    """The folder the schemas came from; None when only structural checks ran."""

    @property
    def ok(self) -> bool:
        return not self.problems


def helm_merge(base: Any, overlay: Any) -> Any:
    """Helm's merge of values: mappings merge, anything else replaces, None deletes."""
    if not isinstance(base, dict) or not isinstance(overlay, dict):
        return copy.deepcopy(overlay)
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if value is None:
            merged.pop(key, None)
        elif key in merged:
            merged[key] = helm_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _account(cluster: dict[str, Any]) -> str | None:
    if cluster.get("provider") == "aws":
        return str(cluster["aws"]["account"])
    if cluster.get("provider") == "gcp":
        return cluster["gcp"]["project"]
    return None


def injected_hub_values(cluster: dict[str, Any], hub: dict[str, Any]) -> dict[str, Any]:
    """What ``helm-charts/basehub/values.jsonnet`` gives this hub (see the module docstring)."""
    provider, name, domain = cluster["provider"], hub["name"], hub["domain"]
    cluster_name = cluster["aws"]["clusterName"] if provider == "aws" else cluster["name"]
    account = _account(cluster)
    pv: dict[str, Any] = {}
    if provider == "gcp":
        pv = {
            "serverIP": f"storage-quota-home-nfs.{name}.svc.cluster.local",
            "mountOptions": ["soft", "noatime"],
        }
    elif provider == "aws":
        pv = {"mountOptions": list(AWS_NFS_MOUNT_OPTIONS)}
    nfs: dict[str, Any] = {
        "dirsizeReporter": {"reportTotalSize": provider == "kubeconfig"},
        "volumeReporter": {"enabled": provider == "kubeconfig"},
    }
    if pv:
        nfs["pv"] = pv
    jupyterhub: dict[str, Any] = {
        "ingress": {
            "hosts": [domain],
            "tls": [{"hosts": [domain], "secretName": "https-auto-tls"}],
        },
        "hub": {
            "services": {
                "binder": {"oauth_redirect_uri": f"https://{domain}/services/binder/oauth_callback"}
            },
            "config": {
                "OAuthenticator": {"oauth_callback_url": f"https://{domain}/hub/oauth_callback"}
            },
        },
    }
    user_nodes: dict[str, str] = {}
    annotations: dict[str, str] = {}
    if provider == "aws":
        user_nodes = {"2i2c/hub-name": name, "node.kubernetes.io/instance-type": "r5.xlarge"}
        annotations = {
            "eks.amazonaws.com/role-arn": f"arn:aws:iam::{account}:role/{cluster_name}-{name}"
        }
    elif provider == "gcp":
        user_nodes = {"node.kubernetes.io/instance-type": "n2-highmem-4"}
        service_account = f"{cluster_name}-{name}@{account}.iam.gserviceaccount.com"
        annotations = {"iam.gke.io/gcp-service-account": service_account}
    if user_nodes:
        jupyterhub["singleuser"] = {"nodeSelector": user_nodes}
    builder = {"dockerApi": {"nodeSelector": dict(user_nodes)}} if user_nodes else {}
    return {
        "nfs": nfs,
        "jupyterhub-home-nfs": {
            "eks": {"enabled": provider == "aws"},
            "gke": {"enabled": provider == "gcp"},
            "quotaEnforcer": {
                "config": {
                    "QuotaManager": {
                        "paths": [f"/export/{name}"],
                        "hard_quota": 1 if "staging" in name else 10,
                    }
                }
            },
        },
        "jupyterhub": jupyterhub,
        "userServiceAccount": {"enabled": True, "annotations": annotations},
        "binderhub-service": builder
        | {
            "extraEnv": [
                {
                    "name": "JUPYTERHUB_API_URL",
                    "value": f"http://hub.{name}.svc.cluster.local:8081/hub/api",
                }
            ]
        },
        "nodePlaceholder": {"nodeSelector": {"2i2c/hub-name": name}},
    }


def _aws_role(account: str | None, role: str) -> str:
    return f"arn:aws:iam::{account}:role/{role}"


def injected_support_values(cluster: dict[str, Any]) -> dict[str, Any]:
    """What ``helm-charts/support/values.jsonnet`` gives the support chart (its top level)."""
    provider, account = cluster["provider"], _account(cluster)
    grafana_sa: dict[str, str] = {}
    if provider == "aws":
        grafana_sa = {
            "eks.amazonaws.com/role-arn": _aws_role(account, "jupyterhub_grafana_cloudwatch")
        }
    elif provider == "gcp":
        grafana_sa = {
            "iam.gke.io/gcp-service-account": f"grafana-2i2c-sa@{account}.iam.gserviceaccount.com"
        }
    cost = (
        {
            "enabled": True,
            "extraEnv": [{"name": "CLUSTER_NAME", "value": cluster["name"]}],
            "serviceAccount": {
                "annotations": {
                    "eks.amazonaws.com/role-arn": _aws_role(
                        account, "jupyterhub_cost_monitoring_iam_role"
                    )
                }
            },
        }
        if provider == "aws"
        else {"enabled": False}
    )
    return {
        "grafana": {"serviceAccount": {"annotations": grafana_sa}},
        "prometheus": {"alertmanager": {"enabled": True}},
        "jupyterhub-cost-monitoring": cost,
    }


def _cluster_file(change: RenderedChange) -> tuple[str, dict[str, Any]]:
    paths = [p for p in change.files if re.fullmatch(r"config/clusters/[^/]+/cluster\.yaml", p)]
    if len(paths) != 1:
        raise ValueError(f"expected one config/clusters/<name>/cluster.yaml, found {len(paths)}")
    return paths[0], _load(change.files[paths[0]])


def _merge(
    change: RenderedChange, files: list[str], injected: dict[str, Any], defaults: Any
) -> dict[str, Any]:
    """Chart defaults, then values.jsonnet, then the listed non-secret files, as helm merges."""
    folder = _cluster_file(change)[0].rsplit("/", 1)[0]
    merged = helm_merge(defaults or {}, injected)
    for name in files:
        # The deployer validates without secrets: encrypted files are skipped.
        if "secret" not in name and f"{folder}/{name}" in change.files:
            merged = helm_merge(merged, _load(change.files[f"{folder}/{name}"]) or {})
    return merged


def merged_hub_values(
    change: RenderedChange, hub_name: str, reference: Reference | None = None
) -> dict[str, Any]:
    """A hub's values as helm sees them; without ``reference``, no chart defaults."""
    _, cluster = _cluster_file(change)
    hub = next(h for h in cluster.get("hubs", []) if h.get("name") == hub_name)
    defaults = reference.basehub_defaults if reference else None
    injected = injected_hub_values(cluster, hub)
    return _merge(change, hub.get("helm_chart_values_files", []), injected, defaults)


def merged_support_values(
    change: RenderedChange, reference: Reference | None = None
) -> dict[str, Any]:
    """The support chart's values as helm sees them; without ``reference``, no defaults."""
    _, cluster = _cluster_file(change)
    files = cluster.get("support", {}).get("helm_chart_values_files", [])
    defaults = reference.support_defaults if reference else None
    return _merge(change, files, injected_support_values(cluster), defaults)


def _schema_problems(
    where: str, instance: Any, schema: dict[str, Any], prefix: str = ""
) -> list[tuple[str, str]]:
    """jsonschema's errors, each with the key path it is about (under ``prefix``)."""
    problems = []
    for error in sorted(
        Draft7Validator(schema).iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))
    ):
        key = ".".join([prefix] * bool(prefix) + [str(p) for p in error.absolute_path])
        message = error.message if len(error.message) <= 300 else error.message[:297] + "..."
        problems.append((where, f"{key or '(top level)'}: {message}"))
    return problems


def _cluster_structure(
    path: str, cluster: dict[str, Any], change: RenderedChange
) -> list[tuple[str, str]]:
    """What the deployer needs of cluster.yaml, and every listed non-secret file present."""
    problems = []
    folder = path.rsplit("/", 1)[0]
    for key in ("name", "provider", "metadata"):
        if key not in cluster:
            problems.append((path, f"{key}: required"))
    if cluster.get("name") != folder.rsplit("/", 1)[1]:
        problems.append((path, "name: must match the folder name"))
    deal = cluster.get("metadata", {}).get("2i2c", {}).get("hubspot_deal_id")
    if not isinstance(deal, int) or isinstance(deal, bool):
        problems.append((path, "metadata.2i2c.hubspot_deal_id: must be an integer"))
    provider = cluster.get("provider")
    if provider not in ("aws", "gcp", "azure", "kubeconfig"):
        problems.append((path, f"provider: {provider!r} is not one of aws, gcp, azure, kubeconfig"))
    elif provider not in cluster:
        problems.append((path, f"{provider}: the provider's connection block is missing"))
    listed = list(cluster.get("support", {}).get("helm_chart_values_files", []))
    for i, hub in enumerate(cluster.get("hubs", [])):
        for key in ("name", "domain", "helm_chart", "helm_chart_values_files"):
            if key not in hub:
                problems.append((path, f"hubs[{i}].{key}: required"))
        if hub.get("helm_chart") not in ("basehub", "daskhub"):
            problems.append((path, f"hubs[{i}].helm_chart: must be basehub or daskhub"))
        listed += hub.get("helm_chart_values_files", [])
    for name in listed:
        if "secret" not in name and f"{folder}/{name}" not in change.files:
            problems.append((path, f"lists {name}, which the change does not contain"))
    return problems


def _hub_structure(
    where: str, hub: dict[str, Any], values: dict[str, Any]
) -> list[tuple[str, str]]:
    """The chart's top-level keys, the home-page rule and the deployer's authenticator rules."""
    problems = [
        (where, f"{key}: not a key of the basehub chart")
        for key in sorted(set(values) - BASEHUB_KEYS)
    ]
    jupyterhub = values.get("jupyterhub", {})
    if hub["domain"] not in jupyterhub.get("ingress", {}).get("hosts", []):
        problems.append((where, f"jupyterhub.ingress.hosts: {hub['domain']} missing"))
    template = jupyterhub.get("custom", {}).get("homepage", {}).get("templateVars", {})
    if template.get("enabled", True):
        full = all(k in template for k in ("org", "designed_by", "operated_by", "funded_by"))
        if full == ("redirect_to" in template):
            problems.append(
                (
                    where,
                    "jupyterhub.custom.homepage.templateVars: give either redirect_to or all of "
                    "org, designed_by, operated_by, funded_by",
                )
            )
    config = jupyterhub.get("hub", {}).get("config", {})
    authenticator = config.get("JupyterHub", {}).get("authenticator_class")
    if authenticator not in AUTHENTICATORS:
        problems.append(
            (
                where,
                f"jupyterhub.hub.config.JupyterHub.authenticator_class: {authenticator!r} "
                "is not one the chart supports",
            )
        )
    if (
        authenticator == "github"
        and config.get("Authenticator", {}).get("allowed_users")
        and config.get("GitHubOAuthenticator", {}).get("allowed_organizations")
    ):
        problems.append(
            (
                where,
                "Authenticator.allowed_users must not be set together with "
                "GitHubOAuthenticator.allowed_organizations",
            )
        )
    return problems


def _secret_problems(path: str, node: Any, key_path: str = "") -> list[tuple[str, str]]:
    """Keys that hold secrets, set to a value, anywhere in a rendered file."""
    if isinstance(node, dict):
        problems = []
        for key, value in node.items():
            here = f"{key_path}.{key}" if key_path else str(key)
            if key in SECRET_KEYS and value not in (None, ""):
                problems.append((path, f"{here}: a secret value must only be in an encrypted file"))
            problems += _secret_problems(path, value, here)
        return problems
    if isinstance(node, list):
        return [
            p
            for i, item in enumerate(node)
            for p in _secret_problems(path, item, f"{key_path}[{i}]")
        ]
    return []


def validate_change(
    change: RenderedChange, reference_dir: str | Path | None = None
) -> ValidationReport:
    """Check the change; with the repository's schemas, exactly as its CI validation merges."""
    reference = load_reference(reference_dir)
    path, cluster = _cluster_file(change)
    problems = _cluster_structure(path, cluster, change)
    for file, text in change.files.items():
        if "secret" in Path(file).name:
            problems.append((file, "a secret file must be added encrypted, never rendered"))
        elif file.endswith((".yaml", ".yml")):
            problems += _secret_problems(file, _load(text))
    if reference:
        problems += _schema_problems(path, cluster, reference.cluster_schema)
        # The schema's hubs.items is a one-element list (tuple validation): only the first hub
        # is checked there. Check every hub against that entry.
        hub_schema = reference.cluster_schema["properties"]["hubs"]["items"][0]
        for i, hub in enumerate(cluster.get("hubs", [])[1:], start=1):
            problems += _schema_problems(path, hub, hub_schema, prefix=f"hubs[{i}]")
    for hub in cluster.get("hubs", []):
        if not {"name", "domain"} <= hub.keys():
            continue  # reported above; nothing to merge for
        where = f"hub {hub['name']}"
        values = merged_hub_values(change, hub["name"], reference)
        problems += _hub_structure(where, hub, values)
        if reference:
            problems += _schema_problems(where, values, reference.basehub_schema)
    support = merged_support_values(change, reference)
    problems += [
        ("support", f"{key}: not a key of the support chart")
        for key in sorted(set(support) - SUPPORT_KEYS)
    ]
    if reference:
        problems += _schema_problems("support", support, reference.support_schema)
    return ValidationReport(tuple(problems), reference.directory if reference else None)
