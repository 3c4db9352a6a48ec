"""A Kubernetes API server on loopback that answers ``GET /api/v1/nodes`` and ``GET /version``
as a real one does."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class KubernetesApi:
    """One node, Ready or not; ``status`` other than 200 answers with a Kubernetes Status.

    ``git_version`` is the API server's version; ``nodes``, when set, are the nodes listed
    instead (see :func:`node`).
    """

    def __init__(self, port: int = 0) -> None:
        self.ready = False
        self.status = 200
        self.git_version = "v1.31.4"
        self.nodes: list[dict[str, Any]] | None = None
        self.requests: list[dict[str, str]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                api.requests.append(
                    {"path": self.path} | {k.lower(): v for k, v in self.headers.items()}
                )
                if api.status != 200:
                    self.reply(api.status, status_body(api.status, "Unauthorized"))
                elif self.path.split("?")[0].rstrip("/") == "/version":
                    self.reply(200, version_info(api.git_version))
                elif not self.path.startswith("/api/v1/nodes"):
                    self.reply(404, status_body(404, "NotFound"))
                elif api.nodes is not None:
                    self.reply(200, {**node_list(True), "items": api.nodes})
                else:
                    self.reply(200, node_list(api.ready))

            def reply(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def kubeconfig(self) -> dict[str, Any]:
        return kubeconfig(self.url)


def kubeconfig(server: str) -> dict[str, Any]:
    """A kubeconfig with a bearer token, as ``az aks get-credentials`` or OpenStack write one."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "k8s-token"}}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "ctx",
    }


def connection(server: str) -> str:
    """The ``AIRFLOW_CONN_KUBERNETES_<CLUSTER>`` value for a cluster at ``server``."""
    return json.dumps({"conn_type": "kubernetes", "extra": {"kube_config": kubeconfig(server)}})


def node_list(ready: bool) -> dict[str, Any]:
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    return {
        "kind": "NodeList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": "1"},
        "items": [{"metadata": {"name": "core-1"}, "status": {"conditions": [condition]}}],
    }


def node(
    name: str, kubelet: str, labels: dict[str, str], created: str = "2026-01-10T09:00:00Z"
) -> dict[str, Any]:
    """A Ready node with its kubelet version, labels and creation time."""
    return {
        "metadata": {"name": name, "labels": labels, "creationTimestamp": created},
        "status": {
            "conditions": [{"type": "Ready", "status": "True"}],
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": f"boot-{name}",
                "containerRuntimeVersion": "containerd://1.7.22",
                "kernelVersion": "6.8.0-1015",
                "kubeProxyVersion": kubelet,
                "kubeletVersion": kubelet,
                "machineID": f"machine-{name}",
                "operatingSystem": "linux",
                "osImage": "Ubuntu 24.04.1 LTS",
                "systemUUID": f"uuid-{name}",
            },
        },
    }


def version_info(git_version: str) -> dict[str, Any]:
    major, minor = git_version.lstrip("v").split(".")[:2]
    return {
        "major": major,
        "minor": minor,
        "gitVersion": git_version,
        "gitCommit": "0" * 40,
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23.4",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def status_body(code: int, reason: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": reason,
        "reason": reason,
        "code": code,
    }
