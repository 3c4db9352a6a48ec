"""The archive buckets as the decommission reads and writes them: the archive layout and the
bucket settings of :mod:`engagements.decommission.archive` over the S3 hook's plain calls."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from engagements.decommission.archive import (
    DEFAULT_ENCRYPTION,
    PUBLIC_ACCESS_BLOCK,
    inventory_key,
    manifest_key,
    sidecar_key,
)
from engagements.decommission.verification import (
    ArchiveRecord,
    Manifest,
    StoredObject,
    parse_archive_record,
)

if TYPE_CHECKING:
    from engagements.hooks.archive import HomeArchiveHook


class ArchiveBuckets:
    """Configures and reads one decommission's archive buckets through ``hook``."""

    def __init__(self, hook: HomeArchiveHook) -> None:
        self.hook = hook

    def configure_bucket(self, bucket: str, lifecycle: dict[str, Any]) -> dict[str, Any]:
        """Private, encrypted by default, with ``lifecycle``; the settings as S3 reads them back."""
        return self.hook.configure_bucket(
            bucket,
            public_access_block=PUBLIC_ACCESS_BLOCK,
            encryption=DEFAULT_ENCRYPTION,
            lifecycle=lifecycle,
        )

    def list_objects(self, bucket: str, prefix: str = "") -> dict[str, StoredObject]:
        """Every object under ``prefix`` with its size and ETag."""
        return {
            key: StoredObject(key, found["size"], found["etag"])
            for key, found in self.hook.list_objects(bucket, prefix).items()
        }

    def read_inventory(self, bucket: str, archive_date: dt.date) -> list[str] | None:
        """The users the archive job found on the home volume, or None without an inventory."""
        data = self.hook.read_json(bucket, inventory_key(archive_date))
        users = data.get("users") if isinstance(data, dict) else None
        if not isinstance(users, list) or not all(isinstance(u, str) and u for u in users):
            return None
        return users

    def read_records(
        self, bucket: str, users: list[str], archive_date: dt.date, present: set[str]
    ) -> dict[str, ArchiveRecord | None]:
        """Each user's sidecar record (only the sidecars the listing shows are fetched)."""
        records: dict[str, ArchiveRecord | None] = {}
        for user in users:
            key = sidecar_key(user, archive_date)
            data = self.hook.read_json(bucket, key) if key in present else None
            records[user] = parse_archive_record(data) if isinstance(data, dict) else None
        return records

    def read_manifest(self, bucket: str, archive_date: dt.date) -> dict[str, Any] | None:
        data = self.hook.read_json(bucket, manifest_key(archive_date))
        return data if isinstance(data, dict) else None

    def write_manifest(self, manifest: Manifest) -> str:
        """Write the manifest beside the archives (it expires with them); return its URL."""
        return self.hook.write_json(
            manifest.bucket, manifest_key(manifest.archive_date), manifest.to_dict()
        )
