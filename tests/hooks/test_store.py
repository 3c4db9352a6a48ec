"""Choosing the backend by configuration: ENGAGEMENTS_STORE, then the Airflow connection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engagements.hooks.store import get_store
from engagements.settings import Settings
from engagements.store import StoreError
from engagements.store.airtable import AirtableStore
from engagements.store.local import LocalStore
from tests.store.conftest import BASE_ID, TOKEN

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ENGAGEMENTS_STORE", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_AIRTABLE_DEFAULT", raising=False)
    monkeypatch.setenv("ENGAGEMENTS_STORE_PATH", str(tmp_path / "engagements.sqlite"))


@pytest.fixture
def airtable_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    connection = {"conn_type": "airtable", "password": TOKEN, "extra": {"base_id": BASE_ID}}
    monkeypatch.setenv("AIRFLOW_CONN_AIRTABLE_DEFAULT", json.dumps(connection))


def test_without_a_connection_the_local_file_is_used(tmp_path: Path) -> None:
    store = get_store()
    assert isinstance(store, LocalStore)
    assert store.path == tmp_path / "engagements.sqlite"


def test_settings_given_by_the_caller_win(tmp_path: Path) -> None:
    store = get_store(Settings(store_path=str(tmp_path / "other.sqlite")))
    assert isinstance(store, LocalStore)
    assert store.path == tmp_path / "other.sqlite"


@pytest.mark.usefixtures("airtable_connection")
def test_with_the_airtable_connection_airtable_is_used() -> None:
    store = get_store()
    assert isinstance(store, AirtableStore)
    assert store.base_id == BASE_ID


@pytest.mark.usefixtures("airtable_connection")
def test_environment_forces_the_local_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGAGEMENTS_STORE", "local")
    assert isinstance(get_store(), LocalStore)


def test_forcing_airtable_without_a_connection_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENGAGEMENTS_STORE", "airtable")
    with pytest.raises(StoreError, match="connection 'airtable_default' is not defined"):
        get_store()


def test_unknown_backend_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGAGEMENTS_STORE", "postgres")
    with pytest.raises(
        StoreError, match="ENGAGEMENTS_STORE: 'postgres' is not a store; use local or airtable"
    ):
        get_store()


MALFORMED = {
    "not JSON": '{"conn_type": "airtable", "password": "patSECRET"',
    "extra not JSON": json.dumps({"conn_type": "airtable", "password": "patSECRET", "extra": "{x"}),
    "no base id": json.dumps({"conn_type": "airtable", "password": "patSECRET", "extra": {}}),
}


@pytest.mark.parametrize("forced", ["", "airtable"])
@pytest.mark.parametrize("value", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_connection_is_an_error_naming_it_never_the_local_store(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, forced: str, value: str
) -> None:
    monkeypatch.setenv("ENGAGEMENTS_STORE", forced)
    monkeypatch.setenv("AIRFLOW_CONN_AIRTABLE_DEFAULT", value)
    with pytest.raises(StoreError) as caught:
        get_store()
    message = str(caught.value)
    assert message.startswith("Airflow connection 'airtable_default' is malformed")
    assert "patSECRET" not in message
    assert not (tmp_path / "engagements.sqlite").exists()


def test_a_connection_that_cannot_be_looked_up_is_an_error_not_the_local_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from engagements.hooks.airtable import AirtableHook

    def unreachable(conn_id: str) -> None:
        raise ConnectionRefusedError("metadata database")

    monkeypatch.setattr(AirtableHook, "get_connection", unreachable)

    with pytest.raises(StoreError, match="'airtable_default' could not be looked up"):
        get_store()


def test_importing_the_store_and_its_choice_does_nothing() -> None:
    """No Airflow, no pyairtable, no file: DAG parsing stays cheap and side-effect free."""
    code = (
        "import sys, engagements.store, engagements.hooks.store\n"
        "heavy = {'airflow', 'pyairtable', 'sqlite3'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    env = {**os.environ, "PYTHONPATH": str(PLUGINS)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)
