"""Backup verification against the hub's own users: pure rules, no S3 needed."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from engagements.decommission.archive import archive_key
from engagements.decommission.verification import (
    LISTED_BY_HUB,
    LISTED_ON_VOLUME,
    ArchiveRecord,
    EntryStatus,
    StoredObject,
    home_directory,
    manifest_from_dict,
    verify_archives,
)
from tests.infra.conftest import REFERENCE

DATE = dt.date(2027, 12, 1)

BASEHUB = REFERENCE / "basehub_values.defaults.yaml"


def archived(*users: str) -> tuple[dict[str, StoredObject], dict[str, ArchiveRecord]]:
    objects = {archive_key(u, DATE): StoredObject(archive_key(u, DATE), 100, '"-"') for u in users}
    return objects, {u: ArchiveRecord(size=100) for u in users}


def verify(hub_users, inventory, *users: str, error: str = ""):
    objects, records = archived(*users)
    return verify_archives(
        community_id="openscience",
        hub="prod",
        bucket="openscience-prod-homedirs-archive",
        archive_date=DATE,
        users_on_volume=inventory,
        hub_users=hub_users,
        hub_users_error=error,
        objects=objects,
        records=records,
    )


def test_an_empty_inventory_no_longer_passes():
    manifest = verify({"ada": True, "grace": True}, [])
    assert not manifest.ok
    assert manifest.problems == ["prod/ada: missing: no archive", "prod/grace: missing: no archive"]
    assert all(e.listed_by == (LISTED_BY_HUB,) for e in manifest.entries)


def test_a_short_archive_names_every_missing_user():
    manifest = verify({"ada": True, "grace": True, "hedy": True}, ["ada"], "ada")
    assert manifest.verified_users == ["ada"]
    assert manifest.problems == [
        "prod/grace: missing: no archive",
        "prod/hedy: missing: no archive",
    ]
    ada = manifest.entries[0]
    assert ada.listed_by == (LISTED_BY_HUB, LISTED_ON_VOLUME)


def test_homes_the_hub_no_longer_lists_are_archived_too():
    manifest = verify({"ada": True}, ["ada", "old-user"], "ada")
    assert manifest.problems == ["prod/old-user: missing: no archive"]
    assert manifest.entries[1].listed_by == (LISTED_ON_VOLUME,)


def test_users_who_never_started_a_server_have_no_home_to_archive():
    manifest = verify({"ada": True, "staff": False}, ["ada"], "ada")
    assert manifest.ok
    assert (manifest.hub_users, manifest.hub_users_with_home) == (2, 1)
    # A hub nobody ever used: nothing to back up, and the hub itself says so.
    unused = verify({"staff": False}, [])
    assert unused.ok
    assert unused.entries == ()


def test_without_the_hubs_users_nothing_is_verified():
    unread = verify(None, ["ada"], "ada", error="HTTP 403: Forbidden")
    assert unread.problems == [
        "prod: the hub's users could not be listed (HTTP 403: Forbidden), so the archive "
        "cannot be checked against them"
    ]
    nobody = verify({}, ["ada"], "ada")
    assert nobody.problems == [
        "prod: the hub's users API lists no user at all (the wrong hub or token?)"
    ]


def test_hub_names_are_matched_to_their_escaped_home_directories():
    manifest = verify({"Jo.Doe@uni.edu": True, "ada": True}, [], "-4ao-2e-44oe-40uni-2eedu")
    assert manifest.problems == ["prod/ada: missing: no archive"]
    jo = next(e for e in manifest.entries if e.hub_user == "Jo.Doe@uni.edu")
    assert (jo.user, jo.status) == ("-4ao-2e-44oe-40uni-2eedu", EntryStatus.OK)
    again = manifest_from_dict(manifest.to_dict())
    assert again.entries == manifest.entries
    assert again.hub_users == 2


@pytest.mark.parametrize(
    ("name", "directory"),
    [
        ("ada", "ada"),
        ("jo@example.org", "jo-40example-2eorg"),
        ("Ada", "-41da"),
        ("zoë", "zo-c3-ab"),
        ("a-b_c", "a-2db-5fc"),
        ("tab\there", "tab-9here"),
    ],
)
def test_home_directory_is_kubespawners_escaped_username(name, directory):
    assert home_directory(name) == directory


@pytest.mark.skipif(not BASEHUB.exists(), reason=f"the provider's chart defaults ({BASEHUB})")
@pytest.mark.parametrize("name", ["ada", "jo@example.org", "Ada", "zoë", "a-b_c", "x y+z"])
def test_home_directory_matches_the_providers_own_escaping(name):
    """basehub's values carry KubeSpawner's escaping for dask-gateway: the same result."""
    text = BASEHUB.read_text()
    match = re.search(r"\n( +)def escape_string_label_safe\(.*?\n\1    return [^\n]*\n", text, re.S)
    assert match, "escape_string_label_safe is no longer in the chart defaults"
    source = "\n".join(line[len(match.group(1)) :] for line in match.group(0).splitlines())
    namespace: dict = {}
    exec("import string\n" + source, namespace)
    assert home_directory(name) == namespace["escape_string_label_safe"](name).lower()
