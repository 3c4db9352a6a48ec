from __future__ import annotations

import copy

import pytest
from airflow.sdk.definitions.param import ParamsDict
from airflow.sdk.exceptions import ParamValidationError

from engagements.config import ConfigError
from engagements.params import build_params, config_from_params, flatten_config, param_specs


def _validate(conf: dict) -> dict:
    """What Airflow does with a trigger's conf before it creates a run."""
    params = ParamsDict(build_params())
    params.update(conf)
    return params.validate()


def test_every_config_key_is_a_param(example_dict):
    flat = flatten_config(example_dict)
    assert set(flat) == set(param_specs())


def test_params_have_sections_descriptions_and_dropdowns():
    specs = param_specs()
    assert specs["cloud.provider"]["enum"] == ["aws", "gcp", "azure", "jetstream2"]
    assert specs["hubs.workshop.auth"]["section"] == "Hubs"
    assert specs["contract.signed_on"]["format"] == "date"
    assert all(spec["section"] for spec in specs.values())
    assert specs["cloud.region"]["description"]
    assert specs["images.offered"]["examples"] == ["scipy", "datascience", "pangeo", "rocker"]


def test_example_conf_passes_trigger_validation_and_round_trips(example_dict, example_config):
    values = _validate(flatten_config(example_dict))
    assert config_from_params(values) == example_config


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("community_id", "Open Science"),
        ("community_id", "open--science"),
        ("cloud.provider", "oracle"),
        ("contract.signed_on", "2026-13-01"),
        ("contract.expected_maus", 0),
        ("hubs.community.auth", "password"),
    ],
)
def test_bad_conf_is_refused_at_trigger_naming_the_key(example_dict, key, value):
    conf = {**flatten_config(example_dict), key: value}
    with pytest.raises(ParamValidationError, match=key.replace(".", r"\.")):
        _validate(conf)


def test_two_technical_leads_refused_at_trigger(example_dict):
    conf = flatten_config(copy.deepcopy(example_dict))
    conf["representatives"][1]["technical_lead"] = True
    with pytest.raises(ParamValidationError, match="representatives"):
        _validate(conf)


def test_missing_required_key_refused_at_trigger(example_dict):
    conf = flatten_config(example_dict)
    del conf["contract.signed_on"]
    with pytest.raises(ParamValidationError, match=r"contract\.signed_on"):
        _validate(conf)


def test_cross_key_rules_are_checked_by_the_model(example_dict):
    conf = {**flatten_config(example_dict), "contract.end": "2026-01-01"}
    values = _validate(conf)
    with pytest.raises(ConfigError, match="contract"):
        config_from_params(values)


def test_unknown_conf_key_is_an_error(example_dict):
    conf = {**flatten_config(example_dict), "cloud.regoin": "x"}
    with pytest.raises(ConfigError, match=r"cloud\.regoin"):
        config_from_params(conf)
