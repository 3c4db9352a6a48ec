"""Hub health: real HTTP checks against hubs served on loopback, and the plan-only skip."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from airflow.sdk import PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout, AirflowSkipException

from engagements.deployment import HUBS_HEALTHY
from engagements.deployment import INFRA_HUBS_PR as INFRA_PR
from engagements.onboarding import register
from engagements.sensors.hubs import HubHealthSensor
from engagements.store.local import LocalStore


class Hubs:
    """JupyterHubs on one loopback server: ``/<hub>/hub/health`` answers each hub's status."""

    def __init__(self) -> None:
        self.status: dict[str, int] = {}
        hubs = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                hub, _, rest = self.path.lstrip("/").partition("/")
                code = hubs.status.get(hub, 404) if rest == "hub/health" else 404
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.netloc = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def domain(self, hub: str) -> str:
        return f"{self.netloc}/{hub}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hubs():
    served = Hubs()
    yield served
    served.close()


@pytest.fixture
def store(tmp_path, example_config):
    store = LocalStore(tmp_path / "store.sqlite")
    register(store, example_config, run_id="r", run_state=lambda _: None)
    return store


def record_change(store, kind: str, domains: dict[str, str]) -> None:
    store.record_action("openscience", INFRA_PR, "pull_request", {"kind": kind, "hubs": domains})


def sensor(store, **kwargs) -> HubHealthSensor:
    op = HubHealthSensor(
        task_id="hubs_healthy",
        community_id="openscience",
        health_url="http://{domain}/hub/health",
        request_timeout=2,
        **kwargs,
    )
    op.store = store
    return op


def test_reschedule_mode():
    assert HubHealthSensor(task_id="h").mode == "reschedule"


def test_waits_until_every_hub_answers_200(store, hubs, caplog):
    caplog.set_level("INFO")
    record_change(store, "pull_request", {h: hubs.domain(h) for h in ("staging", "prod")})
    hubs.status = {"staging": 200, "prod": 502}
    op = sensor(store)
    assert op.poke({}) is False
    assert "prod: HTTP 502 Bad Gateway" in caplog.text
    assert set(op.last_checks) == {"prod"}

    assert store.get_action("openscience", HUBS_HEALTHY) is None

    hubs.status["prod"] = 200
    result = op.poke({})
    assert isinstance(result, PokeReturnValue)
    assert result.xcom_value == {
        "staging": f"http://{hubs.domain('staging')}/hub/health",
        "prod": f"http://{hubs.domain('prod')}/hub/health",
    }
    assert store.get_action("openscience", HUBS_HEALTHY).detail == result.xcom_value


def test_timeout_reports_each_unhealthy_hub_and_its_last_answer(store, hubs):
    record_change(
        store,
        "pull_request",
        {"staging": hubs.domain("staging"), "prod": "127.0.0.1:9/prod"},
    )
    hubs.status = {"staging": 503}
    op = sensor(store, mode="poke", timeout=0)
    with pytest.raises(AirflowSensorTimeout) as timed_out:
        op.execute({})
    message = str(timed_out.value)
    assert f"staging (http://{hubs.domain('staging')}/hub/health): HTTP 503" in message
    assert "prod (http://127.0.0.1:9/prod/hub/health): ConnectionError" in message


def test_a_local_branch_is_plan_only_and_skips_with_the_reason(store, monkeypatch):
    monkeypatch.delenv("ENGAGEMENTS_HUB_HEALTH", raising=False)
    record_change(store, "local_branch", {"prod": "openscience.2i2c.cloud"})
    with pytest.raises(AirflowSkipException, match=r"local git repository.*plan only") as skipped:
        sensor(store).poke({})
    assert "prod (https://openscience.2i2c.cloud)" in str(skipped.value)


def test_always_checks_even_a_local_branch(store, hubs, monkeypatch):
    monkeypatch.setenv("ENGAGEMENTS_HUB_HEALTH", "always")
    record_change(store, "local_branch", {"prod": hubs.domain("prod")})
    hubs.status = {"prod": 200}
    assert sensor(store).poke({}).is_done


def test_never_skips(store, monkeypatch):
    monkeypatch.setenv("ENGAGEMENTS_HUB_HEALTH", "never")
    record_change(store, "pull_request", {"prod": "openscience.2i2c.cloud"})
    with pytest.raises(AirflowSkipException, match="engagements_hub_health is never"):
        sensor(store).poke({})


def test_an_unknown_mode_is_refused(store, monkeypatch):
    monkeypatch.setenv("ENGAGEMENTS_HUB_HEALTH", "sometimes")
    record_change(store, "pull_request", {})
    with pytest.raises(AirflowFailException, match="use one of auto, always, never"):
        sensor(store).poke({})
