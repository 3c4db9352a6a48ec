"""Operators of the decommission lifecycle: thin wrappers over :mod:`engagements.decommission`.

Every step reads the engagement from the store when it runs and records what it did under a
key of this decommission (``decommission:<step>:<end date>``), so a re-run resumes: notices
are not sent twice, verified archives are not made again, a recorded pull request is found.

Nothing is ever reported as archived, removed or destroyed unless it was done and checked.
Steps that need a cluster or an account run only when its Airflow connection exists; without
one they skip, saying so and printing the plan (the embedded default). The destructive steps
re-read the store first: a renewal recorded meanwhile cancels the run before any removal.

One module per phase of the runbook: :mod:`.base` (the end date, the action log, the guards
and the cancellation every step shares), :mod:`.notices` (start and the three notices),
:mod:`.archive` (buckets and the archive job), :mod:`.backup` (the backup verified against the
hubs' users), :mod:`.approval` (the teardown approval form), :mod:`.teardown` (the pull request
and the destroy job) and :mod:`.cluster_gone` (the removal verified, and the final record).
The sensor waiting for the teardown change's merge is :mod:`engagements.sensors.decommission`.
"""
