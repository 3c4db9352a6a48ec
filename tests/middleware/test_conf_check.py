"""The API server's checks of lifecycle triggers and form answers, in-process: the
middleware in front of an app that records what reaches it, with Airflow's lookups answered
as the API server would (test_conf_check_api.py runs the real API server)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from engagements.middleware.conf_check import REQUIRED, ConfCheckMiddleware, Form, Param
from engagements.operators.hitl import current_values, decision_params
from engagements.params import flatten_config, param_specs

ONBOARDING = "/api/v2/dags/engagement_onboarding/dagRuns"
ANSWER = (
    "/api/v2/dags/engagement_onboarding/dagRuns/r1/taskInstances/technical_decisions/-1/hitlDetails"
)


def schema(spec: dict[str, Any]) -> dict[str, Any]:
    """A Param's JSON schema, as Airflow keeps it: every keyword but default and description."""
    return {k: v for k, v in spec.items() if k not in ("default", "description")}


class Lookup:
    def __init__(self, *, allowed: bool = True, form: Form | None = None) -> None:
        self.is_allowed = allowed
        self.the_form = form

    async def allowed(self, scope, dag_id, method, entity) -> bool:
        return self.is_allowed

    def trigger_params(self, dag_id: str) -> dict[str, Param] | None:
        if dag_id == "engagement_onboarding":
            return {
                key: Param(spec.get("default", REQUIRED), schema(spec))
                for key, spec in param_specs().items()
            }
        if dag_id == "engagement_cost_watch":
            return {"community_id": Param(None, {}), "month": Param(None, {})}
        return None

    def form(self, dag_id, run_id, task_id, map_index) -> Form | None:
        return self.the_form


@pytest.fixture
def reached() -> list[tuple[str, bytes]]:
    return []


def client(reached: list, lookup: Lookup) -> TestClient:
    async def app(scope, receive, send):
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        reached.append((scope["path"], body))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    return TestClient(ConfCheckMiddleware(app, lookup))


@pytest.fixture
def conf(example_dict) -> dict:
    return flatten_config(copy.deepcopy(example_dict))


def test_a_good_conf_reaches_airflow_unchanged(reached, conf):
    body = json.dumps({"logical_date": None, "conf": conf}).encode()
    response = client(reached, Lookup()).post(
        ONBOARDING, content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200
    assert reached == [(ONBOARDING, body)]


def test_an_unknown_key_is_refused(reached, conf):
    response = client(reached, Lookup()).post(
        ONBOARDING, json={"logical_date": None, "conf": conf | {"cloud.regoin": "us-west-2"}}
    )
    assert response.status_code == 400
    assert response.json()["problems"] == [
        "cloud.regoin: unknown key (check its spelling against the DAG's trigger form)"
    ]
    assert reached == []


def test_rules_across_keys_are_refused_in_the_words_of_validate(reached, conf):
    conf["contract.end"] = "2026-01-01"
    conf["cloud.provider"] = "gcp"
    response = client(reached, Lookup()).post(ONBOARDING, json={"logical_date": None, "conf": conf})
    assert response.status_code == 400
    problems = response.json()["problems"]
    assert "contract: end (2026-01-01) must be after start (2026-12-01)" in problems
    assert any(p.startswith("cloud: region 'us-west-2' is not a gcp region") for p in problems)
    assert reached == []


def test_a_value_its_param_refuses_is_left_to_airflow_which_names_the_param(reached, conf):
    response = client(reached, Lookup()).post(
        ONBOARDING, json={"logical_date": None, "conf": conf | {"tier": "platinum"}}
    )
    assert response.status_code == 200
    assert len(reached) == 1


def test_other_lifecycle_dags_refuse_unknown_keys(reached):
    response = client(reached, Lookup()).post(
        "/api/v2/dags/engagement_cost_watch/dagRuns",
        json={"logical_date": None, "conf": {"communityid": "openscience"}},
    )
    assert response.status_code == 400
    assert reached == []


@pytest.mark.parametrize(
    ("path", "lookup"),
    [
        ("/api/v2/dags/someone_elses_dag/dagRuns", Lookup()),
        (ONBOARDING, Lookup(allowed=False)),
    ],
    ids=["not a lifecycle DAG", "not allowed: Airflow answers"],
)
def test_what_is_not_ours_to_check_passes_through(reached, path, lookup):
    response = client(reached, lookup).post(path, json={"conf": {"anything": 1}})
    assert response.status_code == 200
    assert len(reached) == 1


def form(example_config) -> Form:
    params = decision_params(current_values(example_config.to_dict()))
    return Form(params={k: p.serialize() for k, p in params.items()}, options=["OK"])


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"cloud.region": "mars-north1"}, "cloud.region: 'mars-north1' is not one of"),
        ({"cloud.region": "europe-west1"}, "cloud: region 'europe-west1' is not a aws region"),
        ({"cloud.gpu": "yes"}, "cloud.gpu: 'yes' is not of type 'boolean'"),
        ({"cloud.gpu": None}, "cloud.gpu: missing: answer every field of the form"),
        ({"cloud.colour": "blue"}, "cloud.colour: not a field of this form"),
    ],
)
def test_a_form_answer_that_breaks_a_rule_is_refused(reached, example_config, change, problem):
    answer = current_values(example_config.to_dict()) | change
    if change == {"cloud.gpu": None}:
        del answer["cloud.gpu"]
    response = client(reached, Lookup(form=form(example_config))).patch(
        ANSWER, json={"chosen_options": ["OK"], "params_input": answer}
    )
    assert response.status_code == 400
    assert any(p.startswith(problem) for p in response.json()["problems"]), response.json()
    assert reached == []


def test_a_good_answer_reaches_airflow(reached, example_config):
    answer = current_values(example_config.to_dict()) | {"cloud.region": "us-east-1"}
    response = client(reached, Lookup(form=form(example_config))).patch(
        ANSWER, json={"chosen_options": ["OK"], "params_input": answer}
    )
    assert response.status_code == 200
    assert len(reached) == 1
