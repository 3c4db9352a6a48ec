"""Home-directory archive buckets on S3, through the amazon provider's ``S3Hook``.

The connection (``aws_default`` unless told otherwise) needs, on ``*-homedirs-archive``
buckets: CreateBucket, Put/GetLifecycleConfiguration, Put/GetBucketPublicAccessBlock,
Put/GetEncryptionConfiguration, ListBucket, GetObject and PutObject. Every call is safe to
repeat: a re-run converges on the same bucket settings and overwrites only the manifest.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from botocore.exceptions import ClientError

log = logging.getLogger(__name__)


class ArchiveError(RuntimeError):
    """S3 refused or failed an archive operation; the message names the bucket."""


class HomeArchiveHook(S3Hook):
    """Creates, configures and reads the per-hub home-directory archive buckets."""

    hook_name = "Home directory archive (S3)"

    def ensure_bucket(self, bucket: str, region: str) -> bool:
        """Create the bucket unless it exists; True when it was created now.

        A bucket that exists but is not ours (403) is an error, never "already there".
        """
        client = self.get_conn()
        try:
            client.head_bucket(Bucket=bucket)
            return False
        except ClientError as exc:
            code = _code(exc)
            if code not in ("404", "NoSuchBucket", "NotFound"):
                raise ArchiveError(f"bucket {bucket}: cannot read it ({code}): {exc}") from exc
        try:
            self.create_bucket(bucket_name=bucket, region_name=region)
        except ClientError as exc:
            if _code(exc) == "BucketAlreadyOwnedByYou":
                return False
            raise ArchiveError(f"bucket {bucket}: could not create it: {exc}") from exc
        log.info("Created bucket %s in %s", bucket, region)
        return True

    def configure_bucket(
        self,
        bucket: str,
        *,
        public_access_block: dict[str, bool],
        encryption: dict[str, Any],
        lifecycle: dict[str, Any],
    ) -> dict[str, Any]:
        """Block public access, encrypt by default, set the lifecycle; return them read back."""
        client = self.get_conn()
        try:
            client.put_public_access_block(
                Bucket=bucket, PublicAccessBlockConfiguration=public_access_block
            )
            client.put_bucket_encryption(
                Bucket=bucket, ServerSideEncryptionConfiguration=encryption
            )
            client.put_bucket_lifecycle_configuration(
                Bucket=bucket, LifecycleConfiguration=lifecycle
            )
        except ClientError as exc:
            raise ArchiveError(f"bucket {bucket}: could not configure it: {exc}") from exc
        return self.bucket_settings(bucket)

    def bucket_settings(self, bucket: str) -> dict[str, Any]:
        """Public access block, default encryption and lifecycle rules as S3 reports them."""
        client = self.get_conn()
        try:
            pab = client.get_public_access_block(Bucket=bucket)
            enc = client.get_bucket_encryption(Bucket=bucket)
            rules = client.get_bucket_lifecycle_configuration(Bucket=bucket)
        except ClientError as exc:
            raise ArchiveError(f"bucket {bucket}: could not read its settings: {exc}") from exc
        return {
            "public_access_block": pab["PublicAccessBlockConfiguration"],
            "encryption": enc["ServerSideEncryptionConfiguration"],
            "lifecycle": {"Rules": rules["Rules"]},
        }

    def list_objects(self, bucket: str, prefix: str = "") -> dict[str, dict[str, Any]]:
        """Every object under ``prefix``: key -> its ``size`` and ``etag`` (all pages)."""
        objects: dict[str, dict[str, Any]] = {}
        paginator = self.get_conn().get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    objects[item["Key"]] = {"size": item["Size"], "etag": item["ETag"]}
        except ClientError as exc:
            raise ArchiveError(f"bucket {bucket}: could not list it: {exc}") from exc
        return objects

    def read_json(self, bucket: str, key: str) -> Any | None:
        """A JSON object's content, or None if it is absent or not JSON."""
        try:
            body = self.get_conn().get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if _code(exc) in ("NoSuchKey", "404"):
                return None
            raise ArchiveError(f"s3://{bucket}/{key}: could not read it: {exc}") from exc
        try:
            return json.loads(body)
        except ValueError:
            log.warning("s3://%s/%s is not JSON", bucket, key)
            return None

    def write_json(self, bucket: str, key: str, data: Any) -> str:
        """Write ``data`` as a JSON object; return its URL."""
        try:
            self.get_conn().put_object(
                Bucket=bucket,
                Key=key,
                Body=json.dumps(data, indent=2).encode(),
                ContentType="application/json",
            )
        except ClientError as exc:
            raise ArchiveError(f"s3://{bucket}/{key}: could not write it: {exc}") from exc
        return f"s3://{bucket}/{key}"


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
