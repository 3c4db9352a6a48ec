"""The teardown: what the pull request removes, the approved steps the destroy step runs, and
the removal checked by hand."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engagements.config import CloudProvider, CommunityConfig, HubAuth
from engagements.decommission.dates import (
    DecommissionRefused,
    action_key,
    check_identity,
    check_still_ending,
)
from engagements.store.base import ActionRecord, EngagementStore


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
