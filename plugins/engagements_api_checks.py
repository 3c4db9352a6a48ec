"""Airflow plugin: the API server refuses a lifecycle trigger or form answer that breaks a
rule of the community config, before a run is created or a task resumes (see
:mod:`engagements.middleware.conf_check`)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from engagements.middleware.conf_check import ConfCheckMiddleware


class EngagementsApiChecks(AirflowPlugin):
    name = "engagements_api_checks"
    fastapi_root_middlewares = [  # noqa: RUF012 - the plugin interface's own attribute
        {"middleware": ConfCheckMiddleware, "name": "Lifecycle conf and form answer checks"}
    ]
