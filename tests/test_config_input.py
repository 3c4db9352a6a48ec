"""Bad input in a community config is one problem naming its key, never an exception or a
silent pass: the file as read (encoding, duplicate keys, dates, numbers) and the values."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest
import yaml

from engagements.config import ConfigError, load_config, parse_config


def problems_of_file(tmp_path, text: str | bytes, suffix: str = ".yaml") -> list[tuple[str, str]]:
    path = tmp_path / f"community{suffix}"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


def example_text(example_path, old: str, new: str) -> str:
    text = example_path.read_text()
    assert old in text
    return text.replace(old, new)


def test_a_file_that_is_not_utf8(tmp_path, example_path):
    text = example_text(example_path, "name: Open Science Collective", "name: Caf\xe9")
    offset = text.index("\xe9")
    assert problems_of_file(tmp_path, text.encode("latin-1")) == [
        ("(file)", f"not UTF-8 text (byte 0xe9 at offset {offset})")
    ]


def test_a_missing_file(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.yaml")
    assert caught.value.problems == [("(file)", "cannot read it: No such file or directory")]


def test_an_impossible_date_is_named_by_its_key(tmp_path, example_path):
    text = example_text(example_path, "end: 2027-11-30", "end: 2027-02-30")
    ((key, reason),) = problems_of_file(tmp_path, text)
    assert key == "contract.end"
    assert "day value is outside expected range" in reason


def test_a_key_given_twice_in_yaml(tmp_path, example_path):
    text = example_text(
        example_path, "  end: 2027-11-30\n", "  end: 2027-11-30\n  end: 2028-11-30\n"
    )
    ((key, reason),) = problems_of_file(tmp_path, text)
    assert key == "contract.end"
    assert reason.startswith("given twice (lines ")


def test_a_key_given_twice_in_json(tmp_path):
    assert problems_of_file(tmp_path, '{"name": "a", "name": "b"}', ".json") == [
        ("name", "this key is given more than once")
    ]


@pytest.mark.parametrize("number", [".inf", "-.inf", ".nan"])
def test_infinite_numbers_in_yaml(tmp_path, example_path, number):
    text = example_text(example_path, "revenue_usd: 48000", f"revenue_usd: {number}")
    assert problems_of_file(tmp_path, text) == [
        ("contract.revenue_usd", "Input should be a finite number")
    ]


@pytest.mark.parametrize("number", ["Infinity", "NaN"])
def test_infinite_numbers_in_json(tmp_path, example_dict, number):
    text = json.dumps(example_dict).replace('"revenue_usd": 48000.0', f'"revenue_usd": {number}')
    assert problems_of_file(tmp_path, text, ".json") == [
        ("(file)", f"not valid JSON: {number} is not a number")
    ]


def test_the_example_reads_the_same_as_before(example_path):
    assert (
        load_config(example_path).to_dict()
        == parse_config(yaml.safe_load(example_path.read_text())).to_dict()
    )


def change(example_dict, dotted: str, value) -> dict:
    data = copy.deepcopy(example_dict)
    node = data
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[leaf] = value
    return data


def problems(data) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return dict(caught.value.problems)


FAR = dt.date.today().replace(year=dt.date.today().year + 30, day=1).isoformat()


@pytest.mark.parametrize(
    ("dotted", "value", "key", "reason"),
    [
        ("contract.end", "9999-12-31", "contract.end", "9999-12-31 is more than 10 years ahead"),
        ("contract.end", FAR, "contract.end", f"{FAR} is more than 10 years ahead"),
        ("contract.start", "1999-12-31", "contract.start", "1999-12-31 is before 2000-01-01"),
        ("contract.signed_on", "2028-01-01", "contract", "signed_on (2028-01-01) is after the end"),
        ("contract.revenue_usd", True, "contract.revenue_usd", "Input should be a valid number"),
        ("contract.revenue_usd", 1e26, "contract.revenue_usd", "less than or equal to 100000000"),
        ("contract.expected_maus", False, "contract.expected_maus", "valid integer"),
        ("contract.hubspot_deal_id", 2**60, "contract.hubspot_deal_id", "less than or equal"),
        ("storage.home_quota_gb", True, "storage.home_quota_gb", "valid integer"),
        ("cloud.gpu", 1, "cloud.gpu", "Input should be a valid boolean"),
        ("hubs.binder.enabled", "yes", "hubs.binder.enabled", "Input should be a valid boolean"),
        ("name", "Open\x1b[2JScience", "name", "contains the control character U+001B"),
        ("representatives.0.name", "Ada\rX", "representatives[0].name", "U+000D"),
        ("website", "javascript:alert(1)", "website", "expected an http(s) URL"),
    ],
)
def test_values_a_person_cannot_have_meant(example_dict, dotted, value, key, reason):
    found = problems(change(example_dict, dotted, value))
    assert key in found, found
    assert reason in found[key]


def test_written_answers_may_have_several_lines(example_dict):
    parse_config(change(example_dict, "answers.future", "One.\n\n\tTwo."))


@pytest.mark.parametrize(
    ("provider", "region", "account", "valid"),
    [
        ("gcp", "us-central1", "openscience-hub", True),
        ("gcp", "us-central1", "Open Science", False),
        ("gcp", "us-central1", "os", False),
        ("azure", "eastus", "0b1f6471-1bf0-4dda-aec3-cb9272f09590", True),
        ("azure", "eastus", "sub-1", False),
        ("jetstream2", "IU", "CIS230095", True),
        ("jetstream2", "IU", "TG-CIS230095", True),
        ("jetstream2", "IU", "my allocation", False),
        ("aws", "us-west-2", "12345", False),
    ],
)
def test_account_ids_of_every_provider(example_dict, provider, region, account, valid):
    cloud = {**example_dict["cloud"], "provider": provider, "region": region, "account": account}
    data = {**example_dict, "cloud": cloud}
    if valid:
        assert parse_config(data).cloud.account == account
    else:
        assert f"account {account!r} is not" in problems(data)["cloud"]
