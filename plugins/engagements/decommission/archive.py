"""Archive layout: one bucket per hub, its object keys, its settings and lifecycle, and the
archive job's script (see the package's docstring for the layout)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from engagements.config import CommunityConfig
from engagements.decommission.dates import RETENTION_DAYS

TRANSITION_DAYS = 3
STORAGE_CLASS = "GLACIER_IR"
"""Glacier Instant Retrieval after 3 days, the provider's own ``archival_storageclass_after``.

Why not STANDARD_IA: S3 refuses a transition to STANDARD_IA or ONEZONE_IA before day 30, so
an IA backup would sit in STANDARD for a third of its life; GLACIER_IR has no such minimum,
costs about a third of IA per GB-month, and still serves a download in milliseconds when a
community asks for its data. Its 90-day minimum storage charge equals our retention, so no
early-deletion fee applies. (Objects under 128 KB stay in STANDARD: S3 does not transition
them by default, and they cost next to nothing.)
"""
MIN_TRANSITION_DAYS = {"STANDARD_IA": 30, "ONEZONE_IA": 30}
ABORT_MULTIPART_DAYS = 7

INVENTORY_PREFIX = "_inventory/"
MANIFEST_PREFIX = "_manifests/"
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def hubs_with_homes(config: CommunityConfig) -> list[str]:
    """Hubs whose users have home directories (BinderHub sessions keep none)."""
    hubs = ["staging", "prod"]
    if config.hubs.workshop.enabled:
        hubs.append("workshop")
    return hubs


def archive_bucket(cluster: str, hub: str) -> str:
    """``<cluster>-<hub>-homedirs-archive``, checked against S3's bucket-name rules."""
    name = f"{cluster}-{hub}-homedirs-archive"
    if not _BUCKET_RE.fullmatch(name) or "--" in name:
        raise ValueError(f"{name!r} is not a valid S3 bucket name (3-63 of a-z, 0-9, -)")
    return name


def archive_key(user: str, archive_date: dt.date) -> str:
    return f"{user}/archive-{archive_date.isoformat()}.tar.gz"


def sidecar_key(user: str, archive_date: dt.date) -> str:
    return archive_key(user, archive_date) + ".json"


def inventory_key(archive_date: dt.date) -> str:
    return f"{INVENTORY_PREFIX}users-{archive_date.isoformat()}.json"


def manifest_key(archive_date: dt.date) -> str:
    return f"{MANIFEST_PREFIX}manifest-{archive_date.isoformat()}.json"


def lifecycle_configuration(
    *,
    transition_days: int = TRANSITION_DAYS,
    storage_class: str = STORAGE_CLASS,
    expire_days: int = RETENTION_DAYS,
) -> dict[str, Any]:
    """The bucket's lifecycle: to low-cost storage after a few days, deleted after 90.

    Incomplete multipart uploads (an archive job killed mid-upload) are cleaned up too.
    """
    minimum = MIN_TRANSITION_DAYS.get(storage_class, 0)
    if transition_days < minimum:
        raise ValueError(f"S3 refuses a transition to {storage_class} before day {minimum}")
    if not 0 <= transition_days < expire_days:
        raise ValueError("the transition must come before the expiry")
    return {
        "Rules": [
            {
                "ID": "homedirs-archive-retention",
                "Status": "Enabled",
                "Filter": {"Prefix": ""},
                "Transitions": [{"Days": transition_days, "StorageClass": storage_class}],
                "Expiration": {"Days": expire_days},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": ABORT_MULTIPART_DAYS},
            }
        ]
    }


PUBLIC_ACCESS_BLOCK: dict[str, bool] = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
DEFAULT_ENCRYPTION: dict[str, Any] = {
    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
}
"""SSE-S3: encrypted at rest, and single-part ETags stay the MD5 of the content."""


ARCHIVE_SCRIPT = r"""
set -eu
for tool in tar gzip md5sum du stat aws; do
  command -v "$tool" >/dev/null || { echo "the archive image lacks $tool" >&2; exit 2; }
done
# Uploads below 5 GB stay single-part, so their ETag is the MD5 the verification compares.
export AWS_CONFIG_FILE="$WORK_DIR/aws-config"
aws configure set default.s3.multipart_threshold 5GB
cd "$HOME_ROOT"
users=""
for entry in *; do
  if [ -d "$entry" ] && [ "$entry" != lost+found ]; then users="$users $entry"; fi
done
inventory="" sep=""
for user in $users; do inventory="$inventory$sep\"$user\""; sep=", "; done
printf '{"users": [%s]}' "$inventory" \
  | aws s3 cp --only-show-errors - "s3://$BUCKET/_inventory/users-$ARCHIVE_DATE.json"
for user in $users; do
  case " $SKIP_USERS " in
    *" $user "*) echo "$user: verified by an earlier run, not archived again"; continue ;;
  esac
  archive="$WORK_DIR/archive.tar.gz"
  tar -czf "$archive" -C "$HOME_ROOT" "$user" || [ $? -eq 1 ]  # 1: a file changed while read
  size=$(stat -c %s "$archive")
  md5=$(md5sum "$archive" | cut -d" " -f1)
  home=$(du -sb "$user" | cut -f1)
  key="$user/archive-$ARCHIVE_DATE.tar.gz"
  aws s3 cp --only-show-errors "$archive" "s3://$BUCKET/$key"
  printf '{"user": "%s", "size": %s, "md5": "%s", "home_bytes": %s}' \
    "$user" "$size" "$md5" "$home" | aws s3 cp --only-show-errors - "s3://$BUCKET/$key.json"
  rm -f "$archive"
  echo "$user: uploaded $size bytes to s3://$BUCKET/$key"
done
"""
"""The archive job's default script (POSIX sh). Its environment: ``HOME_ROOT`` (the home volume,
read-only), ``WORK_DIR`` (scratch space for one archive), ``BUCKET``, ``ARCHIVE_DATE``,
``SKIP_USERS`` (space-separated: verified by an earlier run). It writes the inventory first,
then each archive and, only after its upload, the archive's sidecar record."""
