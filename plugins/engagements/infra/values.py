"""Helm values for the support chart and each hub, as mappings in the repository's key order.

Only what differs from the chart defaults and from what the repository's ``values.jsonnet``
injects is written (FACTS.md section 2): ingress hosts and TLS, the OAuth callback URL, the
user service account, the staging hub's 1 GiB quota and the provider's node selectors come
from the deployer at deploy time. The shared directories (``/home/jovyan/shared``, read-only
for users, written by admins through ``shared-readwrite``) are chart defaults too.
"""

from __future__ import annotations

from typing import Any

from engagements.config import IMAGE_LABELS, CloudProvider, HubAuth, Image

from .layout import (
    DEFAULT_SPLASH,
    GOOGLE_IDP,
    STAFF_ID_TYPE,
    Hub,
    Layout,
    NodeType,
)
from .outputs import lookup

IMAGES: dict[Image, tuple[str, str, dict[str, str]]] = {
    # Jupyter Docker Stacks tag every image of a build with the same date, so datascience
    # shares scipy's newest tag seen in the repository.
    Image.SCIPY: (
        "quay.io/jupyter/scipy-notebook:2026-07-28",
        "Python with the scientific Python stack",
        {},
    ),
    Image.DATASCIENCE: (
        "quay.io/jupyter/datascience-notebook:2026-07-28",
        "Python, R and Julia with common data science libraries",
        {},
    ),
    Image.PANGEO: (
        "pangeo/pangeo-notebook:2026.06.04",
        "Python image with scientific, dask and geospatial tools",
        {},
    ),
    Image.ROCKER: (
        "rocker/binder:4.4",
        "R image with RStudio, the tidyverse and geospatial tools",
        # RStudio's home is /home/rstudio; without working_dir the server starts elsewhere.
        {"image_pull_policy": "Always", "default_url": "/rstudio", "working_dir": "/home/rstudio"},
    ),
}
GPU_IMAGES: dict[str, tuple[str, str]] = {
    "pytorch": ("Pangeo PyTorch ML Notebook", "pangeo/pytorch-notebook:2026.06.04"),
    "tensorflow": ("Pangeo Tensorflow ML Notebook", "pangeo/ml-notebook:2026.06.04"),
}
UNLISTED_CHOICE: dict[str, Any] = {
    "enabled": True,
    "display_name": "Custom image",
    "validation_regex": "^.+:.+$",
    "validation_message": "Must be a publicly available docker image, of form <image-name>:<tag>",
    "display_name_in_choices": "Specify an existing docker image",
    "description_in_choices": "Use a pre-existing docker image from a public docker registry "
    "(dockerhub, quay, etc)",
    "kubespawner_override": {"image": "{value}"},
}
JUPYTERLAB_LAUNCHER = """\
import os
import sys

# Without authentication there is no jupyterhub-singleuser; start JupyterLab (or Notebook).
try:
    import jupyterlab  # noqa: F401
    exe = "jupyter-lab"
except ImportError:
    exe = "jupyter-notebook"
os.execvp(exe, [exe, *sys.argv[1:]])
"""
GIB = 1024**3
AZURE_LB = "service.beta.kubernetes.io/azure-load-balancer"
OWNERSHIP_FIX: dict[str, Any] = {
    # Azure Files shares are created owned by root; without jupyterhub-home-nfs nothing hands
    # each home to the notebook user (the repository's Azure hubs carry this container).
    "name": "volume-mount-ownership-fix",
    "image": "busybox:1.36.1",
    "command": ["sh", "-c", "id && chown 1000:1000 /home/jovyan && ls -lhd /home/jovyan"],
    "securityContext": {"runAsUser": 0},
    "volumeMounts": [
        {"name": "home", "mountPath": "/home/jovyan", "subPath": "{escaped_username}"}
    ],
}


def resource_choices(node: NodeType, count: int = 4) -> dict[str, Any]:
    """Memory-proportional choices: each half the previous, the largest a whole node.

    The repository's ``deployer generate resource-allocation choices`` strategy: no memory
    overcommit, a CPU guarantee proportional to the memory, the CPU limit at the node's
    available CPU, and a safety margin of 2% (at most 2 GiB / 1 CPU) of the available capacity.
    """
    mem_total = node.memory - min(node.memory * 0.02, 2 * GIB)
    cpu_total = round(node.cpu - min(node.cpu * 0.02, 1), 9)
    choices: dict[str, Any] = {}
    for i in reversed(range(count)):
        mem = mem_total / 2**i
        cpu = round(mem / mem_total * cpu_total, 9)
        mem_label = f"{mem / GIB:.0f} GB" if mem >= GIB else f"{mem / 1024**2:.0f} MB"
        cpu_label = f"~{cpu:0.1f}" if cpu < 2 else f"~{cpu:0.0f}"
        choices[f"mem_{mem_label.replace(' ', '_').lower()}"] = {
            "display_name": f"~{mem_label} RAM, {cpu_label} CPUs",
            "description": f"~{cpu_total:.0f} CPUs always available"
            if cpu == cpu_total
            else f"Up to ~{cpu_total:.0f} CPUs when available",
            **({"default": True} if not choices else {}),
            "kubespawner_override": {
                "mem_guarantee": int(mem),
                "mem_limit": int(mem),
                "cpu_guarantee": cpu,
                "cpu_limit": cpu_total,
                "node_selector": dict(node.selector),
            },
        }
    return choices


def _image_option(lay: Layout) -> dict[str, Any]:
    images = lay.config.images
    option: dict[str, Any] = {"display_name": "Image"}
    if images.dynamic_image_building:
        option["dynamic_image_building"] = {"enabled": True}
    if images.bring_your_own:
        option["unlisted_choice"] = UNLISTED_CHOICE
    choices = {}
    for image in images.offered:
        ref, description, extra = IMAGES[image]
        choices[image.value] = {
            "display_name": IMAGE_LABELS[image],
            "description": description,
            "slug": image.value,
            **({"default": True} if not choices else {}),
            "kubespawner_override": {"image": ref, **extra},
        }
    option["choices"] = choices
    return option


def profile_list(lay: Layout, *, gpu: bool) -> list[dict[str, Any]]:
    """The fancy-profiles list: image and resources, plus a GPU profile where chosen."""
    profiles: list[dict[str, Any]] = [
        {
            "display_name": "Choose your environment and resources",
            "slug": "only-choice",
            "profile_options": {
                "image": _image_option(lay),
                "resources": {
                    "display_name": "Resource Allocation",
                    "choices": resource_choices(lay.user_node),
                },
            },
        }
    ]
    if gpu and lay.gpu:
        image: dict[str, Any] = {"display_name": "Image"}
        if lay.config.images.bring_your_own:
            image["unlisted_choice"] = UNLISTED_CHOICE
        image["choices"] = {
            key: {
                "display_name": label,
                "slug": key,
                **({"default": True} if key == "pytorch" else {}),
                "kubespawner_override": {"image": ref},
            }
            for key, (label, ref) in GPU_IMAGES.items()
        }
        profiles.append(
            {
                "display_name": lay.gpu.display_name,
                "description": "Start a container on a dedicated node with a GPU",
                "slug": "gpu",
                "profile_options": {"image": image},
                "kubespawner_override": {
                    "environment": {"NVIDIA_DRIVER_CAPABILITIES": "compute,utility"},
                    # Empty removes the chart's 1G default limit, which is below the guarantee.
                    "mem_limit": None,
                    "mem_guarantee": lay.gpu.mem_guarantee,
                    "node_selector": dict(lay.gpu.selector),
                    "extra_resource_limits": {"nvidia.com/gpu": "1"},
                },
            }
        )
    return profiles


def template_vars(lay: Layout) -> dict[str, Any]:
    """The home page: the community's name, logo and site, 2i2c, and the funder."""
    config = lay.config
    funded_by = config.branding.funded_by
    operator = {"name": "2i2c", "url": "https://2i2c.org"}
    return {
        "org": {
            "name": config.name,
            "logo_url": config.branding.logo_url or DEFAULT_SPLASH,
            "url": config.website or f"https://{config.base_domain}",
        },
        "designed_by": dict(operator),
        "operated_by": dict(operator),
        # The schema requires funded_by; the repository writes empty strings when unknown.
        "funded_by": {
            "name": funded_by.name if funded_by else "",
            "url": (funded_by.url or "") if funded_by else "",
        },
    }


def _staff(hub: Hub) -> dict[str, Any]:
    return {
        "add_staff_user_ids_to_admin_users": True,
        "add_staff_user_ids_of_type": STAFF_ID_TYPE[hub.authenticator_class],
    }


def _auth_config(lay: Layout, hub: Hub) -> dict[str, Any]:
    """``hub.config`` for the hub's authenticator; client secrets are follow-ups."""
    config: dict[str, Any] = {"JupyterHub": {"authenticator_class": hub.authenticator_class}}
    admins = lay.admin_users(hub)
    if hub.auth is HubAuth.GITHUB:
        config["GitHubOAuthenticator"] = {"allowed_organizations": list(lay.github_allowed)}
    elif hub.auth in (HubAuth.CILOGON, HubAuth.GOOGLE):
        idp: dict[str, Any] = {"username_derivation": {"username_claim": "email"}}
        if hub.auth is HubAuth.GOOGLE:
            idp["allowed_domains"] = list(lay.representative_domains)
        config["CILogonOAuthenticator"] = {"allowed_idps": {GOOGLE_IDP: idp}}
    elif hub.auth is HubAuth.SHARED_PASSWORD:
        config["Authenticator"] = {"manage_groups": False, "allow_all": True, "admin_users": admins}
        return config
    config["Authenticator"] = {"admin_users": admins}
    return config


def _home_storage(lay: Layout, hub: Hub, outputs: dict[str, Any]) -> dict[str, Any]:
    """The hub's own disk for the in-cluster NFS server, and its quota, from the outputs."""
    values: dict[str, Any] = {}
    home_nfs: dict[str, Any] = {}
    if lay.provider is CloudProvider.AWS:
        values["nfs"] = {"pv": {"serverIP": lookup(outputs, f"nfs_server_ip.{hub.name}")}}
        home_nfs["eks"] = {"volumeId": lookup(outputs, f"ebs_volume_id_map.{hub.name}")}
    elif lay.provider is CloudProvider.GCP:
        home_nfs["gke"] = {"volumeId": lookup(outputs, f"persistent_disk_id_map.{hub.name}")}
    elif lay.provider is CloudProvider.JETSTREAM2:
        values["nfs"] = {"pv": {"serverIP": lookup(outputs, f"nfs_server_ip.{hub.name}")}}
        home_nfs["openstack"] = {
            "enabled": True,
            "volumeId": lookup(outputs, f"persistent_disk_id_map.{hub.name}"),
        }
    else:  # Azure homes are an Azure Files NFS share (common.values.yaml), without quotas.
        return values
    # values.jsonnet gives staging hubs 1 GiB; the others get the community's quota.
    if "staging" not in hub.name:
        home_nfs["quotaEnforcer"] = {
            "config": {"QuotaManager": {"hard_quota": lay.config.storage.home_quota_gb}}
        }
    values["jupyterhub-home-nfs"] = home_nfs
    return values


def _user_scopes(lay: Layout, hub: Hub) -> list[str]:
    # The chart default lists self and usage-quota access; a list replaces it, so repeat them.
    scopes = ["self", "access:services!service=usage-quota"]
    if lay.image_building:
        scopes.append("access:services!service=binder")
    if lay.dask and hub.role == "community":
        scopes.append("access:services!service=dask-gateway")
    return scopes


def hub_values(lay: Layout, hub: Hub, outputs: dict[str, Any]) -> dict[str, Any]:
    """``<hub>.values.yaml`` for staging, prod and workshop (on top of common.values.yaml)."""
    dask = lay.dask and hub.role == "community"
    values = _home_storage(lay, hub, outputs)
    custom: dict[str, Any] = {"2i2c": _staff(hub)}
    if dask:
        custom["daskhubSetup"] = {"enabled": True}
    if hub.auth is HubAuth.SHARED_PASSWORD:
        # The default-hub-homepage branch whose login form has the shared-password field.
        custom["homepage"] = {"gitRepoBranch": "unify-logins-2"}
    singleuser: dict[str, Any] = {}
    if dask:
        singleuser["cloudMetadata"] = {"blockWithIptables": False}
    singleuser["profileList"] = profile_list(lay, gpu=hub.role == "community")
    roles: dict[str, Any] = {"user": {"scopes": _user_scopes(lay, hub)}}
    if dask:
        roles["server"] = {
            "scopes": ["self", "access:services!service=dask-gateway", "users:activity!user"]
        }
    values["jupyterhub"] = {
        "custom": custom,
        "singleuser": singleuser,
        "hub": {"config": _auth_config(lay, hub), "loadRoles": roles},
    }
    if dask:
        values["dask-gateway"] = {
            "enabled": True,
            "gateway": {
                "auth": {
                    "type": "jupyterhub",
                    "jupyterhub": {"jupyterhubServiceName": "dask-gateway"},
                }
            },
        }
    if lay.image_building:
        values["binderhub-service"] = {
            "config": {"BinderHub": {"image_prefix": lay.image_prefix(hub)}}
        }
    return values


def common_values(lay: Layout) -> dict[str, Any]:
    """``common.values.yaml``: what staging, prod and the workshop hub share."""
    values: dict[str, Any] = {"nfs": {"enabled": True, "pv": {"enabled": True}}}
    if lay.provider is CloudProvider.AZURE:
        account = lay.azure_storage_account
        values["jupyterhub-home-nfs"] = {"enabled": False}
        values["nfs"]["pv"] |= {
            "mountOptions": ["vers=4", "minorversion=1", "sec=sys"],
            "serverIP": f"{account}.file.core.windows.net",
            # The trailing slash matters: each hub's share is a folder named after the hub.
            "baseShareName": f"/{account}/homes/",
        }
    jupyterhub: dict[str, Any] = {
        "custom": {"homepage": {"templateVars": template_vars(lay)}},
        "hub": {"allowNamedServers": True},
        "scheduling": {"userScheduler": {"enabled": True}},
    }
    if lay.provider is CloudProvider.AZURE:
        jupyterhub["singleuser"] = {"initContainers": [OWNERSHIP_FIX]}
    if lay.provider is CloudProvider.JETSTREAM2:
        core = {"capi.stackhpc.com/node-group": "core"}
        jupyterhub["hub"]["nodeSelector"] = core
        jupyterhub["scheduling"] = {
            "corePods": {"nodeAffinity": {"matchNodePurpose": "ignore"}},
            "userPods": {"nodeAffinity": {"matchNodePurpose": "ignore"}},
            "userScheduler": {"enabled": True, "nodeSelector": core},
        }
        jupyterhub["proxy"] = {"chp": {"nodeSelector": core}, "traefik": {"nodeSelector": core}}
    values["jupyterhub"] = jupyterhub
    if lay.image_building:
        values["binderhub-service"] = image_building_service(lay)
    return values


def _builder_scheduling(lay: Layout) -> tuple[dict[str, Any], dict[str, Any]]:
    """Jetstream2 nodes lack the node-purpose labels the chart selects builders with.

    Returns the binderhub-service keys and its ``config`` keys; empty values drop the
    chart's selectors.
    """
    if lay.provider is not CloudProvider.JETSTREAM2:
        return {}, {}
    user_group = {"hub.jupyter.org/node-purpose": None, **dict(lay.user_node.selector)}
    service = {
        "nodeSelector": {
            "capi.stackhpc.com/node-group": "core",
            "hub.jupyter.org/node-purpose": None,
        },
        "dockerApi": {"nodeSelector": user_group},
    }
    return service, {"KubernetesBuildExecutor": {"node_selector": user_group}}


def image_building_service(lay: Layout) -> dict[str, Any]:
    """binderhub-service building into the registry; the push password is a follow-up."""
    server, username = lay.registry
    scheduling, config = _builder_scheduling(lay)
    return {
        "enabled": True,
        "networkPolicy": {"enabled": True},
        **scheduling,
        "config": {"DockerRegistry": {"url": server, "username": username}, **config},
        "buildPodsRegistryCredentials": {"server": server, "username": username},
    }


def binder_values(lay: Layout, hub: Hub) -> dict[str, Any]:
    """``binder.values.yaml``: a BinderHub UI hub, open or behind the community's login."""
    authenticated = hub.auth is not None
    binder = hub.binder_domain
    custom: dict[str, Any] = {"binderhubUI": {"enabled": True}}
    custom["2i2c"] = _staff(hub) if authenticated else {"add_staff_user_ids_to_admin_users": False}
    custom["singleuserAdmin"] = {"extraVolumeMounts": None}
    custom["homepage"] = (
        {"gitRepoBranch": "no-homepage-subsections", "templateVars": template_vars(lay)}
        if authenticated
        else {"templateVars": {"enabled": False}}
    )
    singleuser: dict[str, Any] = {
        "cpu": {"limit": 1},
        "memory": {"limit": "2G", "guarantee": "2G"},
        # Builds and sessions on the smallest user nodes.
        "nodeSelector": dict(lay.user_node.selector),
        "storage": {"type": "none", "extraVolumeMounts": None, "extraVolumes": None},
        "initContainers": [],
        "profileList": [],
    }
    if not authenticated:
        singleuser["cmd"] = ["python3", "-c", JUPYTERLAB_LAUNCHER]
    hub_section: dict[str, Any] = {
        "config": {"BinderSpawnerMixin": {"auth_enabled": authenticated}}
        | (
            _auth_config(lay, hub)
            if authenticated
            else {"JupyterHub": {"authenticator_class": "null"}}
        ),
        "redirectToServer": False,
    }
    if authenticated:
        hub_section["services"] = {
            "binder": {"oauth_redirect_uri": f"https://{binder}/oauth_callback"}
        }
    hub_section["loadRoles"] = {
        "binder": {
            "services": ["binder"],
            # Without authentication BinderHub creates the users itself.
            "scopes": ["servers", "read:users" if authenticated else "admin:users"],
        },
        "user": {"scopes": ["self", "access:services!service=binder"]},
    }
    server, username = lay.registry
    scheduling, scheduling_config = _builder_scheduling(lay)
    config: dict[str, Any] = {
        "BinderHub": {
            "base_url": "/",
            "hub_url": f"https://{hub.domain}",
            "badge_base_url": f"https://{binder}",
            "image_prefix": lay.image_prefix(hub),
            "auth_enabled": authenticated,
            "enable_api_only_mode": False,
            "banner_message": f"{lay.config.name} BinderHub, operated by 2i2c.",
            "about_message": f"This BinderHub is run by 2i2c for {lay.config.name}.",
        },
        "DockerRegistry": {"url": server, "username": username},
        **scheduling_config,
    }
    if not authenticated and lay.config.github_org:
        # An open BinderHub builds only the community's repositories.
        config["GitHubRepoProvider"] = {"allowed_specs": [f"^{lay.config.github_org}/.*$"]}
    extra_env: list[dict[str, Any]] = [
        {
            "name": "JUPYTERHUB_API_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "hub", "key": "hub.services.binder.apiToken"}},
        },
        {"name": "JUPYTERHUB_CLIENT_ID", "value": "service-binder"},
        {"name": "JUPYTERHUB_API_URL", "value": f"https://{hub.domain}/hub/api"},
        # Without it, redirects to /hub/api/... go to BinderHub's domain instead of the hub's.
        {"name": "JUPYTERHUB_BASE_URL", "value": f"https://{hub.domain}/"},
    ]
    if authenticated:
        extra_env.append(
            {"name": "JUPYTERHUB_OAUTH_CALLBACK_URL", "value": f"https://{binder}/oauth_callback"}
        )
    return {
        "jupyterhub-home-nfs": {"enabled": False},
        "jupyterhub": {"custom": custom, "singleuser": singleuser, "hub": hub_section},
        "binderhub-service": {
            "enabled": True,
            "networkPolicy": {"enabled": True},
            **scheduling,
            "ingress": {
                "enabled": True,
                "hosts": [binder],
                "tls": [{"hosts": [binder], "secretName": "binder-https-auto-tls"}],
            },
            "custom": {"sendLogsOfLaunchEventsTo2i2c": True},
            "config": config,
            "extraEnv": extra_env,
            "buildPodsRegistryCredentials": {"server": server, "username": username},
        },
    }


def support_values(lay: Layout) -> dict[str, Any]:
    """``support.values.yaml``: Prometheus and Grafana hosts with TLS, provider specifics."""
    values: dict[str, Any] = {}
    if lay.provider is CloudProvider.GCP:
        values["prometheusStorageClass"] = {"gke": {"enabled": True}}
    prometheus, grafana = lay.prometheus_domain, lay.grafana_domain
    values["prometheus"] = {
        "server": {
            "persistentVolume": {"size": "100Gi"},
            "ingress": {
                "enabled": True,
                "hosts": [prometheus],
                "tls": [{"secretName": "prometheus-tls", "hosts": [prometheus]}],
            },
        }
    }
    # Grafana sign-in: 2i2c staff, and the community's GitHub organization as viewers.
    orgs = " ".join(o for o in ("2i2c-org", lay.config.github_org) if o)
    values["grafana"] = {
        "grafana.ini": {
            "server": {"root_url": f"https://{grafana}/"},
            "auth.github": {"enabled": True, "allowed_organizations": orgs},
        },
        # The chart default (10Gi) cannot shrink later; new clusters start at 1Gi.
        "persistence": {"size": "1Gi"},
        "ingress": {
            "hosts": [grafana],
            "tls": [{"secretName": "grafana-tls", "hosts": [grafana]}],
        },
    }
    if lay.provider is CloudProvider.AWS:
        values["cluster-autoscaler"] = {
            "enabled": True,
            "autoDiscovery": {"clusterName": lay.cluster},
            "awsRegion": lay.region,
        }
        values["calico"] = {"enabled": True}
        values["nvidiaDevicePlugin"] = {"aws": {"enabled": True}}
    elif lay.provider is CloudProvider.AZURE:
        values["nginx-ingress"] = {
            "controller": {
                "service": {
                    # Azure's load balancer probes this path to route traffic.
                    "annotations": {f"{AZURE_LB}-health-probe-request-path": "/healthz"}
                }
            }
        }
        if lay.gpu:
            values["nvidiaDevicePlugin"] = {"azure": {"enabled": True}}
    return values
