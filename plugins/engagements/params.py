"""Trigger-form Params derived from :class:`CommunityConfig`'s JSON schema.

One schema, not two: every leaf key of the config becomes one Param named by its dotted path
(``cloud.provider``), grouped in a form section per top-level key, with the model's
description, enums as drop-downs and the model's constraints, so that Airflow refuses bad
conf at trigger time naming the key. Rules across keys (one technical lead, end after start,
region of the provider) are checked with the same model when the run is triggered (the API
server's conf check, :mod:`engagements.middleware.conf_check`) and again by the first task.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from engagements.config import REGIONS, CommunityConfig, ConfigError, parse_config

SECTIONS: dict[str, str] = {
    "community_id": "Community",
    "name": "Community",
    "tier": "Community",
    "website": "Community",
    "github_org": "Community",
    "domain": "Community",
    "representatives": "People",
    "invoice_contact": "People",
    "contract": "Contract",
    "answers": "Written answers",
    "cloud": "Cloud",
    "hubs": "Hubs",
    "branding": "Branding",
    "images": "Images",
    "storage": "Storage",
}

# Leaves that stay whole (lists of objects, optional objects) rather than being split up.
_WHOLE = {"representatives", "invoice_contact", "branding.funded_by"}
_SCHEMA_KEYS = (
    "type",
    "enum",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "format",
    "items",
    "minItems",
    "properties",
    "required",
    "additionalProperties",
)


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    """Inline ``$ref``s and fold ``anyOf: [X, null]`` into ``type: [X, "null"]``."""
    if isinstance(node, list):
        return [_resolve(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = _resolve(copy.deepcopy(defs[node["$ref"].split("/")[-1]]), defs)
        rest = {k: v for k, v in node.items() if k != "$ref"}
        return {**target, **_resolve(rest, defs)}
    node = {k: _resolve(v, defs) for k, v in node.items()}
    any_of = node.pop("anyOf", None)
    if any_of is not None:
        non_null = [s for s in any_of if s.get("type") != "null"]
        if len(non_null) == 1 and len(any_of) == 2:
            inner = non_null[0]
            inner_type = inner.get("type", "object")
            node = {**inner, **node, "type": [inner_type, "null"]}
            if "enum" in node:
                node["enum"] = [*node["enum"], None]
        else:
            node["anyOf"] = any_of
    if node.get("type") == "object" and "properties" in node:
        node.setdefault("additionalProperties", False)
    return node


def config_json_schema() -> dict[str, Any]:
    """The config's JSON schema with references inlined."""
    schema = CommunityConfig.model_json_schema(mode="validation")
    return _resolve(schema, schema.get("$defs", {}))


def _leaves(prefix: str, node: dict[str, Any], required: bool):
    if node.get("type") == "object" and "properties" in node and prefix not in _WHOLE:
        req = set(node.get("required", []))
        for name, child in node["properties"].items():
            yield from _leaves(f"{prefix}.{name}" if prefix else name, child, name in req)
        return
    yield prefix, node, required


def param_specs() -> dict[str, dict[str, Any]]:
    """Param keyword arguments per dotted key, in form order."""
    specs: dict[str, dict[str, Any]] = {}
    for key, node, required in _leaves("", config_json_schema(), True):
        spec = {k: copy.deepcopy(node[k]) for k in _SCHEMA_KEYS if k in node}
        spec.pop("title", None)
        if "type" not in spec and "enum" in spec:
            spec["type"] = "string"
        if "default" in node:
            spec["default"] = node["default"]
        elif not required and "null" not in spec.get("type", []):
            spec["type"] = [spec.get("type", "string"), "null"]
            spec["default"] = None
        elif not required:
            spec["default"] = None
        spec["title"] = key
        spec["description"] = node.get("description", "")
        spec["section"] = SECTIONS[key.split(".")[0]]
        if "enum" in spec and isinstance(spec.get("type"), list):
            spec["enum"] = [v for v in spec["enum"] if v is not None] + [None]
        if spec.get("type") == "array" and "enum" in spec.get("items", {}):
            spec["examples"] = list(spec["items"]["enum"])
        specs[key] = spec
    specs["community_id"]["not"] = {"pattern": "--"}
    specs["cloud.region"]["enum"] = sorted({r for regions in REGIONS.values() for r in regions})
    for key in ("answers.future", "answers.community", "answers.mission", "answers.data"):
        specs[key]["format"] = "multiline"
    specs["representatives"].update(
        contains={
            "properties": {"technical_lead": {"const": True}},
            "required": ["technical_lead"],
        },
        minContains=1,
        maxContains=1,
    )
    order = list(dict.fromkeys(SECTIONS.values()))
    return dict(sorted(specs.items(), key=lambda item: order.index(item[1]["section"])))


def build_params() -> dict[str, Any]:
    """Airflow ``Param`` objects for the onboarding DAG's trigger form."""
    from airflow.sdk import Param

    return {key: Param(**spec) for key, spec in param_specs().items()}


def flatten_config(data: dict[str, Any]) -> dict[str, Any]:
    """A config mapping as the trigger form's conf (dotted keys), for REST and the CLI."""
    flat: dict[str, Any] = {}
    keys = set(param_specs())

    def walk(prefix: str, value: Any) -> None:
        if prefix in keys:
            flat[prefix] = value
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        else:
            flat[prefix] = value

    walk("", data)
    return flat


def unflatten(params: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys back into the nested config mapping."""
    nested: dict[str, Any] = {}
    for dotted, value in params.items():
        node = nested
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError([(dotted, f"{part} is not a mapping")])
        node[leaf] = value
    return nested


def config_from_params(params: dict[str, Any]) -> CommunityConfig:
    """Validate the run's params as one community config; every problem names its key."""
    return parse_config(unflatten(dict(params)))


def decision_problems(answer: dict[str, Any]) -> list[tuple[str, str]]:
    """The problems of a technical-decisions answer that only show across its fields (the
    region of the provider, a zone in that region, the account's format for the provider, an
    authenticated community hub), in the config model's own words.

    The answer is applied to a valid stand-in config, so every problem is the answer's.
    """
    today = dt.datetime.now(dt.UTC).date()
    stand_in = {
        "community_id": "stand-in",
        "name": "Stand-in",
        "representatives": [
            {"name": "A", "email": "a@example.org", "github": "a", "technical_lead": True}
        ],
        "contract": {
            "signed_on": str(today),
            "start": str(today),
            "end": str(today + dt.timedelta(days=365)),
            "revenue_usd": 1,
            "expected_maus": 1,
        },
        "cloud": {"provider": "aws", "region": "us-west-2"},
    }
    try:
        parse_config(stand_in).with_decisions(answer)
    except ConfigError as exc:
        return exc.problems
    return []
