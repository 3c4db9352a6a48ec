"""Decommissioning as plain functions: dates, archive layout, backup verification, teardown plan.

No Airflow and no network here. The runbook: notices to the community 14 days before the end,
at the end and 14 days after; hubs and cluster removed within 14 days after the end; home
directories backed up to low-cost S3 storage and kept 90 days.

Archive layout (one bucket per hub, the provider's existing ``user_buckets`` pattern)::

    s3://<cluster>-<hub>-homedirs-archive/
        <user>/archive-<date>.tar.gz          one compressed tarball per home directory
        <user>/archive-<date>.tar.gz.json     {"user", "size", "md5", "home_bytes"}: written
                                              by the archive job after the upload
        _inventory/users-<date>.json          {"users": [...]}: every directory the job found
                                              on the home volume, archived or not
        _manifests/manifest-<date>.json       the verification's result (:class:`Manifest`)

Verification does not take the archive job's word for who must have an archive: the hub's own
users API (every user who ever started a server there has a home directory, named as
KubeSpawner names it) is the independent list, and the job's inventory only adds directories
the hub no longer knows. The sidecar says how large an archive must be (and its MD5), the
object listing says what is there. A home whose archive is absent, empty, shorter than
recorded or without a sidecar fails the backup, as do a hub whose users cannot be listed and
an archive that is empty while the hub has users; every missing user is named, and nothing is
removed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from engagements.config import CloudProvider, CommunityConfig, HubAuth
from engagements.store.base import ActionRecord, Engagement, EngagementStatus, EngagementStore

REMOVAL_DAYS = 14
"""Hubs and cluster are removed within 14 days after the end."""
LATE_NOTICE_DAYS = 7
"""A decommission started late still announces the removal at least a week ahead."""
RETENTION_DAYS = 90
"""The runbook keeps the backup 90 days."""
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


class NoticeStage(StrEnum):
    BEFORE_END = "before-end"
    AT_END = "at-end"
    AFTER_REMOVAL = "after-removal"


class DecommissionRefused(RuntimeError):
    """This run must not go on: the message says why and that nothing was removed."""


# Dates and keys


def removal_deadline(end: dt.date) -> dt.date:
    return end + dt.timedelta(days=REMOVAL_DAYS)


def expiry_date(archive_date: dt.date) -> dt.date:
    """The day S3 deletes the archives: lifecycle days count from each object's creation."""
    return archive_date + dt.timedelta(days=RETENTION_DAYS)


MIN_DAYS_KEPT_AFTER_REMOVAL = 30
"""A cluster is removed only while its backup has this many days left; an older archive
(a teardown delayed by review) is made again rather than expire soon after the removal."""


def backup_too_old(expires_on: dt.date, today: dt.date) -> bool:
    """Whether a backup expiring then leaves too little time after a removal today."""
    return (expires_on - today).days < MIN_DAYS_KEPT_AFTER_REMOVAL


def action_key(step: str, end: dt.date) -> str:
    """Store action keys of one decommission: a run for another end date is another one."""
    return f"decommission:{step}:{end.isoformat()}"


def notice_key(stage: NoticeStage, end: dt.date) -> str:
    return f"decommission-notice:{stage.value}:{end.isoformat()}"


# Archive layout


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


# Verification


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


# Guards


class DecommissionCancelled(RuntimeError):
    """A renewal was recorded after the decommission started: stop before removing anything."""

    def __init__(self, community_id: str, end: dt.date, new_end: dt.date) -> None:
        self.new_end = new_end
        super().__init__(
            f"{community_id} was renewed meanwhile: its contract now ends on {new_end}, not "
            f"{end}; the decommission is cancelled and nothing was removed"
        )


def check_still_ending(
    engagement: Engagement,
    end: dt.date,
    current_end: dt.date,
    *,
    statuses: frozenset[EngagementStatus] | None = None,
) -> None:
    """Raise unless the stored engagement still ends on ``end`` and is being decommissioned.

    A renewal recorded by any means (the renewal form, the CLI, Airtable) moves the contract
    end: :class:`DecommissionCancelled`. A status changed by hand without new dates is
    ambiguous, so it stops the run for a person to look (:class:`DecommissionRefused`).
    """
    cid = engagement.community_id
    statuses = statuses or frozenset({EngagementStatus.DECOMMISSIONING})
    if current_end > end:
        raise DecommissionCancelled(cid, end, current_end)
    if current_end != end:
        raise DecommissionRefused(
            f"{cid}'s contract ends on {current_end}, not {end} as this run was told; "
            "nothing was removed"
        )
    if engagement.status not in statuses:
        raise DecommissionRefused(
            f"{cid}'s status is {engagement.status.value}, not "
            f"{' or '.join(sorted(s.value for s in statuses))}. If it was renewed, record the "
            "new contract dates (that cancels this run); if not, set the status back to "
            "Decommissioning and clear this task. Nothing was removed."
        )


def check_identity(conf_community_id: str, engagement: Engagement, config: CommunityConfig) -> None:
    """The run's community, the stored record and the config it would tear down must agree."""
    ids = {
        "run conf": conf_community_id,
        "engagement record": engagement.community_id,
        "community config": config.community_id,
        "cluster": config.cluster_name,
    }
    if len(set(ids.values())) != 1:
        found = ", ".join(f"{k} {v!r}" for k, v in ids.items())
        raise DecommissionRefused(f"community ids disagree ({found}); nothing was removed")


# Teardown


@dataclass(frozen=True)
class TeardownPlan:
    cluster: str
    provider: CloudProvider
    config_folder: str
    iac_inputs: tuple[str, ...]
    auth_clients: tuple[str, ...]
    destroy_commands: tuple[str, ...]
    follow_ups: tuple[str, ...] = field(default=())


_TERRAFORM_DIR = {
    CloudProvider.AWS: "terraform/aws",
    CloudProvider.GCP: "terraform/gcp",
    CloudProvider.AZURE: "terraform/azure",
    CloudProvider.JETSTREAM2: "terraform/openstack",
}


def _auth_clients(config: CommunityConfig) -> list[str]:
    """OAuth/CILogon clients to delete before the config that names them is gone."""
    cluster = config.cluster_name
    hubs = config.hubs
    auth_by_hub = {"staging": hubs.community.auth, "prod": hubs.community.auth}
    if hubs.workshop.enabled:
        auth_by_hub["workshop"] = hubs.workshop.auth
    if hubs.binder.enabled and hubs.binder.authenticated:
        auth_by_hub["binder"] = hubs.community.auth
    clients = [f"GitHub OAuth app `{cluster}-grafana` in 2i2c-org (Grafana login)"]
    for hub, auth in auth_by_hub.items():
        if auth is HubAuth.GITHUB:
            clients.append(f"GitHub OAuth app `{cluster}-{hub}` in 2i2c-org")
        elif auth in (HubAuth.CILOGON, HubAuth.GOOGLE):  # Google login goes through CILogon
            clients.append(
                f"CILogon client of `{hub}`: `deployer cilogon-client delete {cluster} {hub}`"
            )
    return clients


def teardown_branch(cluster: str, end: dt.date) -> str:
    """The teardown change's branch: one per decommission, never one merged for an earlier end."""
    return f"decommission-{cluster}-{end.isoformat()}"


def teardown_plan(config: CommunityConfig) -> TeardownPlan:
    """What the teardown pull request removes and what the destroy step runs, per provider."""
    cluster = config.cluster_name
    provider = config.cloud.provider
    tf_dir = _TERRAFORM_DIR[provider]
    iac = [f"{tf_dir}/projects/{cluster}.tfvars"]
    q = shlex.quote
    commands = [
        f"deployer grafana central-ds remove {q(cluster)}",
        f"terraform -chdir={tf_dir} workspace select {q(cluster)}",
        f"terraform -chdir={tf_dir} destroy -auto-approve -var-file=projects/{q(cluster)}.tfvars",
        f"terraform -chdir={tf_dir} workspace select default",
        f"terraform -chdir={tf_dir} workspace delete {q(cluster)}",
    ]
    if provider is CloudProvider.AWS:
        iac.append(f"eksctl/{cluster}.jsonnet")
        commands += [
            f"jsonnet eksctl/{q(cluster)}.jsonnet > eksctl/{q(cluster)}.eksctl.yaml",
            f"eksctl delete cluster --config-file=eksctl/{q(cluster)}.eksctl.yaml "
            "--disable-nodegroup-eviction --wait",
        ]
    follow_ups = (
        f"Remove the `{cluster}` entries from `.github/workflows/deploy-hubs.yaml`.",
        f"Remove the DNS records of `{config.base_domain}` (Namecheap).",
        "Delete leftover EFS/EBS backups, then close or hand back the cloud account.",
        "GitHub repositories created for the community stay with the community.",
    )
    return TeardownPlan(
        cluster=cluster,
        provider=provider,
        config_folder=f"config/clusters/{cluster}",
        iac_inputs=tuple(iac),
        auth_clients=tuple(_auth_clients(config)),
        destroy_commands=tuple(commands),
        follow_ups=follow_ups,
    )


@dataclass(frozen=True)
class TeardownSteps:
    """What a person approves: the cluster, what the change removes, the commands that run.

    The approval records these with their digest; the pull request shows them and the destroy
    step runs exactly these commands, after checking that the plan made now is still the same.
    """

    cluster: str
    provider: str
    removes: tuple[str, ...]
    commands: tuple[str, ...]

    @property
    def digest(self) -> str:
        """SHA-256 of the steps, as recorded: any change to any of them changes it."""
        data = json.dumps(self._fields(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(data.encode()).hexdigest()

    def _fields(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "provider": self.provider,
            "removes": list(self.removes),
            "commands": list(self.commands),
        }

    def to_dict(self) -> dict[str, Any]:
        return self._fields() | {"digest": self.digest}


def teardown_steps(config: CommunityConfig, command: str = "") -> TeardownSteps:
    """The steps of tearing down ``config``'s cluster as they would be approved now.

    ``command`` is the ``teardown_command`` setting: when set, it replaces the provider's
    destroy commands, and the approval form shows it in their place.
    """
    plan = teardown_plan(config)
    return TeardownSteps(
        cluster=plan.cluster,
        provider=plan.provider.value,
        removes=(plan.config_folder + "/", *plan.iac_inputs),
        commands=(command.strip(),) if command.strip() else plan.destroy_commands,
    )


def recorded_steps(detail: Mapping[str, Any]) -> TeardownSteps:
    """The steps an approval recorded, refused unless they still match their digest."""
    steps = detail.get("steps")
    if not isinstance(steps, Mapping):
        raise DecommissionRefused(
            "the approval records no teardown steps, so nothing can run as approved; clear "
            "approve_teardown to approve the teardown as it is planned now. Nothing was removed."
        )
    found = TeardownSteps(
        cluster=str(steps.get("cluster")),
        provider=str(steps.get("provider")),
        removes=tuple(steps.get("removes") or ()),
        commands=tuple(steps.get("commands") or ()),
    )
    if not found.commands or found.digest != steps.get("digest"):
        raise DecommissionRefused(
            f"the approved teardown steps do not match their digest ({steps.get('digest')}): "
            "the record was changed after the approval; clear approve_teardown to approve "
            "again. Nothing was removed."
        )
    return found


def check_unchanged(approved: TeardownSteps, now: TeardownSteps) -> None:
    """Refuse when the teardown planned now differs from the one a person approved."""
    if approved == now:
        return
    changed = [
        f"{name}: approved {getattr(approved, name)!r}, now {getattr(now, name)!r}"
        for name in ("cluster", "provider", "removes", "commands")
        if getattr(approved, name) != getattr(now, name)
    ]
    raise DecommissionRefused(
        f"the teardown plan changed since it was approved (digest {approved.digest[:12]}, now "
        f"{now.digest[:12]}): " + "; ".join(changed) + ". Nothing runs that a person did not "
        "approve: clear approve_teardown to approve the plan as it is now, or restore what "
        "changed (the engagement's config or the teardown_command setting). Nothing was removed."
    )


def teardown_files(plan: TeardownPlan, known: Iterable[str] = ()) -> dict[str, None]:
    """Every path the teardown change deletes (``None`` deletes a path).

    ``known`` is what the deployment renders for the community; the encrypted files were
    added by hand, so their conventional names are listed too. Deleting an absent path
    changes nothing, so listing more than exists is safe; a file added under another name is
    caught by the reviewer checklist, not here.
    """
    folder = plan.config_folder
    secrets = [
        "enc-deployer-credentials.secret.json",
        "enc-deployer-credentials.secret.yaml",
        "enc-support.secret.values.yaml",
        "enc-grafana-token.secret.yaml",
        "enc-imagebuilding-common.secret.values.yaml",
        *(f"enc-{hub}.secret.values.yaml" for hub in ("staging", "prod", "workshop", "binder")),
    ]
    paths = {*known, *plan.iac_inputs, *(f"{folder}/{name}" for name in secrets)}
    if plan.provider is CloudProvider.AWS:
        paths.add(f"eksctl/ssh-keys/secret/{plan.cluster}.key")
    return dict.fromkeys(sorted(paths))


def teardown_pr_body(
    config: CommunityConfig,
    plan: TeardownPlan,
    backups: Sequence[Mapping[str, Any]],
    end: dt.date,
    steps: TeardownSteps,
) -> str:
    """What a reviewer of the teardown pull request must know and check.

    ``backups`` are the verified manifests' summaries (:meth:`Manifest.summary`); ``steps``
    are the approved ones, whose commands the destroy step runs.
    """
    backup_lines = "\n".join(
        f"- `{b['hub']}`: `s3://{b['bucket']}/` ({b['archived']} archives of {b['users']} home "
        f"directories, kept until {b['expires_on']}; manifest `{b['manifest']}`)"
        for b in backups
    )
    clients = "\n".join(f"- [ ] {c}" for c in plan.auth_clients) or "- none"
    follow = "\n".join(f"- [ ] {f}" for f in plan.follow_ups)
    removed = "\n".join(f"- `{p}`" for p in (plan.config_folder + "/", *plan.iac_inputs))
    commands = "\n".join(steps.commands)
    return (
        f"Decommission **{config.name}** (`{config.community_id}`): the engagement ended on "
        f"{end} and was not renewed.\n\n"
        f"### Removed by this change\n{removed}\n\n"
        f"### Home directories are backed up (verified)\n{backup_lines}\n\n"
        f"### Before merging: delete these authentication clients\n{clients}\n\n"
        "### Destroy step (run by the pipeline once this is merged, from the commit this "
        "change starts from: the last one holding the inputs it deletes)\n"
        f"Approved as shown (digest `{steps.digest}`); the pipeline runs exactly this:\n"
        f"```\n{commands}\n```\n\n"
        f"### Afterwards\n{follow}\n\n"
        f"Reviewer: check that nothing is left under `{plan.config_folder}/`; files added by "
        "hand under names the pipeline does not know are not deleted by this change.\n"
    )


def record_cluster_gone_by_hand(
    store: EngagementStore,
    community_id: str,
    end: dt.date,
    *,
    how: str,
    by: str,
    now: dt.datetime,
    merged: Callable[[str, str | None], bool],
) -> tuple[ActionRecord, bool]:
    """Record that a person checked the cluster is gone, when the pipeline could not check.

    Only for a decommission whose teardown was approved, proposed and merged (``merged``
    answers for the change's branch and the commit it started from), and still ending on
    ``end``; a second call keeps the first record. Returns the record and whether it is new.
    """
    from engagements.onboarding import effective_config, load_engagement

    if not how.strip():
        raise DecommissionRefused("say how the removal was checked (--how): nothing recorded")
    engagement = load_engagement(store, community_id)
    config = effective_config(engagement)
    check_identity(community_id, engagement, config)
    check_still_ending(engagement, end, config.contract.end)
    existing = store.get_action(community_id, action_key("cluster-gone", end))
    if existing is not None:
        return existing, False
    approval = store.get_action(community_id, action_key("approval", end))
    proposed = store.get_action(community_id, action_key("teardown-pr", end))
    if approval is None or not approval.detail.get("approved") or proposed is None:
        raise DecommissionRefused(
            f"{community_id}'s teardown for the end {end} was not approved and proposed: "
            "there is no removal to confirm; nothing recorded"
        )
    if not merged(proposed.detail["branch"], proposed.detail.get("base_commit")):
        raise DecommissionRefused(
            f"the teardown change {proposed.detail['branch']} is not merged: the cluster is not "
            "to be removed before it is reviewed and merged; nothing recorded"
        )
    detail = {
        "provider": "checked by hand",
        "cluster": config.cluster_name,
        "how": how.strip(),
        "checked_by": by,
        "checked_at": now.isoformat(),
    }
    key = action_key("cluster-gone", end)
    store.record_action(community_id, key, "verification", detail)
    return store.get_action(community_id, key), True
