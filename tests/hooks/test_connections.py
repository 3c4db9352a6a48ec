"""Choosing between doing and planning by whether a connection exists: a connection that is
configured but cannot be read is an error naming it, never "not configured"."""

from __future__ import annotations

import json

import pytest

from engagements.hooks import ConnectionUnusable, connection_exists


def test_a_defined_connection_exists(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_GITHUB_DEFAULT", json.dumps({"conn_type": "github"}))
    assert connection_exists("github_default")


def test_an_undefined_connection_does_not(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_GITHUB_DEFAULT", raising=False)
    assert not connection_exists("github_default")


def test_a_malformed_connection_is_named_without_its_secret(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_GITHUB_DEFAULT", '{"conn_type": "github", "password": "ghp_X"')
    with pytest.raises(ConnectionUnusable) as caught:
        connection_exists("github_default")
    message = str(caught.value)
    assert message.startswith("Airflow connection 'github_default' is configured but malformed")
    assert "not valid JSON" in message
    assert "ghp_X" not in message
