"""The cluster APIs the upkeep observes, as tests meet them.

- :class:`FakeGke`: the GKE container API v1 (REST) on loopback: ``clusters.get``,
  ``clusters.fetchClusterUpgradeInfo`` and ``getServerConfig`` of ``projects.locations``,
  with bodies in the real API's JSON shapes and its error shape; state a test changes as the
  cloud would after an upgrade.
- :func:`eks_cluster_versions`: EKS ``DescribeClusterVersions``, which moto 5.2.5 does not
  implement, answered at the boto boundary (a ``before-send`` handler, as moto itself hooks
  in): the request is serialized and the answer parsed by botocore like a real one. Clusters
  and node groups themselves are moto's.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class FakeGke:
    """GKE clusters by ``projects/<p>/locations/<l>/clusters/<name>``; offered versions per
    location; end of standard support per minor (what fetchClusterUpgradeInfo answers)."""

    def __init__(self) -> None:
        self.clusters: dict[str, dict[str, Any]] = {}
        self.valid_versions: dict[str, list[str]] = {}
        self.end_of_support: dict[str, str] = {}
        self.requests: list[tuple[str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                fake.requests.append(("GET", path))
                code, body = fake.answer(path)
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def connection(self, project: str) -> str:
        """``google_cloud_default`` reaching this fake (anonymous, as no key is needed)."""
        extra = {"project": project, "is_anonymous": True, "container_api_endpoint": self.url}
        return json.dumps({"conn_type": "google_cloud_platform", "extra": extra})

    def add_cluster(
        self,
        project: str,
        location: str,
        name: str,
        version: str,
        pools: dict[str, str],
        created: str = "2025-03-01T10:00:00+00:00",
    ) -> None:
        self.clusters[f"projects/{project}/locations/{location}/clusters/{name}"] = {
            "name": name,
            "location": location,
            "currentMasterVersion": version,
            "createTime": created,
            "status": "RUNNING",
            "nodePools": [
                {"name": pool, "version": v, "status": "RUNNING"} for pool, v in pools.items()
            ],
        }

    def upgrade(self, project: str, location: str, name: str, version: str) -> None:
        """What ``gcloud container clusters upgrade`` leaves: master and every pool on it."""
        cluster = self.clusters[f"projects/{project}/locations/{location}/clusters/{name}"]
        cluster["currentMasterVersion"] = version
        for pool in cluster["nodePools"]:
            pool["version"] = version

    def answer(self, path: str) -> tuple[int, dict[str, Any]]:
        name = path.removeprefix("/v1/")
        if name.endswith("/serverConfig"):
            versions = self.valid_versions.get(name.removesuffix("/serverConfig"), [])
            return 200, {
                "defaultClusterVersion": versions[-1] if versions else "",
                "validMasterVersions": versions,
                "validNodeVersions": versions,
                "channels": [
                    {
                        "channel": "REGULAR",
                        "defaultVersion": versions[-1],
                        "validVersions": versions,
                    }
                ]
                if versions
                else [],
            }
        upgrade_info = name.endswith(":fetchClusterUpgradeInfo")
        cluster = self.clusters.get(name.removesuffix(":fetchClusterUpgradeInfo"))
        if cluster is None:
            return 404, {
                "error": {
                    "code": 404,
                    "message": f"Not found: {name}.",
                    "status": "NOT_FOUND",
                }
            }
        if upgrade_info:
            minor = ".".join(cluster["currentMasterVersion"].split(".")[:2])
            info: dict[str, Any] = {"autoUpgradeStatus": ["ACTIVE"]}
            if minor in self.end_of_support:
                info["endOfStandardSupportTimestamp"] = f"{self.end_of_support[minor]}T00:00:00Z"
            return 200, info
        return 200, cluster


def _version_entry(minor: str, end: dt.date) -> dict[str, Any]:
    epoch = dt.datetime.combine(end, dt.time(), tzinfo=dt.UTC).timestamp()
    return {
        "clusterVersion": minor,
        "clusterType": "eks",
        "defaultPlatformVersion": "eks.1",
        "defaultVersion": False,
        "endOfStandardSupportDate": epoch,
        "endOfExtendedSupportDate": epoch + 365 * 86400,
        "versionStatus": "STANDARD_SUPPORT",
        "kubernetesPatchVersion": f"{minor}.0",
    }


@contextmanager
def eks_cluster_versions(versions: dict[str, dt.date]) -> Iterator[list[dict[str, Any]]]:
    """While active, sessions created afterwards answer ``DescribeClusterVersions`` with these
    (minor -> end of standard support), two per page; yields the query of each request."""
    import botocore.handlers
    from botocore.awsrequest import AWSResponse

    queries: list[dict[str, Any]] = []
    entries = [_version_entry(minor, end) for minor, end in versions.items()]

    class Raw:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def stream(self, **kwargs: Any) -> Iterator[bytes]:
            yield self.data

    def answer(request: Any, **kwargs: Any) -> AWSResponse:
        query = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
        queries.append(query)
        start = int(query.get("nextToken", "0"))
        page: dict[str, Any] = {"clusterVersions": entries[start : start + 2]}
        if start + 2 < len(entries):
            page["nextToken"] = str(start + 2)
        headers = {"Content-Type": "application/json"}
        return AWSResponse(request.url, 200, headers, Raw(json.dumps(page).encode()))

    handler = ("before-send.eks.DescribeClusterVersions", answer)
    botocore.handlers.BUILTIN_HANDLERS.insert(0, handler)
    try:
        yield queries
    finally:
        botocore.handlers.BUILTIN_HANDLERS.remove(handler)
