"""Backup verification: each hub's archives against the hub's own users, as a manifest."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from engagements.decommission.archive import archive_key, manifest_key
from engagements.decommission.dates import expiry_date


class EntryStatus(StrEnum):
    OK = "ok"
    MISSING = "missing"
    TRUNCATED = "truncated"
    SIZE_MISMATCH = "size-mismatch"
    CHECKSUM_MISMATCH = "checksum-mismatch"
    UNVERIFIABLE = "unverifiable"


@dataclass(frozen=True)
class StoredObject:
    """An object as S3 lists it."""

    key: str
    size: int
    etag: str


@dataclass(frozen=True)
class ArchiveRecord:
    """What the archive job wrote beside an archive after uploading it."""

    size: int
    md5: str | None = None
    home_bytes: int | None = None


def home_directory(username: str) -> str:
    """The home directory KubeSpawner gives a hub user (the chart's ``{escaped_username}``).

    Every character but a lowercase ASCII letter or a digit becomes ``-`` followed by the
    hexadecimal value of each of its UTF-8 bytes; the result is lowercased.
    """
    safe = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(
        c if c in safe else "".join(f"-{byte:X}" for byte in c.encode()) for c in username
    ).lower()


LISTED_BY_HUB = "hub users API"
LISTED_ON_VOLUME = "home volume"


@dataclass(frozen=True)
class ManifestEntry:
    user: str
    """The home directory's name (the archive's key prefix)."""
    key: str
    status: EntryStatus
    size: int | None = None
    expected_size: int | None = None
    checksum: str = "not available"
    detail: str = ""
    hub_user: str | None = None
    """The user's name on the hub, when the hub's users API lists them."""
    listed_by: tuple[str, ...] = ()
    """Who says this home exists: the hub's users API, the job's inventory, or both."""


@dataclass(frozen=True)
class Manifest:
    community_id: str
    hub: str
    bucket: str
    archive_date: dt.date
    entries: tuple[ManifestEntry, ...]
    inventory_found: bool = True
    extra_archives: tuple[str, ...] = ()
    hub_users: int | None = None
    """How many users the hub's users API lists (None: it could not be read)."""
    hub_users_with_home: int | None = None
    """Of those, how many ever started a server, and so have a home directory."""
    hub_users_error: str = ""

    @property
    def expires_on(self) -> dt.date:
        return expiry_date(self.archive_date)

    @property
    def users(self) -> int:
        return len(self.entries)

    @property
    def archived(self) -> int:
        return sum(1 for e in self.entries if e.status is not EntryStatus.MISSING)

    @property
    def total_bytes(self) -> int:
        return sum(e.size or 0 for e in self.entries)

    @property
    def verified_users(self) -> list[str]:
        return [e.user for e in self.entries if e.status is EntryStatus.OK]

    @property
    def problems(self) -> list[str]:
        found = [] if self.inventory_found else [f"{self.hub}: no inventory of the home volume"]
        if self.hub_users is None:
            why = self.hub_users_error or "no answer"
            found.append(
                f"{self.hub}: the hub's users could not be listed ({why}), so the archive "
                "cannot be checked against them"
            )
        elif self.hub_users == 0:
            found.append(
                f"{self.hub}: the hub's users API lists no user at all (the wrong hub or token?)"
            )
        found += [
            f"{self.hub}/{e.user}"
            + (f" (hub user {e.hub_user})" if e.hub_user and e.hub_user != e.user else "")
            + f": {e.status.value}{': ' + e.detail if e.detail else ''}"
            for e in self.entries
            if e.status is not EntryStatus.OK
        ]
        return found

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/"

    def to_dict(self) -> dict[str, Any]:
        return {
            "community_id": self.community_id,
            "hub": self.hub,
            "bucket": self.bucket,
            "archive_date": self.archive_date.isoformat(),
            "expires_on": self.expires_on.isoformat(),
            "inventory_found": self.inventory_found,
            "hub_users": self.hub_users,
            "hub_users_with_home": self.hub_users_with_home,
            "hub_users_error": self.hub_users_error,
            "users": self.users,
            "archived": self.archived,
            "total_bytes": self.total_bytes,
            "ok": self.ok,
            "problems": self.problems,
            "extra_archives": list(self.extra_archives),
            "entries": [
                asdict(e) | {"status": e.status.value, "listed_by": list(e.listed_by)}
                for e in self.entries
            ],
        }

    def summary(self) -> dict[str, Any]:
        """The manifest without its per-user entries, for the store and the emails."""
        return {k: v for k, v in self.to_dict().items() if k != "entries"} | {
            "manifest": f"s3://{self.bucket}/{manifest_key(self.archive_date)}"
        }


def parse_archive_record(data: Mapping[str, Any]) -> ArchiveRecord | None:
    """The sidecar's content, or None when it does not say how large the archive is."""
    size = data.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        return None
    md5 = data.get("md5")
    home = data.get("home_bytes")
    return ArchiveRecord(
        size=size,
        md5=md5.lower() if isinstance(md5, str) and re.fullmatch(r"[0-9a-fA-F]{32}", md5) else None,
        home_bytes=home if isinstance(home, int) and not isinstance(home, bool) else None,
    )


def _checksum(obj: StoredObject, record: ArchiveRecord) -> tuple[str, bool]:
    """Compare the ETag with the recorded MD5 when the ETag is one (single-part upload)."""
    etag = obj.etag.strip('"').lower()
    if record.md5 is None:
        return "not recorded by the archive job", True
    if "-" in etag or not re.fullmatch(r"[0-9a-f]{32}", etag):
        return "not comparable (multipart upload)", True
    if etag != record.md5:
        return f"etag {etag} != md5 {record.md5}", False
    return f"md5 {etag}", True


def expected_homes(
    hub_users: Mapping[str, bool] | None, users_on_volume: Sequence[str] | None
) -> dict[str, tuple[str | None, tuple[str, ...]]]:
    """Home directory -> (hub user, who lists it), for every home that must have an archive.

    ``hub_users`` maps each user the hub's API lists to whether they ever started a server
    (only they have a home directory); the inventory adds homes of users the hub forgot.
    """
    homes: dict[str, tuple[str | None, tuple[str, ...]]] = {}
    for name, used in sorted((hub_users or {}).items()):
        if used:
            homes[home_directory(name)] = (name, (LISTED_BY_HUB,))
    for directory in sorted(set(users_on_volume or ())):
        hub_user, listed = homes.get(directory, (None, ()))
        homes[directory] = (hub_user, (*listed, LISTED_ON_VOLUME))
    return dict(sorted(homes.items()))


def verify_archives(
    *,
    community_id: str,
    hub: str,
    bucket: str,
    archive_date: dt.date,
    users_on_volume: Sequence[str] | None,
    hub_users: Mapping[str, bool] | None,
    objects: Mapping[str, StoredObject],
    records: Mapping[str, ArchiveRecord | None],
    hub_users_error: str = "",
) -> Manifest:
    """Compare who must have a home archive with the archives present in the bucket.

    ``hub_users`` is the hub's users API (name -> ever started a server; None when it could
    not be read, ``hub_users_error`` says why); ``users_on_volume`` is the archive job's
    inventory (None when absent); ``objects`` maps keys to what S3 lists; ``records`` maps
    each home directory to its sidecar (None when unreadable).
    """
    entries = []
    for user, (hub_user, listed_by) in expected_homes(hub_users, users_on_volume).items():
        key = archive_key(user, archive_date)
        obj = objects.get(key)
        record = records.get(user)
        who = {"hub_user": hub_user, "listed_by": listed_by}
        if obj is None:
            entries.append(
                ManifestEntry(user, key, EntryStatus.MISSING, detail="no archive", **who)
            )
            continue
        expected = record.size if record else None
        base = {"user": user, "key": key, "size": obj.size, "expected_size": expected, **who}
        if obj.size == 0:
            entries.append(ManifestEntry(**base, status=EntryStatus.TRUNCATED, detail="empty"))
        elif record is None:
            detail = "no size record from the archive job; cannot tell a complete archive"
            entries.append(ManifestEntry(**base, status=EntryStatus.UNVERIFIABLE, detail=detail))
        elif obj.size < record.size:
            detail = f"{obj.size} of {record.size} bytes"
            entries.append(ManifestEntry(**base, status=EntryStatus.TRUNCATED, detail=detail))
        elif obj.size > record.size:
            detail = f"{obj.size} bytes, {record.size} recorded"
            entries.append(ManifestEntry(**base, status=EntryStatus.SIZE_MISMATCH, detail=detail))
        else:
            checksum, matches = _checksum(obj, record)
            status = EntryStatus.OK if matches else EntryStatus.CHECKSUM_MISMATCH
            entries.append(ManifestEntry(**base, status=status, checksum=checksum))
    expected_keys = {e.key for e in entries}
    extra = tuple(
        sorted(
            k
            for k in objects
            if k.endswith(f"/archive-{archive_date.isoformat()}.tar.gz") and k not in expected_keys
        )
    )
    return Manifest(
        community_id=community_id,
        hub=hub,
        bucket=bucket,
        archive_date=archive_date,
        entries=tuple(entries),
        inventory_found=users_on_volume is not None,
        extra_archives=extra,
        hub_users=len(hub_users) if hub_users is not None else None,
        hub_users_with_home=sum(hub_users.values()) if hub_users is not None else None,
        hub_users_error=hub_users_error,
    )


def manifest_from_dict(data: Mapping[str, Any]) -> Manifest:
    """A manifest as :meth:`Manifest.to_dict` wrote it (read back from its bucket)."""
    entries = tuple(
        ManifestEntry(
            user=e["user"],
            key=e["key"],
            status=EntryStatus(e["status"]),
            size=e.get("size"),
            expected_size=e.get("expected_size"),
            checksum=e.get("checksum", ""),
            detail=e.get("detail", ""),
            hub_user=e.get("hub_user"),
            listed_by=tuple(e.get("listed_by") or ()),
        )
        for e in data.get("entries", [])
    )
    return Manifest(
        community_id=data["community_id"],
        hub=data["hub"],
        bucket=data["bucket"],
        archive_date=dt.date.fromisoformat(data["archive_date"]),
        entries=entries,
        inventory_found=data.get("inventory_found", True),
        extra_archives=tuple(data.get("extra_archives", ())),
        hub_users=data.get("hub_users"),
        hub_users_with_home=data.get("hub_users_with_home"),
        hub_users_error=data.get("hub_users_error", ""),
    )


def manifest_markdown(manifests: Sequence[Manifest], *, max_rows: int = 200) -> str:
    """The backup manifest as the approval form shows it: one table per hub, problems first."""
    lines = []
    for m in manifests:
        lines += [
            f"#### Hub `{m.hub}`: {'verified' if m.ok else 'NOT verified'}",
            f"`s3://{m.bucket}/` — archive date {m.archive_date}, kept until {m.expires_on}; "
            f"{m.archived} of {m.users} home directories archived, {m.total_bytes:,} bytes.",
            f"Checked against the hub's users API: {m.hub_users} users, "
            f"{m.hub_users_with_home} of them ever started a server."
            if m.hub_users is not None
            else "Not checked against the hub's users: they could not be listed.",
            "",
        ]
        if m.problems:
            lines += [f"- **{p}**" for p in m.problems] + [""]
        if m.entries:
            lines += ["| user | archive | bytes | checksum | status |", "|---|---|---|---|---|"]
            lines += [
                f"| {e.user} | `{e.key}` | {e.size if e.size is not None else '-'} | "
                f"{e.checksum} | {e.status.value} |"
                for e in m.entries[:max_rows]
            ]
            if m.users > max_rows:
                lines.append(
                    f"\n_{m.users - max_rows} more in `s3://{m.bucket}/"
                    f"{manifest_key(m.archive_date)}`._"
                )
            lines.append("")
    return "\n".join(lines)
