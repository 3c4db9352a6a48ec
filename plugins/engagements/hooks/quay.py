"""Quay.io through its REST API (v1): the community image repository and its robot account.

The ``quay_default`` connection keeps an OAuth access token (generated in the Quay
organization's Applications tab, scopes ``repo:create``, ``repo:admin`` and ``org:admin``) as
its password; its host, when set, replaces ``https://quay.io/api/v1`` (another Quay, a test
server). The token is only ever sent as the ``Authorization`` header. A robot's token is handed
to the caller, never logged and never part of an error message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import quote

import requests
from airflow.sdk import BaseHook

log = logging.getLogger(__name__)

DEFAULT_API = "https://quay.io/api/v1"
RETRY_STATUSES = frozenset({429, 502, 503, 504})


class QuayError(RuntimeError):
    """Quay refused or failed a request; the message says what we were doing and why."""

    def __init__(self, doing: str, status: int | None, reason: str) -> None:
        self.doing = doing
        self.status = status
        super().__init__(f"Quay: {doing}: {reason}" + (f" (HTTP {status})" if status else ""))


@dataclass(frozen=True)
class Robot:
    """A Quay robot account; its token is kept out of ``repr`` so that it cannot be logged."""

    name: str
    token: str = field(repr=False)


class QuayHook(BaseHook):
    """Idempotent Quay operations: each creates only what is not there yet."""

    conn_name_attr = "quay_conn_id"
    default_conn_name = "quay_default"
    conn_type = "quay"
    hook_name = "Quay"

    def __init__(
        self,
        quay_conn_id: str = default_conn_name,
        *,
        retries: int = 3,
        max_wait: float = 60.0,
        timeout: tuple[float, float] = (5.0, 30.0),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__()
        self.quay_conn_id = quay_conn_id
        self.retries = retries
        self.max_wait = max_wait
        self.timeout = timeout
        self.sleep = sleep

    @cached_property
    def _api(self) -> tuple[requests.Session, str]:
        conn = self.get_connection(self.quay_conn_id)
        if not conn.password:
            raise QuayError(
                f"connecting with Airflow connection {self.quay_conn_id!r}",
                None,
                "the connection needs an OAuth access token as its password",
            )
        session = requests.Session()
        session.headers.update(
            {"Authorization": f"Bearer {conn.password}", "Accept": "application/json"}
        )
        base = conn.host.rstrip("/") if conn.host else DEFAULT_API
        if "://" not in base:
            base = f"https://{base}/api/v1"
        return session, base

    def get_conn(self) -> requests.Session:
        return self._api[0]

    def _request(
        self, method: str, path: str, doing: str, *, body: dict[str, Any] | None = None
    ) -> requests.Response:
        """Send, retrying 429 and 5xx gateway errors with a bounded wait (Retry-After first)."""
        session, base = self._api
        attempt = 0
        while True:
            try:
                response = session.request(method, base + path, json=body, timeout=self.timeout)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt >= self.retries:
                    raise QuayError(doing, None, f"{type(exc).__name__}: {exc}") from None
                wait = min(2.0**attempt, self.max_wait)
            else:
                if response.status_code not in RETRY_STATUSES or attempt >= self.retries:
                    return response
                wait = _retry_after(response) or 2.0**attempt
                if wait > self.max_wait:
                    raise QuayError(
                        doing,
                        response.status_code,
                        f"Quay asks to wait {wait:.0f} s, longer than this task waits; "
                        "the task's retries will try again later",
                    )
                log.info(
                    "Quay answered %s to %s; retrying in %.0f s", response.status_code, doing, wait
                )
            self.sleep(wait)
            attempt += 1

    def create_repository(
        self, namespace: str, name: str, *, description: str, visibility: str = "public"
    ) -> bool:
        """Create ``namespace/name`` (an image repository); ``False`` if it already existed."""
        doing = f"creating repository {namespace}/{name}"
        response = self._request(
            "POST",
            "/repository",
            doing,
            body={
                "namespace": namespace,
                "repository": name,
                "visibility": visibility,
                "description": description,
                "repo_kind": "image",
            },
        )
        if response.status_code in (200, 201):
            return True
        if response.status_code in (400, 409, 422) and "already exists" in _message(response):
            return False
        raise _error(doing, response)

    def get_robot(self, org: str, shortname: str) -> Robot | None:
        doing = f"reading robot {org}+{shortname}"
        response = self._request("GET", _robot_path(org, shortname), doing)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise _error(doing, response)
        return _robot(response)

    def ensure_robot(self, org: str, shortname: str, *, description: str) -> tuple[Robot, bool]:
        """The robot account ``org+shortname``, created if missing; ``True`` if created."""
        existing = self.get_robot(org, shortname)
        if existing is not None:
            return existing, False
        doing = f"creating robot {org}+{shortname}"
        response = self._request(
            "PUT", _robot_path(org, shortname), doing, body={"description": description}
        )
        if response.status_code in (200, 201):
            return _robot(response), True
        if response.status_code == 400 and "existing robot" in _message(response):
            raced = self.get_robot(org, shortname)  # created meanwhile by another run
            if raced is not None:
                return raced, False
        raise _error(doing, response)

    def set_repository_permission(
        self, namespace: str, name: str, robot: str, role: str = "write"
    ) -> None:
        """Give the robot ``role`` (read, write or admin) on the repository; repeatable."""
        doing = f"giving {robot} {role} access to {namespace}/{name}"
        path = f"/repository/{quote(namespace)}/{quote(name)}/permissions/user/{quote(robot)}"
        response = self._request("PUT", path, doing, body={"role": role})
        if response.status_code not in (200, 201):
            raise _error(doing, response)


def _robot_path(org: str, shortname: str) -> str:
    return f"/organization/{quote(org)}/robots/{quote(shortname)}"


def _robot(response: requests.Response) -> Robot:
    data = response.json()
    return Robot(name=data["name"], token=data["token"])


def _retry_after(response: requests.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None


def _message(response: requests.Response) -> str:
    """Quay's error text, lowercased; only error bodies are read here (never a robot's)."""
    try:
        data = response.json()
    except ValueError:
        return response.reason.lower()
    if not isinstance(data, dict):
        return response.reason.lower()
    return str(data.get("error_message") or data.get("detail") or data.get("message") or "").lower()


def _error(doing: str, response: requests.Response) -> QuayError:
    reason = _message(response) or response.reason or "no message"
    if response.status_code == 401:
        reason += "; check the OAuth token of the connection and its scopes"
    return QuayError(doing, response.status_code, reason)
