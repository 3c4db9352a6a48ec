"""Refuse, at the API server, what a lifecycle run or form would otherwise fail on later.

Airflow checks a trigger's conf one Param at a time and accepts keys it does not know; it
checks a form's answer only against its options. This ASGI middleware (installed on the API
server by the ``engagements_api_checks`` plugin) answers HTTP 400 before anything is created:

- ``POST /api/v2/dags/<lifecycle DAG>/dagRuns``: a conf key the DAG has no Param for; and for
  ``engagement_onboarding``, once every Param accepts its value (Airflow itself answers
  ``Invalid input for param <key>`` otherwise), the rules of the community config across
  keys, with the same model and messages as ``engagements validate`` (``key.path: reason``).
- ``PATCH .../taskInstances/<task>/<map index>/hitlDetails`` of a lifecycle DAG's form: an
  answer that leaves a field out or adds one, a value its Param refuses, and the rules across
  a form's fields (the technical decisions' region of the provider, say).

Only requests of a user who may make them are checked (anyone else gets Airflow's own 401 or
403); everything else passes through untouched, body included.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import unquote

LIFECYCLE_TAG = "engagement-lifecycle"
ONBOARDING = "engagement_onboarding"
TRIGGER = re.compile(r"/api/v2/dags/(?P<dag_id>[^/]+)/dagRuns/?")
ANSWER = re.compile(
    r"/api/v2/dags/(?P<dag_id>[^/]+)/dagRuns/(?P<run_id>[^/]+)/taskInstances/"
    r"(?P<task_id>[^/]+)/(?P<map_index>-?\d+)/hitlDetails/?"
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Problems = list[tuple[str, str]]
REQUIRED = object()
"""The default of a Param that has none: the conf must give it."""


@dataclass(frozen=True)
class Param:
    """A DAG's Param as the checks need it: its default (or :data:`REQUIRED`) and schema."""

    default: Any
    schema: dict[str, Any]


@dataclass(frozen=True)
class Form:
    """A form waiting for its answer: its fields' serialized Params and its options."""

    params: dict[str, dict[str, Any]]
    options: list[str]


class Lookup(Protocol):
    """What the checks need from Airflow; :class:`AirflowLookup` asks the API server's own."""

    async def allowed(self, scope: Scope, dag_id: str, method: str, entity: str) -> bool: ...

    def trigger_params(self, dag_id: str) -> dict[str, Param] | None:
        """Each Param of a lifecycle DAG; None for any other DAG."""

    def form(self, dag_id: str, run_id: str, task_id: str, map_index: int) -> Form | None:
        """The lifecycle DAG's form waiting for an answer; None otherwise."""


class ConfCheckMiddleware:
    """Pure ASGI middleware: reads the body of the requests it checks and replays it."""

    def __init__(self, app: Callable[..., Awaitable[None]], lookup: Lookup | None = None):
        self.app = app
        self.lookup = lookup or AirflowLookup()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        check = self._check_for(scope)
        if check is None:
            await self.app(scope, receive, send)
            return
        body, replay = await _buffer(receive)
        try:
            payload = json.loads(body or b"null")
        except ValueError:
            payload = None  # Airflow answers malformed JSON itself
        problems = await check(scope, payload) if isinstance(payload, dict) else []
        if problems:
            await _refuse(send, problems)
            return
        await self.app(scope, replay, send)

    def _check_for(self, scope: Scope):
        if scope.get("type") != "http":
            return None
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        method = scope.get("method")
        if method == "POST" and (found := TRIGGER.fullmatch(path)):
            return lambda s, p: self._trigger(s, unquote(found["dag_id"]), p)
        if method == "PATCH" and (found := ANSWER.fullmatch(path)):
            where = {k: unquote(v) for k, v in found.groupdict().items()}
            return lambda s, p: self._answer(s, where, p)
        return None

    async def _trigger(self, scope: Scope, dag_id: str, body: dict[str, Any]) -> Problems:
        from starlette.concurrency import run_in_threadpool

        conf = body.get("conf") or {}
        if not isinstance(conf, dict) or not await self.lookup.allowed(
            scope, dag_id, "POST", "RUN"
        ):
            return []
        params = await run_in_threadpool(self.lookup.trigger_params, dag_id)
        return [] if params is None else conf_problems(dag_id, conf, params)

    async def _answer(self, scope: Scope, where: dict[str, str], body: dict[str, Any]) -> Problems:
        from starlette.concurrency import run_in_threadpool

        dag_id = where["dag_id"]
        if not await self.lookup.allowed(scope, dag_id, "PUT", "HITL_DETAIL"):
            return []
        form = await run_in_threadpool(
            self.lookup.form, dag_id, where["run_id"], where["task_id"], int(where["map_index"])
        )
        answer = body.get("params_input") or {}
        if form is None or not isinstance(answer, dict):
            return []
        chosen = body.get("chosen_options") or []
        return answer_problems(where["task_id"], form, chosen, answer)


def conf_problems(dag_id: str, conf: dict[str, Any], params: dict[str, Param]) -> Problems:
    """A trigger's conf: keys the DAG does not take, then (onboarding) the config's rules
    across keys. A value its own Param refuses is left to Airflow, which names the Param."""
    problems = [
        (key, "unknown key (check its spelling against the DAG's trigger form)")
        for key in conf
        if key not in params
    ]
    if problems or dag_id != ONBOARDING or _refused_by_a_param(conf, params):
        return problems
    from engagements.config import ConfigError
    from engagements.params import config_from_params

    given = {key: p.default for key, p in params.items() if p.default is not REQUIRED}
    try:
        config_from_params(given | conf)
    except ConfigError as exc:
        return exc.problems
    return []


def _refused_by_a_param(conf: dict[str, Any], params: dict[str, Param]) -> bool:
    from jsonschema import FormatChecker, validate
    from jsonschema.exceptions import ValidationError

    for key, value in conf.items():
        try:
            validate(value, params[key].schema, format_checker=FormatChecker())
        except ValidationError:
            return True
    return any(p.default is REQUIRED and key not in conf for key, p in params.items())


def answer_problems(
    task_id: str, form: Form, chosen: list[str], answer: dict[str, Any]
) -> Problems:
    """A form's answer: every field and no other, each as its Param allows, then the rules
    across the form's fields."""
    from jsonschema import FormatChecker, validate
    from jsonschema.exceptions import ValidationError

    problems = [
        (key, "missing: answer every field of the form") for key in form.params if key not in answer
    ]
    problems += [(key, "not a field of this form") for key in answer if key not in form.params]
    for key, param in form.params.items():
        if key not in answer:
            continue
        try:
            validate(answer[key], param.get("schema") or {}, format_checker=FormatChecker())
        except ValidationError as exc:
            problems.append((key, exc.message))
    if problems:
        return problems
    rule = FORM_RULES.get(task_id)
    return rule(chosen, answer) if rule else []


def _decisions(chosen: list[str], answer: dict[str, Any]) -> Problems:
    from engagements.params import decision_problems

    return decision_problems(answer)


def _renewal(chosen: list[str], answer: dict[str, Any]) -> Problems:
    if "Renewed" in chosen and not answer.get("new_end"):
        return [("new_end", "Renewed needs the new contract end")]
    return []


def _teardown(chosen: list[str], answer: dict[str, Any]) -> Problems:
    if "Approve" in chosen and not (answer.get("confirm_community_id") or "").strip():
        return [("confirm_community_id", "Approve needs the community id typed here")]
    return []


FORM_RULES: dict[str, Callable[[list[str], dict[str, Any]], Problems]] = {
    "technical_decisions": _decisions,
    "renewal_decided": _renewal,
    "approve_teardown": _teardown,
}
"""Rules across a form's fields, by the form's task id in the lifecycle DAGs."""


async def _buffer(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body, and a ``receive`` that hands it on unchanged."""
    messages, chunks = [], []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return b"".join(chunks), replay


async def _refuse(send: Send, problems: Problems) -> None:
    lines = [f"{key}: {reason}" for key, reason in problems]
    body = json.dumps({"detail": "; ".join(lines), "problems": lines}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class AirflowLookup:
    """The API server's own authentication, DAGs and forms."""

    async def allowed(self, scope: Scope, dag_id: str, method: str, entity: str) -> bool:
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
        from airflow.api_fastapi.auth.managers.models.resource_details import (
            DagAccessEntity,
            DagDetails,
        )
        from starlette.requests import Request

        request = Request(scope)
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        token = credentials if scheme.lower() == "bearer" else None
        token = token or request.cookies.get(COOKIE_NAME_JWT_TOKEN)
        if not token:
            return False
        manager = get_auth_manager()
        try:
            user = await manager.get_user_from_token(token)
        except Exception:  # expired or invalid: Airflow answers 401/403 itself
            return False
        return manager.is_authorized_dag(
            method=method,
            access_entity=DagAccessEntity[entity],
            details=DagDetails(id=dag_id),
            user=user,
        )

    def trigger_params(self, dag_id: str) -> dict[str, Param] | None:
        from airflow.models.dagbag import DBDagBag
        from airflow.serialization.definitions.notset import is_arg_set
        from airflow.utils.session import create_session

        with create_session() as session:
            dag = DBDagBag().get_latest_version_of_dag(dag_id, session=session)
        if dag is None or LIFECYCLE_TAG not in (dag.tags or ()):
            return None
        params = {key: dag.params.get_param(key) for key in dag.params}
        return {
            key: Param(p.value if is_arg_set(p.value) else REQUIRED, dict(p.schema))
            for key, p in params.items()
        }

    def form(self, dag_id: str, run_id: str, task_id: str, map_index: int) -> Form | None:
        from airflow.models.dagbag import DBDagBag
        from airflow.models.hitl import HITLDetail
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            dag = DBDagBag().get_latest_version_of_dag(dag_id, session=session)
            if dag is None or LIFECYCLE_TAG not in (dag.tags or ()):
                return None
            detail = session.scalar(
                select(HITLDetail)
                .join(TaskInstance, TaskInstance.id == HITLDetail.ti_id)
                .where(
                    TaskInstance.dag_id == dag_id,
                    TaskInstance.run_id == run_id,
                    TaskInstance.task_id == task_id,
                    TaskInstance.map_index == map_index,
                )
            )
            if detail is None or detail.response_received:
                return None
            return Form(params=dict(detail.params or {}), options=list(detail.options or []))
