"""One shell script run in a pod, the way every job of the pipelines runs one.

Provisioning, the archive job and the destroy step each run a script in an image on a
cluster; :func:`pod_job` builds the ``KubernetesPodOperator`` for them, with the same shell,
logs and clean-up. It is called only when a task runs: the cncf-kubernetes provider and the
Kubernetes client are imported then, never when a DAG file is parsed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator


@dataclass(frozen=True)
class PodVolume:
    """A volume mounted in the job's pod: a claim by name, or scratch space without one."""

    name: str
    mount_path: str
    claim: str | None = None
    read_only: bool = False


def pod_job(
    *,
    task_id: str,
    name: str,
    kubernetes_conn_id: str,
    namespace: str,
    image: str,
    script: str,
    env: Mapping[str, str],
    secrets: Sequence[str] = (),
    volumes: Sequence[PodVolume] = (),
    service_account: str | None = None,
    labels: Mapping[str, str] | None = None,
    startup_timeout_seconds: int | None = None,
    xcom: bool = False,
) -> KubernetesPodOperator:
    """The pod running ``script`` with ``/bin/sh -c`` in ``image``; its logs go to the task's.

    ``secrets`` are Secrets whose keys become environment variables; ``xcom`` returns what
    the script writes to ``/airflow/xcom/return.json``. A pod that succeeded is deleted, one
    that failed is kept for an engineer to look at.
    """
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from kubernetes.client import models as k8s

    extra = (
        {}
        if startup_timeout_seconds is None
        else {"startup_timeout_seconds": startup_timeout_seconds}
    )
    return KubernetesPodOperator(
        task_id=task_id,
        kubernetes_conn_id=kubernetes_conn_id,
        namespace=namespace,
        name=name,
        image=image,
        cmds=["/bin/sh", "-c"],
        arguments=[script],
        env_vars=dict(env),
        env_from=[
            k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=secret)) for secret in secrets
        ],
        volumes=[
            k8s.V1Volume(
                name=v.name,
                persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(
                    claim_name=v.claim, read_only=v.read_only
                ),
            )
            if v.claim
            else k8s.V1Volume(name=v.name, empty_dir=k8s.V1EmptyDirVolumeSource())
            for v in volumes
        ],
        volume_mounts=[
            k8s.V1VolumeMount(name=v.name, mount_path=v.mount_path, read_only=v.read_only or None)
            for v in volumes
        ],
        service_account_name=service_account or None,
        labels=dict(labels or {}),
        get_logs=True,
        do_xcom_push=xcom,
        on_finish_action="delete_succeeded_pod",
        **extra,
    )
