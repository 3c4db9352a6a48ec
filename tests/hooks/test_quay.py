"""The Quay hook at the HTTP boundary, with bodies and errors in the shapes Quay's API returns."""

from __future__ import annotations

import json

import pytest
import responses

from engagements.hooks import connection_exists
from engagements.hooks.quay import DEFAULT_API, QuayError, QuayHook, Robot

API = "https://quay.test/api/v1"
OAUTH = "quay-oauth-token-never-logged"
ROBOT_TOKEN = "ROBOTTOKEN0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ROBOT_URL = f"{API}/organization/2i2c/robots/openscience_image_builder"


def quay_error(status: int, message: str, error_type: str = "invalid_request") -> dict:
    return {
        "detail": message,
        "error_message": message,
        "error_type": error_type,
        "title": error_type,
        "type": f"https://quay.test/api/v1/error/{error_type}",
        "status": status,
    }


ROBOT = {
    "name": "2i2c+openscience_image_builder",
    "created": "Tue, 01 Dec 2026 10:00:00 -0000",
    "last_accessed": None,
    "description": "Pushes images built by openscience-org/hub-user-image",
    "token": ROBOT_TOKEN,
    "unstructured_metadata": {},
}


@pytest.fixture(autouse=True)
def quay_connection(monkeypatch):
    conn = {"conn_type": "quay", "host": API, "password": OAUTH}
    monkeypatch.setenv("AIRFLOW_CONN_QUAY_DEFAULT", json.dumps(conn))


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def hook(waits) -> QuayHook:
    return QuayHook(sleep=waits.append)


def test_connection_contract_and_defaults(monkeypatch):
    hook = QuayHook()
    assert (hook.conn_name_attr, hook.default_conn_name, hook.conn_type) == (
        "quay_conn_id",
        "quay_default",
        "quay",
    )
    monkeypatch.setenv("AIRFLOW_CONN_QUAY_DEFAULT", json.dumps({"password": OAUTH}))
    assert QuayHook()._api[1] == DEFAULT_API == "https://quay.io/api/v1"
    monkeypatch.delenv("AIRFLOW_CONN_QUAY_DEFAULT")
    assert connection_exists("quay_default") is False


@responses.activate
def test_create_repository_sends_the_documented_body_with_the_bearer_token(hook):
    responses.post(
        f"{API}/repository",
        status=201,
        json={"namespace": "2i2c", "name": "openscience-image", "kind": "image"},
    )
    assert hook.create_repository("2i2c", "openscience-image", description="Hub image") is True
    (call,) = responses.calls
    assert call.request.headers["Authorization"] == f"Bearer {OAUTH}"
    assert json.loads(call.request.body) == {
        "namespace": "2i2c",
        "repository": "openscience-image",
        "visibility": "public",
        "description": "Hub image",
        "repo_kind": "image",
    }


@responses.activate
@pytest.mark.parametrize("status", [400, 409, 422])
def test_an_existing_repository_is_not_an_error(hook, status):
    responses.post(
        f"{API}/repository", status=status, json=quay_error(status, "Repository already exists")
    )
    assert hook.create_repository("2i2c", "openscience-image", description="d") is False


@responses.activate
def test_other_refusals_name_the_repository_and_quay_reason(hook):
    responses.post(
        f"{API}/repository", status=403, json=quay_error(403, "Unauthorized", "insufficient_scope")
    )
    with pytest.raises(QuayError, match=r"creating repository 2i2c/x: unauthorized \(HTTP 403\)"):
        hook.create_repository("2i2c", "x", description="d")


@responses.activate
def test_robot_is_created_once_then_found(hook):
    responses.get(ROBOT_URL, status=404, json=quay_error(404, "Not Found", "not_found"))
    responses.put(ROBOT_URL, status=201, json=ROBOT)
    robot, created = hook.ensure_robot("2i2c", "openscience_image_builder", description="d")
    assert created
    assert robot == Robot("2i2c+openscience_image_builder", ROBOT_TOKEN)
    assert json.loads(responses.calls[1].request.body) == {"description": "d"}

    responses.get(ROBOT_URL, status=200, json=ROBOT)
    again, created_again = hook.ensure_robot("2i2c", "openscience_image_builder", description="d")
    assert (again, created_again) == (robot, False)
    assert [c.request.method for c in responses.calls] == ["GET", "PUT", "GET"]


@responses.activate
def test_robot_created_by_a_concurrent_run_is_used(hook):
    responses.get(ROBOT_URL, status=404, json=quay_error(404, "Not Found", "not_found"))
    responses.put(
        ROBOT_URL,
        status=400,
        json=quay_error(400, "Existing robot with name: 2i2c+openscience_image_builder"),
    )
    responses.get(ROBOT_URL, status=200, json=ROBOT)
    robot, created = hook.ensure_robot("2i2c", "openscience_image_builder", description="d")
    assert (robot.name, created) == ("2i2c+openscience_image_builder", False)


@responses.activate
def test_permission_for_the_robot(hook):
    url = (
        f"{API}/repository/2i2c/openscience-image/permissions/user/2i2c%2Bopenscience_image_builder"
    )
    responses.put(
        url,
        status=200,
        json={"role": "write", "name": "2i2c+openscience_image_builder", "is_robot": True},
    )
    hook.set_repository_permission("2i2c", "openscience-image", "2i2c+openscience_image_builder")
    assert json.loads(responses.calls[0].request.body) == {"role": "write"}


@responses.activate
def test_permission_on_a_missing_repository_is_a_404_error(hook):
    url = f"{API}/repository/2i2c/nope/permissions/user/2i2c%2Brobot"
    responses.put(url, status=404, json=quay_error(404, "Not Found", "not_found"))
    with pytest.raises(QuayError, match=r"giving 2i2c\+robot write access to 2i2c/nope.*404"):
        hook.set_repository_permission("2i2c", "nope", "2i2c+robot")


@responses.activate
def test_rate_limit_is_retried_after_the_time_quay_asks(hook, waits):
    responses.post(f"{API}/repository", status=429, headers={"Retry-After": "3"}, body="")
    responses.post(f"{API}/repository", status=201, json={"namespace": "2i2c", "name": "x"})
    assert hook.create_repository("2i2c", "x", description="d") is True
    assert waits == [3.0]


@responses.activate
def test_a_long_rate_limit_fails_fast_for_airflow_to_retry_later(hook, waits):
    responses.post(f"{API}/repository", status=429, headers={"Retry-After": "600"}, body="")
    with pytest.raises(QuayError, match=r"asks to wait 600 s.*HTTP 429"):
        hook.create_repository("2i2c", "x", description="d")
    assert waits == []


@responses.activate
def test_gateway_errors_back_off_then_give_up_with_the_status(hook, waits):
    responses.get(ROBOT_URL, status=503, body="Service Unavailable")
    with pytest.raises(QuayError, match=r"reading robot 2i2c\+openscience_image_builder.*503"):
        hook.ensure_robot("2i2c", "openscience_image_builder", description="d")
    assert waits == [1.0, 2.0, 4.0]
    assert len(responses.calls) == 4


@responses.activate
def test_tokens_are_never_in_logs_errors_or_reprs(hook, caplog):
    caplog.set_level("DEBUG")
    responses.get(ROBOT_URL, status=200, json=ROBOT)
    robot, _ = hook.ensure_robot("2i2c", "openscience_image_builder", description="d")
    responses.put(
        f"{API}/repository/2i2c/x/permissions/user/2i2c%2Bopenscience_image_builder",
        status=401,
        json=quay_error(401, "Requires authentication", "invalid_token"),
    )
    with pytest.raises(QuayError) as raised:
        hook.set_repository_permission("2i2c", "x", robot.name)
    assert "check the OAuth token" in str(raised.value)
    for text in (caplog.text, str(raised.value), repr(robot), repr(hook)):
        assert ROBOT_TOKEN not in text
        assert OAUTH not in text
