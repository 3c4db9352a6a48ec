"""Hooks to the provider's services; each is used only when its connection exists."""

from __future__ import annotations

import json


class ConnectionUnusable(RuntimeError):
    """A connection is configured but cannot be read: never a reason to fall back silently."""


def connection_exists(conn_id: str) -> bool:
    """Whether the Airflow connection is configured: the switch between doing and planning.

    A connection that is defined but cannot be read (malformed JSON or URI in
    ``AIRFLOW_CONN_*``, a secrets backend that fails) raises :class:`ConnectionUnusable`:
    Airflow reports both as "not defined", which would silently switch to the embedded default.
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        problem = lookup_problem(conn_id)
        if problem is None:
            return False
        raise ConnectionUnusable(
            f"Airflow connection {conn_id!r} is configured but malformed or unreadable "
            f"({problem}); fix or remove it"
        ) from None
    return True


def lookup_problem(conn_id: str) -> str | None:
    """Why a connection that Airflow calls "not defined" could not be read, if it was found.

    Asks each secrets backend in turn, as Airflow does, but keeps the first failure. The
    reason names the backend and the kind of error, never the value (it holds the secret).
    """
    from airflow.sdk.execution_time.supervisor import ensure_secrets_backend_loaded

    for backend in ensure_secrets_backend_loaded():
        try:
            if backend.get_connection(conn_id=conn_id):
                return None
        except json.JSONDecodeError as exc:
            return f"{type(backend).__name__}: not valid JSON: {exc.msg} at position {exc.pos}"
        except Exception as exc:  # any failure of a backend is the answer
            return f"{type(backend).__name__}: {type(exc).__name__}"
    return None
