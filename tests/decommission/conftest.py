"""Fixtures for decommission tests: an isolated store, moto's S3/EKS, the example community."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engagements.config import CommunityConfig, load_config
from engagements.decommission.archive import archive_key, inventory_key, sidecar_key
from engagements.settings import PROJECT_ROOT
from engagements.store.base import EngagementStatus
from engagements.store.local import LocalStore

EXAMPLE = PROJECT_ROOT / "include" / "communities" / "openscience.yaml"
ARCHIVE_DATE = dt.date(2027, 12, 1)
FAKE_AWS_CLI = Path(__file__).with_name("fake_aws_cli.py")
REGION = "us-west-2"


@pytest.fixture(autouse=True)
def kubernetes_client_logging():
    """Building Kubernetes models makes the kubernetes client set the ``urllib3`` and
    ``client`` loggers to WARNING for the whole process; put them back for the next tests."""
    with kept_logger_levels():
        yield


@contextlib.contextmanager
def kept_logger_levels(names: tuple[str, ...] = ("urllib3", "client")):
    levels = {name: logging.getLogger(name).level for name in names}
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@pytest.fixture
def config() -> CommunityConfig:
    return load_config(EXAMPLE)


@pytest.fixture
def store(tmp_path, monkeypatch) -> LocalStore:
    path = tmp_path / "engagements.sqlite"
    monkeypatch.setenv("ENGAGEMENTS_STORE", "local")
    monkeypatch.setenv("ENGAGEMENTS_STORE_PATH", str(path))
    return LocalStore(path)


@pytest.fixture
def decommissioning(store, config) -> LocalStore:
    """The example community as the renewal pipeline leaves it: not renewed."""
    store.upsert_engagement(
        config.community_id,
        config.name,
        config.to_dict(),
        status=EngagementStatus.DECOMMISSIONING,
    )
    return store


@pytest.fixture
def aws(monkeypatch):
    """moto's AWS, reached through an ``aws_default`` connection as in production."""
    from moto import mock_aws

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(
        "AIRFLOW_CONN_AWS_DEFAULT",
        json.dumps({"conn_type": "aws", "extra": {"region_name": REGION}}),
    )
    with mock_aws():
        yield


def put_archive(client, bucket: str, user: str, content: bytes, *, recorded: bytes | None = None):
    """Upload what the archive job uploads for one user: the tarball, then its sidecar.

    ``recorded`` is what the job archived when it differs from what reached S3 (truncation).
    """
    recorded = content if recorded is None else recorded
    client.put_object(Bucket=bucket, Key=archive_key(user, ARCHIVE_DATE), Body=content)
    sidecar = {
        "user": user,
        "size": len(recorded),
        "md5": hashlib.md5(recorded, usedforsecurity=False).hexdigest(),
        "home_bytes": 10 * len(recorded),
    }
    client.put_object(
        Bucket=bucket, Key=sidecar_key(user, ARCHIVE_DATE), Body=json.dumps(sidecar).encode()
    )


def put_inventory(client, bucket: str, users: list[str]) -> None:
    client.put_object(
        Bucket=bucket, Key=inventory_key(ARCHIVE_DATE), Body=json.dumps({"users": users}).encode()
    )


def run_archive_script(
    script: str, *, homes: Path, work: Path, env: dict[str, str]
) -> subprocess.CompletedProcess:
    """Run the archive job's script here, as its pod would: ``sh -c`` with the job's
    environment, the home volume at ``homes``, and an ``aws`` that writes what it uploads to
    ``work/s3/<bucket>/<key>`` (see :func:`upload_written`)."""
    bin_dir = work / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    aws = bin_dir / "aws"
    aws.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_AWS_CLI}" "$@"\n')
    aws.chmod(0o755)
    return subprocess.run(
        ["/bin/sh", "-c", script],
        env={
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            **env,
            "HOME_ROOT": str(homes),
            "WORK_DIR": str(work),
            "FAKE_S3": str(work / "s3"),
        },
        capture_output=True,
        text=True,
        check=False,
    )


def upload_written(work: Path, client) -> list[str]:
    """Put what the script's ``aws`` wrote into (moto's) S3, as the real CLI would have."""
    uploads = work / "s3"
    keys = []
    for path in sorted(p for p in uploads.rglob("*") if p.is_file()):
        bucket, *key = path.relative_to(uploads).parts
        client.put_object(Bucket=bucket, Key="/".join(key), Body=path.read_bytes())
        keys.append("/".join(key))
        path.unlink()
    return keys
