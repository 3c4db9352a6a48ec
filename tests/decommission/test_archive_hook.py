"""The archive buckets against moto: created once, configured as promised, read back."""

from __future__ import annotations

import hashlib
import json

import pytest

from engagements.decommission.archive import archive_bucket, lifecycle_configuration, manifest_key
from engagements.decommission.verification import verify_archives
from engagements.operators.decommission.buckets import ArchiveBuckets
from tests.decommission.conftest import ARCHIVE_DATE, REGION, put_archive, put_inventory

BUCKET = archive_bucket("openscience", "prod")


@pytest.fixture
def hook(aws):
    from engagements.hooks.archive import HomeArchiveHook

    return HomeArchiveHook()


def test_bucket_is_created_once(hook):
    assert hook.ensure_bucket(BUCKET, REGION) is True
    assert hook.ensure_bucket(BUCKET, REGION) is False
    location = hook.get_conn().get_bucket_location(Bucket=BUCKET)["LocationConstraint"]
    assert location == REGION


def test_bucket_owned_by_someone_else_is_an_error(hook, monkeypatch):
    from botocore.exceptions import ClientError

    from engagements.hooks.archive import ArchiveError

    client = hook.get_conn()

    def forbidden(**kwargs):
        raise ClientError({"Error": {"Code": "403", "Message": "Forbidden"}}, "HeadBucket")

    monkeypatch.setattr(client, "head_bucket", forbidden)
    with pytest.raises(ArchiveError, match="cannot read it"):
        hook.ensure_bucket(BUCKET, REGION)


def test_settings_read_back_as_configured(hook):
    hook.ensure_bucket(BUCKET, REGION)
    settings = ArchiveBuckets(hook).configure_bucket(BUCKET, lifecycle_configuration())

    assert settings["public_access_block"] == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    (rule,) = settings["encryption"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    (rule,) = settings["lifecycle"]["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["Transitions"] == [{"Days": 3, "StorageClass": "GLACIER_IR"}]
    assert rule["Expiration"] == {"Days": 90}
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}
    # The rule covers every object: archives, sidecars, inventory and manifest expire together.
    assert rule["Filter"] == {"Prefix": ""}

    # Configuring again converges on the same settings.
    assert ArchiveBuckets(hook).configure_bucket(BUCKET, lifecycle_configuration()) == settings


def test_archive_listing_sizes_and_etags(hook):
    hook.ensure_bucket(BUCKET, REGION)
    client = hook.get_conn()
    put_archive(client, BUCKET, "ada", b"a" * 1000)
    objects = ArchiveBuckets(hook).list_objects(BUCKET, "ada/")
    archive = objects["ada/archive-2027-12-01.tar.gz"]
    assert archive.size == 1000
    assert archive.etag.strip('"') == hashlib.md5(b"a" * 1000, usedforsecurity=False).hexdigest()


def test_manifest_comparison_finds_missing_and_truncated(hook):
    """The job saw four homes: one archive fine, one never uploaded, one cut short, one whose
    size record is missing. Only the first is verified; the manifest says why for the rest."""
    hook.ensure_bucket(BUCKET, REGION)
    client = hook.get_conn()
    put_inventory(client, BUCKET, ["ada", "grace", "hedy", "_shared"])
    put_archive(client, BUCKET, "ada", b"x" * 2048)
    put_archive(client, BUCKET, "hedy", b"y" * 100, recorded=b"y" * 4096)
    client.put_object(Bucket=BUCKET, Key="_shared/archive-2027-12-01.tar.gz", Body=b"z" * 10)

    users = ArchiveBuckets(hook).read_inventory(BUCKET, ARCHIVE_DATE)
    objects = ArchiveBuckets(hook).list_objects(BUCKET)
    records = ArchiveBuckets(hook).read_records(BUCKET, users, ARCHIVE_DATE, set(objects))
    manifest = verify_archives(
        community_id="openscience",
        hub="prod",
        bucket=BUCKET,
        archive_date=ARCHIVE_DATE,
        users_on_volume=users,
        hub_users={"ada": True, "grace": True, "hedy": True, "jo": False},
        objects=objects,
        records=records,
    )

    status = {e.user: e.status.value for e in manifest.entries}
    assert status == {
        "ada": "ok",
        "grace": "missing",
        "hedy": "truncated",
        "_shared": "unverifiable",
    }
    assert not manifest.ok
    assert manifest.users == 4
    assert manifest.archived == 3
    assert manifest.verified_users == ["ada"]
    assert "prod/hedy: truncated: 100 of 4096 bytes" in manifest.problems
    ada = next(e for e in manifest.entries if e.user == "ada")
    assert ada.checksum.startswith("md5 ")

    url = ArchiveBuckets(hook).write_manifest(manifest)
    assert url == f"s3://{BUCKET}/{manifest_key(ARCHIVE_DATE)}"
    written = ArchiveBuckets(hook).read_manifest(BUCKET, ARCHIVE_DATE)
    assert written == json.loads(json.dumps(manifest.to_dict()))
    assert written["ok"] is False
    assert {e["user"]: e["status"] for e in written["entries"]} == status


def test_missing_inventory_and_absent_keys(hook):
    hook.ensure_bucket(BUCKET, REGION)
    assert ArchiveBuckets(hook).read_inventory(BUCKET, ARCHIVE_DATE) is None
    assert ArchiveBuckets(hook).read_manifest(BUCKET, ARCHIVE_DATE) is None
    hook.get_conn().put_object(Bucket=BUCKET, Key=manifest_key(ARCHIVE_DATE), Body=b"not json")
    assert ArchiveBuckets(hook).read_manifest(BUCKET, ARCHIVE_DATE) is None
