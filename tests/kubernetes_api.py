"""A Kubernetes API server on loopback that answers ``GET /api/v1/nodes`` as a real one does."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class KubernetesApi:
    """One node, Ready or not; ``status`` other than 200 answers with a Kubernetes Status."""

    def __init__(self, port: int = 0) -> None:
        self.ready = False
        self.status = 200
        self.requests: list[dict[str, str]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                api.requests.append(
                    {"path": self.path} | {k.lower(): v for k, v in self.headers.items()}
                )
                if not self.path.startswith("/api/v1/nodes"):
                    self.reply(404, status_body(404, "NotFound"))
                elif api.status != 200:
                    self.reply(api.status, status_body(api.status, "Unauthorized"))
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
