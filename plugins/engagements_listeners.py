"""Registers the engagement pipelines' Airflow listeners (``engagements.listeners``).

Loaded by Airflow's plugin manager in each of its processes: in the API server the listener
records who marked a milestone's wait success; in the scheduler it writes the run notes.
"""

from __future__ import annotations

from typing import ClassVar

from airflow.plugins_manager import AirflowPlugin

from engagements import listeners


class EngagementListenersPlugin(AirflowPlugin):
    name = "engagement_listeners"
    listeners: ClassVar[list] = [listeners]
