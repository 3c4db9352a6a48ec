"""A community hub's JupyterHub REST API: who uses the hub, as the hub itself knows it.

The decommission checks the home-directory archives against this list, independently of the
archive job that made them. The connection (``jupyterhub_<community>_<hub>`` by default) holds
an API token as its password, with the scopes ``list:users``, ``read:users`` and
``read:servers`` (a token of a service given those scopes, or of an admin); its host, when set,
replaces the hub's address (``https://<hub domain>``). The token is only ever sent as the
``Authorization`` header.

``GET /hub/api/users`` is paginated (JupyterHub 2.0+): with the ``Accept`` header below the
hub answers ``{"items": [...], "_pagination": {"offset", "limit", "total", "next"}}`` and the
hook follows ``next`` until it is null. ``include_stopped_servers`` makes each user's
``servers`` list every server they ever had, not only the running ones.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import requests
from airflow.sdk import BaseHook

log = logging.getLogger(__name__)

PAGINATION_MEDIA_TYPE = "application/jupyterhub-pagination+json"
PAGE_LIMIT = 200
MAX_PAGES = 10_000


class JupyterHubError(RuntimeError):
    """The hub refused or failed a request; the message names the hub and the reason."""


@dataclass(frozen=True)
class HubUser:
    """A user as the hub lists them: ``server_used`` when any of their servers ever started."""

    name: str
    last_activity: str | None
    server_used: bool


class JupyterHubHook(BaseHook):
    """Reads one hub's users through its REST API."""

    conn_name_attr = "jupyterhub_conn_id"
    default_conn_name = "jupyterhub_default"
    conn_type = "http"
    hook_name = "JupyterHub"

    def __init__(
        self,
        jupyterhub_conn_id: str = default_conn_name,
        *,
        url: str = "",
        timeout: tuple[float, float] = (5.0, 60.0),
    ) -> None:
        super().__init__()
        self.jupyterhub_conn_id = jupyterhub_conn_id
        self.default_url = url
        self.timeout = timeout

    @cached_property
    def _api(self) -> tuple[requests.Session, str]:
        conn = self.get_connection(self.jupyterhub_conn_id)
        if not conn.password:
            raise JupyterHubError(
                f"the Airflow connection {self.jupyterhub_conn_id!r} needs the hub's API token "
                "as its password"
            )
        base = (conn.host or self.default_url).rstrip("/")
        if not base:
            raise JupyterHubError(f"the connection {self.jupyterhub_conn_id!r} names no hub")
        if "://" not in base:
            base = f"https://{base}"
        session = requests.Session()
        session.headers.update(
            {"Authorization": f"token {conn.password}", "Accept": PAGINATION_MEDIA_TYPE}
        )
        return session, base

    def get_conn(self) -> requests.Session:
        return self._api[0]

    @property
    def url(self) -> str:
        return self._api[1]

    def users(self) -> list[HubUser]:
        """Every user of the hub, all pages, with whether they ever started a server."""
        session, base = self._api
        url = f"{base}/hub/api/users"
        offset, limit = 0, PAGE_LIMIT
        users: list[HubUser] = []
        for _ in range(MAX_PAGES):
            params = {"include_stopped_servers": "1", "offset": offset, "limit": limit}
            data = self._get(session, url, params)
            if isinstance(data, list):  # a hub older than 2.0: offsets, until a short page
                users += [_user(item, base) for item in data]
                if len(data) < limit:
                    return users
                offset = len(users)
                continue
            if not isinstance(data, dict) or not isinstance(data.get("items"), list):
                raise JupyterHubError(f"{base}: the users API answered something else: {data!r}")
            users += [_user(item, base) for item in data["items"]]
            following = (data.get("_pagination") or {}).get("next")
            if not following:
                return users
            # The page the hub points to, asked of the hub's own address (its ``next.url`` is
            # built from the request as the hub saw it, which a proxy may have rewritten).
            offset, limit = int(following["offset"]), int(following["limit"])
        raise JupyterHubError(f"{base}: more than {MAX_PAGES} pages of users")

    def _get(self, session: requests.Session, url: str, params: dict[str, Any] | None) -> Any:
        try:
            response = session.get(url, params=params, timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise JupyterHubError(f"{url}: {type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            try:
                reason = response.json().get("message") or response.reason
            except ValueError:
                reason = response.reason
            raise JupyterHubError(f"{url}: HTTP {response.status_code}: {reason}")
        try:
            return response.json()
        except ValueError:
            raise JupyterHubError(f"{url}: the answer is not JSON") from None


def _user(item: Any, base: str) -> HubUser:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise JupyterHubError(f"{base}: a user without a name in the users API: {item!r}")
    if "servers" not in item:
        raise JupyterHubError(
            f"{base}: the users API does not show servers; the token needs the read:servers "
            "scope to tell who ever started one"
        )
    servers = item.get("servers") or {}
    used = any(
        isinstance(server, dict) and (server.get("started") or server.get("last_activity"))
        for server in servers.values()
    )
    return HubUser(item["name"], item.get("last_activity"), used)
