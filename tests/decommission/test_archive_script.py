"""The archive job's own script, run with sh, tar and coreutils; only ``aws`` is a stand-in.

What it uploads is then checked by the same verification the pipeline runs.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile

import pytest

from engagements.decommission.archive import ARCHIVE_SCRIPT, archive_bucket
from engagements.decommission.verification import verify_archives
from engagements.operators.decommission.buckets import ArchiveBuckets
from tests.decommission.conftest import ARCHIVE_DATE, REGION, run_archive_script, upload_written

BUCKET = archive_bucket("openscience", "prod")
pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("sh", "tar", "gzip", "md5sum", "du", "stat")),
    reason="the archive script needs sh, tar, gzip, md5sum, du and stat",
)


@pytest.fixture
def homes(tmp_path):
    root = tmp_path / "home-volume"
    for user, files in {
        "ada": {"analysis.ipynb": "{}", "data/survey.csv": "a,b\n1,2\n" * 500},
        "grace": {"notes.md": "# notes\n"},
        "_shared": {"README.md": "shared data\n"},
    }.items():
        for name, text in files.items():
            path = root / user / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    (root / "lost+found").mkdir()
    return root


def env(skip: str = "") -> dict[str, str]:
    return {"BUCKET": BUCKET, "ARCHIVE_DATE": ARCHIVE_DATE.isoformat(), "SKIP_USERS": skip}


def verify(hook):
    objects = ArchiveBuckets(hook).list_objects(BUCKET)
    users = ArchiveBuckets(hook).read_inventory(BUCKET, ARCHIVE_DATE)
    return verify_archives(
        community_id="openscience",
        hub="prod",
        bucket=BUCKET,
        archive_date=ARCHIVE_DATE,
        users_on_volume=users,
        hub_users={"ada": True, "grace": True},
        objects=objects,
        records=ArchiveBuckets(hook).read_records(BUCKET, users or [], ARCHIVE_DATE, set(objects)),
    )


@pytest.fixture
def hook(aws):
    from engagements.hooks.archive import HomeArchiveHook

    hook = HomeArchiveHook()
    hook.ensure_bucket(BUCKET, REGION)
    return hook


def test_every_home_is_archived_and_verifiable(hook, homes, tmp_path):
    client = hook.get_conn()
    result = run_archive_script(ARCHIVE_SCRIPT, homes=homes, work=tmp_path, env=env())
    assert result.returncode == 0, result.stderr
    upload_written(tmp_path, client)

    assert ArchiveBuckets(hook).read_inventory(BUCKET, ARCHIVE_DATE) == ["_shared", "ada", "grace"]
    body = client.get_object(Bucket=BUCKET, Key="ada/archive-2027-12-01.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        assert {"ada/analysis.ipynb", "ada/data/survey.csv"} <= set(archive.getnames())
    sidecar = json.loads(
        client.get_object(Bucket=BUCKET, Key="ada/archive-2027-12-01.tar.gz.json")["Body"].read()
    )
    assert sidecar["size"] == len(body)
    assert sidecar["home_bytes"] > 0

    manifest = verify(hook)
    assert manifest.ok, manifest.problems
    assert manifest.verified_users == ["_shared", "ada", "grace"]
    assert all(e.checksum.startswith("md5 ") for e in manifest.entries)


def test_verified_homes_are_not_archived_again(hook, homes, tmp_path):
    result = run_archive_script(ARCHIVE_SCRIPT, homes=homes, work=tmp_path, env=env("ada grace"))
    assert result.returncode == 0, result.stderr
    upload_written(tmp_path, hook.get_conn())
    assert "ada: verified by an earlier run, not archived again" in result.stdout
    archives = [k for k in ArchiveBuckets(hook).list_objects(BUCKET) if k.endswith(".tar.gz")]
    assert archives == ["_shared/archive-2027-12-01.tar.gz"]
    # the inventory still lists every home, so verification still expects all three
    assert {e.user: e.status.value for e in verify(hook).entries} == {
        "_shared": "ok",
        "ada": "missing",
        "grace": "missing",
    }


def test_an_image_without_the_tools_fails_clearly(tmp_path, homes):
    result = run_archive_script(
        "PATH=/nonexistent\n" + ARCHIVE_SCRIPT, homes=homes, work=tmp_path, env=env()
    )
    assert result.returncode == 2
    assert "the archive image lacks tar" in result.stderr
