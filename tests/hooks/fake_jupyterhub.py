"""A JupyterHub REST API on loopback, answering ``GET /hub/api/users`` as JupyterHub 5 does.

Its shape follows ``jupyterhub/apihandlers/users.py`` and ``base.py`` (jupyterhub/jupyterhub
at 2841153d): ``Authorization: token <t>`` (403 ``{"status", "message"}`` otherwise); with the
``Accept: application/jupyterhub-pagination+json`` header a page ``{"items": [...],
"_pagination": {"offset", "limit", "total", "next"}}`` whose ``next`` holds ``offset``,
``limit`` and ``url`` until the last page (``null``); without it a plain list of up to
``max_limit`` users. ``limit`` defaults to 50 and is capped at 200 (``api_page_default_limit``,
``api_page_max_limit``). A user's ``servers`` lists running servers only, and every server
they ever had with ``include_stopped_servers``; a stopped server has ``started`` null and its
``last_activity`` from when it last ran.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

PAGINATION_MEDIA_TYPE = "application/jupyterhub-pagination+json"


@dataclass
class FakeHubUser:
    name: str
    servers: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Server name -> {"started": iso or None, "last_activity": iso or None}."""
    last_activity: str | None = None


class FakeJupyterHub:
    def __init__(self, token: str = "hub-api-token", *, default_limit: int = 50,
                 max_limit: int = 200) -> None:  # fmt: skip
        self.token = token
        self.default_limit = default_limit
        self.max_limit = max_limit
        self.users: list[FakeHubUser] = []
        self.requests: list[dict[str, Any]] = []
        self.fail_with: tuple[int, str] | None = None

    def add_user(self, name: str, *, used: bool = True, running: bool = False) -> None:
        """A user; ``used``: they started a server once (stopped now unless ``running``)."""
        servers = {}
        if used or running:
            servers[""] = {
                "started": "2027-10-01T09:00:00.000000Z" if running else None,
                "last_activity": "2027-10-01T10:00:00.000000Z",
            }
        self.users.append(FakeHubUser(name, servers, "2027-10-01T10:00:00.000000Z"))

    def __enter__(self) -> FakeJupyterHub:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                status, body = fake.answer(self)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, handler: BaseHTTPRequestHandler) -> tuple[int, Any]:
        parsed = urlparse(handler.path)
        query = {k: v[-1] for k, v in parse_qs(parsed.query, keep_blank_values=True).items()}
        accept = {a.strip().lower() for a in handler.headers.get("Accept", "").split(",")}
        self.requests.append({"path": parsed.path, "query": query, "accept": sorted(accept)})
        if handler.headers.get("Authorization") != f"token {self.token}":
            return 403, {"status": 403, "message": "Forbidden"}
        if self.fail_with:
            return self.fail_with[0], {"status": self.fail_with[0], "message": self.fail_with[1]}
        if parsed.path != "/hub/api/users":
            return 404, {"status": 404, "message": "Not Found"}
        paginated = PAGINATION_MEDIA_TYPE in accept
        limit = int(query.get("limit", self.default_limit if paginated else self.max_limit))
        limit = max(1, min(limit, self.max_limit))
        offset = int(query.get("offset", 0))
        stopped = query.get("include_stopped_servers", "0").lower() not in {"0", "false"}
        page = [self.model(u, stopped) for u in self.users[offset : offset + limit]]
        if not paginated:
            return 200, page
        pagination: dict[str, Any] = {
            "offset": offset,
            "limit": limit,
            "total": len(self.users),
            "next": None,
        }
        if offset + limit < len(self.users):
            nxt = {**query, "offset": offset + limit, "limit": limit}
            host = handler.headers.get("Host")
            pagination["next"] = {
                "offset": offset + limit,
                "limit": limit,
                "url": f"http://{host}{parsed.path}?{urlencode(nxt)}",
            }
        return 200, {"items": page, "_pagination": pagination}

    @staticmethod
    def model(user: FakeHubUser, include_stopped: bool) -> dict[str, Any]:
        servers = {
            name: {
                "name": name,
                "last_activity": server["last_activity"],
                "started": server["started"],
                "pending": None,
                "ready": server["started"] is not None,
                "stopped": server["started"] is None,
                "url": f"/user/{user.name}/{name}",
            }
            for name, server in user.servers.items()
            if include_stopped or server["started"] is not None
        }
        running = any(s["started"] for s in user.servers.values())
        return {
            "kind": "user",
            "name": user.name,
            "admin": False,
            "roles": ["user"],
            "groups": [],
            "server": f"/user/{user.name}/" if running else None,
            "pending": None,
            "created": "2027-01-10T08:00:00.000000Z",
            "last_activity": user.last_activity,
            "servers": servers,
        }
