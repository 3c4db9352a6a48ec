from __future__ import annotations

import copy
import datetime as dt

import pytest

from engagements.config import ConfigError, next_iteration, parse_config


def problems(data) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return dict(info.value.problems)


def test_example_is_valid_and_derives_values(example_config):
    c = example_config
    assert c.hub_urls == {
        "community": "https://openscience.2i2c.cloud",
        "workshop": "https://workshop.openscience.2i2c.cloud",
        "binder": "https://binder.openscience.2i2c.cloud",
    }
    assert c.grafana_url == "https://grafana.openscience.2i2c.cloud"
    assert c.cluster_name == "openscience"
    assert c.admin_users == ["adalovelace", "ghopper"]
    assert c.technical_lead.name == "Ada Lovelace"
    # The first full two-week iteration after the contract is signed (the welcome email's).
    start, end = next_iteration(c.contract.signed_on)
    assert start > c.contract.signed_on
    assert start.weekday() == 0
    assert (end - start).days == 13


def test_config_is_frozen(example_config):
    with pytest.raises(Exception, match="frozen"):
        example_config.name = "x"


@pytest.mark.parametrize(
    "bad_id",
    [
        "OpenScience",
        "open science",
        "open--science",
        "a" * 64,
        "../etc",
        "x;rm -rf",
        "ab",
        "9lives",
        "end-",
    ],
)
def test_invalid_community_ids_are_refused(example_dict, bad_id):
    data = {**example_dict, "community_id": bad_id}
    assert "community_id" in problems(data)


def test_missing_representatives(example_dict):
    data = {**example_dict, "representatives": []}
    assert "representatives" in problems(data)
    del data["representatives"]
    assert problems(data)["representatives"] == "Field required"


def test_two_technical_leads(example_dict):
    data = copy.deepcopy(example_dict)
    data["representatives"][1]["technical_lead"] = True
    assert "exactly one" in problems(data)["representatives"]


def test_end_before_start(example_dict):
    data = copy.deepcopy(example_dict)
    data["contract"]["end"] = "2026-01-01"
    assert "must be after start" in problems(data)["contract"]


def test_malformed_email_names_the_key(example_dict):
    data = copy.deepcopy(example_dict)
    data["representatives"][0]["email"] = "ada-at-example"
    assert "email address" in problems(data)["representatives[0].email"]


def test_unknown_keys_are_errors(example_dict):
    data = copy.deepcopy(example_dict)
    data["cloud"]["regoin"] = "us-west-2"
    data["colour"] = "blue"
    found = problems(data)
    assert "unknown key" in found["cloud.regoin"]
    assert "unknown key" in found["colour"]


def test_all_problems_reported_at_once(example_dict):
    data = copy.deepcopy(example_dict)
    data["community_id"] = "Bad Id"
    data["representatives"][0]["github"] = "-bad-"
    data["cloud"]["region"] = "mars-1"
    found = problems(data)
    assert {"community_id", "representatives[0].github", "cloud"} <= set(found)
    assert "not a aws region" in found["cloud"]


def test_region_must_belong_to_provider(example_dict):
    data = copy.deepcopy(example_dict)
    data["cloud"]["provider"] = "gcp"
    data["cloud"]["account"] = "my-project"
    assert "us-west-2" in problems(data)["cloud"]
    data["cloud"]["region"] = "us-central1"
    data["cloud"]["zone"] = "us-central1-b"
    assert parse_config(data).cloud.zone == "us-central1-b"


def test_own_domain_changes_urls(example_dict):
    c = parse_config({**example_dict, "domain": "hub.openscience.org"})
    assert c.hub_urls["workshop"] == "https://workshop.hub.openscience.org"


def test_with_decisions_revalidates(example_config):
    changed = example_config.with_decisions(
        {"cloud.gpu": True, "hubs.community.dask_gateway": True}
    )
    assert changed.cloud.gpu
    assert changed.hubs.community.dask_gateway
    assert not example_config.cloud.gpu
    with pytest.raises(ConfigError, match="cloud"):
        example_config.with_decisions({"cloud.region": "nowhere"})


def test_missing_answers(example_dict):
    data = copy.deepcopy(example_dict)
    data["answers"]["data"] = "  "
    del data["answers"]["future"]
    assert parse_config(data).missing_answers == ["future", "data"]


def test_dates_parse(example_config):
    assert example_config.contract.signed_on == dt.date(2026, 11, 20)
