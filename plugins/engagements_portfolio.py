"""Airflow plugin: the engagements portfolio at ``/engagements/`` on the api-server.

Every Airflow component imports the modules of ``plugins/``, so this one only names the app:
FastAPI, the templates and the store are imported when the api-server gets its first request
for ``/engagements`` (the app is built then, once per api-server worker).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from airflow.configuration import conf
from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/engagements"
BASE_PATH = urlsplit(conf.get("api", "base_url", fallback="") or "/").path.rstrip("/")
"""Where Airflow's UI is served (``[api] base_url``): the navigation links to the page there."""


class PortfolioApp:
    """An ASGI app that builds ``engagements.web.app`` on its first request."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            from engagements.web.app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


class EngagementsPortfolioPlugin(AirflowPlugin):
    name = "engagements_portfolio"
    fastapi_apps = [  # noqa: RUF012 (AirflowPlugin declares these as class-level lists)
        {"app": PortfolioApp(), "url_prefix": URL_PREFIX, "name": "Engagements portfolio"}
    ]
    external_views = [  # noqa: RUF012
        {
            "name": "Engagements",
            "href": f"{BASE_PATH}{URL_PREFIX}/",
            "url_route": "engagements",
            "destination": "nav",
            "nav_top_level": True,
        }
    ]
