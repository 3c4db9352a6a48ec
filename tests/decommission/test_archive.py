"""The archive buckets and the archive job, against moto and the pods the job would start."""

from __future__ import annotations

import datetime as dt

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from engagements.operators.decommission.archive import (
    ArchiveHomeDirectoriesOperator,
    CreateArchiveBucketsOperator,
)
from engagements.operators.decommission.backup import VerifyBackupOperator
from engagements.settings import Settings
from tests.decommission.conftest import (
    BUCKETS,
    CONTEXT,
    HUBS,
    REGION,
    make,
    put_inventory,
    ready_buckets,
    record,
)

pytestmark = pytest.mark.usefixtures("hubs")


def test_buckets_without_an_aws_connection_are_only_planned(ending):
    with pytest.raises(AirflowSkipException, match="skipped: no AWS connection 'aws_default'"):
        make(CreateArchiveBucketsOperator, ending).execute(CONTEXT)
    assert ending.list_actions("openscience") == []


def test_buckets_are_created_configured_and_recorded(ending, aws):
    op = make(CreateArchiveBucketsOperator, ending)
    first = op.execute(CONTEXT)
    assert first["buckets"] == BUCKETS
    assert first["region"] == REGION
    for bucket in BUCKETS.values():
        action = ending.get_action("openscience", f"archive-bucket:{bucket}")
        assert action.detail["created_now"] is True
        (rule,) = action.detail["settings"]["lifecycle"]["Rules"]
        assert rule["Transitions"] == [{"Days": 3, "StorageClass": "GLACIER_IR"}]
    # a re-run keeps the archive date of the first run
    record_key = "decommission:backup:2027-11-30"
    ending.update_action("openscience", record_key, first | {"archive_date": "2027-12-02"})
    assert make(CreateArchiveBucketsOperator, ending).execute(CONTEXT)["archive_date"] == (
        "2027-12-02"
    )


def test_archive_without_a_cluster_connection_skips_with_the_plan(ending, aws):
    ready_buckets(ending, complete=False)
    with pytest.raises(AirflowFailException):
        make(VerifyBackupOperator, ending).execute(CONTEXT)
    with pytest.raises(AirflowSkipException) as skipped:
        make(ArchiveHomeDirectoriesOperator, ending).execute(CONTEXT)
    message = str(skipped.value)
    assert "skipped: no kubernetes connection/kubeconfig 'kubernetes_openscience'" in message
    assert "plan: in namespace prod of cluster openscience" in message
    # prod has ada verified already: the plan says so; staging and workshop were complete
    assert "s3://openscience-prod-homedirs-archive/<user>/archive-2027-12-01.tar.gz" in message
    assert "except the 1 already verified" in message


def test_archive_without_an_aws_identity_skips_before_starting_a_job(ending, aws, kubernetes):
    ready_buckets(ending, complete=False)
    with pytest.raises(AirflowSkipException) as skipped:
        make(ArchiveHomeDirectoriesOperator, ending).execute(CONTEXT)
    assert "no AWS identity to write the buckets with" in str(skipped.value)
    assert "engagements_archive_credentials_secret" in str(skipped.value)
    assert kubernetes == []


def test_archive_job_pods_skip_verified_homes(ending, aws, kubernetes):
    ready_buckets(ending, complete=False)
    with pytest.raises(AirflowFailException, match="NOT verified"):
        make(VerifyBackupOperator, ending).execute(CONTEXT)

    op = make(ArchiveHomeDirectoriesOperator, ending)
    op.settings = Settings(archive_service_account="homes-archiver")
    todo = op.execute(CONTEXT)

    assert todo == {"prod": ["ada"]}  # staging and workshop are verified: no job at all
    (pod,) = kubernetes
    assert pod.namespace == "prod"
    assert pod.kubernetes_conn_id == "kubernetes_openscience"
    assert pod.image == Settings().archive_image
    assert pod.cmds == ["/bin/sh", "-c"]
    assert "aws s3 cp" in pod.arguments[0]
    assert pod.env_vars == {
        "HOME_ROOT": "/home-volume",
        "WORK_DIR": "/scratch",
        "BUCKET": "openscience-prod-homedirs-archive",
        "ARCHIVE_DATE": "2027-12-01",
        "SKIP_USERS": "ada",
        "AWS_DEFAULT_REGION": REGION,
    }
    assert pod.service_account_name == "homes-archiver"
    assert pod.env_from == []
    (homes,) = [v for v in pod.volumes if v.name == "homes"]
    assert homes.persistent_volume_claim.claim_name == "home-nfs"
    assert homes.persistent_volume_claim.read_only is True
    job = ending.get_action("openscience", "decommission:archive-job-prod:2027-11-30")
    assert job.detail["skipped_users"] == ["ada"]


def test_verification_failure_records_the_manifest_and_stops(ending, aws):
    ready_buckets(ending, complete=False)
    with pytest.raises(AirflowFailException) as failed:
        make(VerifyBackupOperator, ending).execute(CONTEXT)
    assert "prod/grace: missing: no archive" in str(failed.value)
    assert "nothing will be removed" in str(failed.value)
    manifest = ending.get_action("openscience", "decommission:manifest:2027-11-30")
    assert manifest.detail["hubs"]["prod"]["ok"] is False
    assert manifest.detail["hubs"]["staging"]["ok"] is True
    assert ending.get_action("openscience", "decommission:backup-verified:2027-11-30") is None


def test_an_empty_archive_is_checked_against_the_hubs_users(ending, aws):
    """The job found no home (a wrong volume?) and wrote an empty inventory: that is no backup."""
    from engagements.hooks.archive import HomeArchiveHook

    ready_buckets(ending)
    client = HomeArchiveHook().get_conn()
    for bucket in BUCKETS.values():
        put_inventory(client, bucket, [])
        for key in [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]:
            if "/archive-" in key:
                client.delete_object(Bucket=bucket, Key=key)
    with pytest.raises(AirflowFailException) as failed:
        make(VerifyBackupOperator, ending).execute(CONTEXT)
    for missing in ("staging/ada", "prod/ada", "prod/grace", "workshop/ada"):
        assert f"{missing}: missing: no archive" in str(failed.value)
    assert "bd-staff" not in str(failed.value)  # never started a server: no home to archive
    assert ending.get_action("openscience", "decommission:backup-verified:2027-11-30") is None


def test_a_home_the_job_did_not_see_is_missing(ending, aws, hubs):
    """A user the hub lists but the job's inventory left out is named, escaped as on disk."""
    ready_buckets(ending)
    hubs["prod"].add_user("Jo.Doe@uni.edu")
    with pytest.raises(AirflowFailException) as failed:
        make(VerifyBackupOperator, ending).execute(CONTEXT)
    assert "prod/-4ao-2e-44oe-40uni-2eedu (hub user Jo.Doe@uni.edu): missing" in str(failed.value)
    manifest = ending.get_action("openscience", "decommission:manifest:2027-11-30")
    assert manifest.detail["hubs"]["prod"]["hub_users"] == 4
    assert manifest.detail["hubs"]["prod"]["hub_users_with_home"] == 3


def test_a_hub_whose_users_cannot_be_listed_is_not_verified(ending, aws, hubs, monkeypatch):
    ready_buckets(ending)
    monkeypatch.delenv("AIRFLOW_CONN_JUPYTERHUB_OPENSCIENCE_WORKSHOP")
    hubs["staging"].fail_with = (503, "hub is restarting")
    with pytest.raises(AirflowFailException) as failed:
        make(VerifyBackupOperator, ending).execute(CONTEXT)
    message = str(failed.value)
    assert "staging: the hub's users could not be listed (" in message
    assert "HTTP 503: hub is restarting" in message
    assert "no Airflow connection 'jupyterhub_openscience_workshop'" in message
    assert ending.get_action("openscience", "decommission:backup-verified:2027-11-30") is None


def test_verified_backup_is_recorded(ending, aws):
    ready_buckets(ending)
    summary = make(VerifyBackupOperator, ending).execute(CONTEXT)
    assert summary["prod"]["users"] == 2
    assert (summary["prod"]["hub_users"], summary["prod"]["hub_users_with_home"]) == (3, 2)
    assert summary["prod"]["expires_on"] == "2028-02-29"
    assert summary["prod"]["manifest"] == (
        "s3://openscience-prod-homedirs-archive/_manifests/manifest-2027-12-01.json"
    )
    verified = ending.get_action("openscience", "decommission:backup-verified:2027-11-30")
    assert set(verified.detail["hubs"]) == set(HUBS)


def test_archive_job_on_a_cluster_outside_aws_gets_its_keys_from_a_secret(ending, aws, kubernetes):
    ready_buckets(ending, complete=False)
    op = make(ArchiveHomeDirectoriesOperator, ending)
    op.settings = Settings(archive_credentials_secret="homes-archive-aws")
    op.execute(CONTEXT)
    assert sorted(pod.namespace for pod in kubernetes) == sorted(HUBS)
    for pod in kubernetes:
        assert [s.secret_ref.name for s in pod.env_from] == ["homes-archive-aws"]
        assert pod.service_account_name is None
        assert not any("KEY" in name for name in pod.env_vars)  # the keys stay in the Secret


def test_an_archive_too_old_to_outlast_the_removal_is_made_again(ending, aws):
    today = dt.datetime.now(dt.UTC).date()
    old = (today - dt.timedelta(days=75)).isoformat()
    record(ending, "backup", {"archive_date": old, "region": REGION, "buckets": BUCKETS})
    detail = make(CreateArchiveBucketsOperator, ending).execute(CONTEXT)
    assert detail["archive_date"] == today.isoformat()
    backup = ending.get_action("openscience", "decommission:backup:2027-11-30")
    assert backup.detail["archive_date"] == today.isoformat()
