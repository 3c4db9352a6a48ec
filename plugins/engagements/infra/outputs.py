"""What the hubs' values need from the applied cluster: terraform's outputs and the cluster's.

The repository adds a cluster's hubs only once terraform has run, writing the values it
created (disk ids, NFS server addresses) into the hub files. :func:`required_outputs` names
each value the hubs of a layout need, with the rule a real value satisfies; the hubs' change
is rendered only from a complete set (:func:`check_outputs`), so a missing or made-up value
is refused before anything is proposed. :func:`outputs_from_terraform` reads them from
``terraform output -json`` and the NFS service addresses the provisioning pod reports;
:func:`example_outputs` is the clearly named stand-in for the embedded default.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engagements.config import CloudProvider

from .layout import Hub, Layout

EXAMPLE_NOTE = (
    "EXAMPLE outputs (no cluster was applied from here): replace each value of the cluster's "
    "outputs file with the real one (terraform output -json in the cluster's workspace; "
    "kubectl -n <hub> get svc storage-quota-home-nfs), delete the file's _note line, then "
    "clear cluster_outputs."
)
PLACEHOLDER = re.compile(r"PENDING|TODO|FIXME|CHANGEME|REPLACE|<[^>]*>|x{3,}", re.IGNORECASE)


@dataclass(frozen=True)
class Output:
    """One value the hubs need: where it comes from and what a real one looks like."""

    key: str
    """``<name>.<hub>``, e.g. ``ebs_volume_id_map.staging``."""
    hub: str
    source: str
    pattern: str
    example: str

    def problem(self, value: Any) -> str | None:
        if value is None or value == "":
            return f"missing: {self.source}"
        text = str(value)
        if PLACEHOLDER.search(text):
            return f"{text!r} is a placeholder, not a value from {self.source}"
        if self.pattern == "ipv4":
            try:
                ipaddress.IPv4Address(text)
            except ValueError:
                return f"{text!r} is not an IPv4 address ({self.source})"
            return None
        if not re.fullmatch(self.pattern, text):
            return f"{text!r} does not look like {self.source} ({self.pattern})"
        return None


def disk_name(lay: Layout, hub: Hub) -> str:
    """The name terraform gives a hub's home disk (``name_suffix`` is the hub's name): the key
    of ``ebs_volume_id_map`` (AWS ``Name`` tag) and ``persistent_disk_id_map``."""
    prefix = "hub-nfs-home-dirs" if lay.provider is CloudProvider.AWS else "hub-nfs-homedirs"
    return f"{prefix}-{hub.name}"


def _nfs(lay: Layout, hub: Hub, example: str) -> Output:
    return Output(
        f"nfs_server_ip.{hub.name}",
        hub.name,
        f"the ClusterIP of service storage-quota-home-nfs in namespace {hub.name}, which the "
        "provisioning pod reserves",
        "ipv4",
        example,
    )


def required_outputs(lay: Layout) -> tuple[Output, ...]:
    """Every value the hub files of this layout take from the applied cluster."""
    outputs: list[Output] = []
    for i, hub in enumerate(lay.home_hubs, start=1):
        if lay.provider is CloudProvider.AWS:
            outputs += [
                Output(
                    f"ebs_volume_id_map.{hub.name}",
                    hub.name,
                    f"terraform output ebs_volume_id_map, entry {disk_name(lay, hub)}",
                    r"vol-[0-9a-f]{8,17}",
                    f"vol-0e{i:015x}",
                ),
                _nfs(lay, hub, f"10.100.0.{10 + i}"),
            ]
        elif lay.provider is CloudProvider.GCP:
            outputs.append(
                Output(
                    f"persistent_disk_id_map.{hub.name}",
                    hub.name,
                    f"terraform output persistent_disk_id_map, entry {disk_name(lay, hub)}",
                    r"projects/[a-z0-9-]+/zones/[a-z0-9-]+/disks/[a-z0-9-]+",
                    f"projects/{lay.account}/zones/{lay.gcp_zone}/disks/{disk_name(lay, hub)}",
                )
            )
        elif lay.provider is CloudProvider.JETSTREAM2:
            outputs += [
                Output(
                    f"persistent_disk_id_map.{hub.name}",
                    hub.name,
                    f"terraform output persistent_disk_id_map, entry {disk_name(lay, hub)}",
                    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                    f"0e000000-0000-4000-8000-{i:012x}",
                ),
                _nfs(lay, hub, f"10.254.0.{10 + i}"),
            ]
    return tuple(outputs)


def lookup(outputs: Mapping[str, Any], key: str) -> Any:
    name, _, hub = key.partition(".")
    section = outputs.get(name)
    return section.get(hub) if isinstance(section, Mapping) else None


def check_outputs(lay: Layout, outputs: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(``outputs.<key>``, reason) for each needed value that is missing or not real."""
    problems = []
    for output in required_outputs(lay):
        reason = output.problem(lookup(outputs, output.key))
        if reason:
            problems.append((f"outputs.{output.key}", reason))
    return problems


def example_outputs(lay: Layout) -> dict[str, Any]:
    """Example values in the shape of the real ones, for the embedded default's hubs change."""
    data: dict[str, Any] = {"_note": EXAMPLE_NOTE}
    for output in required_outputs(lay):
        name, _, hub = output.key.partition(".")
        data.setdefault(name, {})[hub] = output.example
    return data


def outputs_from_terraform(
    lay: Layout, terraform: Mapping[str, Any], nfs_server_ip: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The needed values from ``terraform output -json`` (and the reserved NFS addresses).

    terraform keys disk maps by resource name; they are re-keyed by hub here.
    """

    def value(name: str) -> Mapping[str, Any]:
        entry = terraform.get(name) or {}
        found = entry.get("value", entry) if isinstance(entry, Mapping) else {}
        return found if isinstance(found, Mapping) else {}

    data: dict[str, Any] = {}
    for hub in lay.home_hubs:
        if lay.provider is CloudProvider.AWS:
            ids = value("ebs_volume_id_map")
            data.setdefault("ebs_volume_id_map", {})[hub.name] = ids.get(disk_name(lay, hub))
        elif lay.provider in (CloudProvider.GCP, CloudProvider.JETSTREAM2):
            ids = value("persistent_disk_id_map")
            data.setdefault("persistent_disk_id_map", {})[hub.name] = ids.get(disk_name(lay, hub))
        if lay.provider in (CloudProvider.AWS, CloudProvider.JETSTREAM2):
            data.setdefault("nfs_server_ip", {})[hub.name] = (nfs_server_ip or {}).get(hub.name)
    return data
