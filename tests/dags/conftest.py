"""What every end-to-end run needs: a migrated metadata DB and a loopback SMTP outbox."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def airflow_db() -> None:
    from airflow.utils import db

    db.initdb()


@pytest.fixture(scope="module")
def outbox(tmp_path_factory):
    """A real SMTP server on loopback, and ``smtp_default`` pointing at it."""
    from engagements.outbox import OutboxServer

    with OutboxServer(tmp_path_factory.mktemp("outbox")) as server:
        conn = {
            "conn_type": "smtp",
            "host": "127.0.0.1",
            "port": server.port,
            "extra": {"disable_tls": True, "disable_ssl": True, "timeout": 5, "retry_limit": 0},
        }
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(conn))
            yield server
