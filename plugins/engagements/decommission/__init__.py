"""Decommissioning as plain functions: dates, archive layout, backup verification, teardown plan.

One module per phase of the runbook: :mod:`.dates` (notice and removal dates, action keys, the
guards that stop a run no longer due), :mod:`.archive` (buckets, keys, lifecycle, the archive
job's script), :mod:`.verification` (the manifest) and :mod:`.teardown` (the approved plan).

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
