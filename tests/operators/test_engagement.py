"""The one-onboarding-at-a-time guard as the task runner answers it: found, not found, error."""

from __future__ import annotations

from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowRuntimeError, ErrorType
from airflow.sdk.execution_time.comms import ErrorResponse

from engagements.operators.engagement import RegisterEngagementOperator
from engagements.params import flatten_config


def relayed(status: int, reason: str) -> AirflowRuntimeError:
    """What ``ti.get_dagrun_state`` raises when the execution API answers an error: the
    supervisor relays the ``ServerResponseError`` as an ``API_SERVER_ERROR`` response."""
    detail = {"detail": {"reason": reason, "message": f"HTTP {status}"}}
    return AirflowRuntimeError(
        ErrorResponse(
            error=ErrorType.API_SERVER_ERROR,
            detail={"status_code": status, "message": f"{status} {reason}", "detail": detail},
        )
    )


def in_process(status: int) -> Exception:
    """What a task run in-process (``dag.test``) gets: the client's own error."""
    import httpx
    from airflow.sdk.api.client import ServerResponseError

    request = httpx.Request("GET", "http://in-process/execution/dag-runs/x/r/state")
    response = httpx.Response(
        status,
        json={"detail": {"reason": "not_found" if status == 404 else "error"}},
        request=request,
    )
    return ServerResponseError.from_response(response)


class FakeTaskInstance:
    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.asked: list[tuple[str, str]] = []

    def get_dagrun_state(self, dag_id: str, run_id: str) -> str:
        self.asked.append((dag_id, run_id))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


class FakeDag:
    dag_id = "engagement_onboarding"


def register(store, example_dict, answer: Any, run_id: str = "run-2") -> FakeTaskInstance:
    ti = FakeTaskInstance(answer)
    op = RegisterEngagementOperator(task_id="register")
    op.store = store
    op.execute({"params": flatten_config(example_dict), "dag": FakeDag(), "ti": ti,
                "run_id": run_id})  # fmt: skip
    return ti


def test_an_api_error_while_reading_the_other_run_fails_and_stores_nothing(store, example_dict):
    """The store names run "r" (the fixture's onboarding); Airflow cannot say its state."""
    with pytest.raises(RuntimeError, match="cannot tell whether run 'r' of engagement_onboarding"):
        register(store, example_dict, relayed(500, "internal server error"))
    assert store.get_engagement("openscience").onboarding_run_id == "r"
    with pytest.raises(RuntimeError, match="API server unreachable"):
        register(store, example_dict, ConnectionError("API server unreachable"))
    assert store.get_engagement("openscience").onboarding_run_id == "r"


def test_a_run_airflow_no_longer_has_does_not_block(store, example_dict):
    ti = register(store, example_dict, relayed(404, "not_found"))
    assert ti.asked == [("engagement_onboarding", "r")]
    assert store.get_engagement("openscience").onboarding_run_id == "run-2"


def test_a_running_first_run_refuses_the_second(store, example_dict):
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match="already being onboarded by run 'r'"):
        register(store, example_dict, "running")
    assert store.get_engagement("openscience").onboarding_run_id == "r"


def test_in_process_answers_are_told_apart_the_same_way(store, example_dict):
    with pytest.raises(RuntimeError, match="cannot tell"):
        register(store, example_dict, in_process(503))
    assert store.get_engagement("openscience").onboarding_run_id == "r"
    register(store, example_dict, in_process(404))
    assert store.get_engagement("openscience").onboarding_run_id == "run-2"


def test_follow_ups_without_a_recorded_outcome_are_skipped_not_green(store):
    """rollout_outcome marked success instead of answered: no requirement is known."""
    from airflow.sdk.exceptions import AirflowSkipException

    from engagements.operators.engagement import RecordFollowUpsOperator

    op = RecordFollowUpsOperator(task_id="record_follow_up_issues", community_id="openscience")
    op.store = store
    with pytest.raises(AirflowSkipException, match="no rollout meeting outcome is recorded"):
        op.execute({})
    store.record_action("openscience", "rollout-outcome", "meeting", {"requirements": ["GPU"]})
    assert len(op.execute({})) == 1
