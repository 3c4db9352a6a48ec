"""Airflow plugin: the API server refuses a lifecycle trigger or form answer that breaks a
rule of the community config, before a run is created or a task resumes (see
:mod:`engagements.middleware.conf_check`).

Every Airflow component imports the modules of ``plugins/``, so this one only names the
middleware: it is imported when the api-server gets its first request.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin


class ConfChecks:
    """An ASGI middleware that builds ``ConfCheckMiddleware`` around the app on first use."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._middleware: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._middleware is None:
            from engagements.middleware.conf_check import ConfCheckMiddleware

            self._middleware = ConfCheckMiddleware(self.app)
        await self._middleware(scope, receive, send)


class EngagementsApiChecks(AirflowPlugin):
    name = "engagements_api_checks"
    fastapi_root_middlewares = [  # noqa: RUF012 - the plugin interface's own attribute
        {"middleware": ConfChecks, "name": "Lifecycle conf and form answer checks"}
    ]
