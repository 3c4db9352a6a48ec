"""Hooks to the provider's services; each is used only when its connection exists."""

from __future__ import annotations


def connection_exists(conn_id: str) -> bool:
    """Whether the Airflow connection is configured: the switch between doing and planning."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return False
    return True
