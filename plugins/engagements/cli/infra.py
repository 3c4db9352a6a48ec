"""Commands over a community config file and the infrastructure it asks for: validate it,
render its emails, its onboarding conf and its infrastructure-repository changes."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from engagements.cli.policy import CommandError, load_file, refuse
from engagements.config import ConfigError, load_config


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.file)
    except ConfigError as exc:
        for path, reason in exc.problems:
            print(f"{args.file}: {path}: {reason}")
        print(f"{len(exc.problems)} problem(s); nothing was stored", file=sys.stderr)
        return 1
    hubs = ", ".join(config.hub_urls.values())
    print(
        f"OK: {config.community_id} ({config.name}), {config.tier.value} tier, "
        f"{config.cloud.provider.value} {config.cloud.region}, "
        f"{len(config.representatives)} representative(s), hubs {hubs}"
    )
    return 0


def cmd_render_email(args: argparse.Namespace) -> int:
    from engagements.messages.emails import EmailKind, format_email_for_terminal, render_email
    from engagements.previews import preview_extra
    from engagements.settings import load_settings

    try:
        kind = EmailKind(args.template)
    except ValueError:
        known = ", ".join(k.value for k in EmailKind)
        refuse("template", f"unknown template {args.template!r}; known: {known}", usage=True)
    config = load_file(args.file)
    email = render_email(kind, config, load_settings(), extra=preview_extra(kind, config))
    print(format_email_for_terminal(email))
    return 0


def cmd_trigger_conf(args: argparse.Namespace) -> int:
    from engagements.params import flatten_config

    config = load_file(args.file)
    print(json.dumps(flatten_config(config.to_dict()), indent=2, allow_nan=False))
    return 0


def _read_outputs(path: str) -> dict:
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        refuse(path, f"cannot read the outputs: {exc}")
    if not isinstance(data, dict):
        refuse(path, "not a mapping of outputs (name: {hub: value})")
    return data


def cmd_render_infra(args: argparse.Namespace) -> int:
    from engagements.hooks.infra_repo import load_deployment_settings
    from engagements.infra import (
        InfraError,
        combined,
        example_cluster_outputs,
        render_cluster_change,
        render_hubs_change,
        write_change,
    )
    from engagements.infra.reference import (
        ReferenceError,
        check_checkout,
        is_checkout,
        validate_with_checkout,
    )
    from engagements.infra.validate import REFERENCE_ENV, load_reference, validate_change
    from engagements.infra.workflow import DEPLOY_WORKFLOW

    out = Path(args.out)
    blocking = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        refuse("--out", f"{blocking} is a file; give a folder (created if missing)", usage=True)
    reference = args.reference or os.environ.get(REFERENCE_ENV)
    checkout = bool(reference) and is_checkout(reference)
    config = load_file(args.file)
    try:
        workflow = None
        if checkout:
            workflow = (check_checkout(reference) / DEPLOY_WORKFLOW).read_text(encoding="utf-8")
        elif reference:
            load_reference(reference)  # an unusable folder is refused before rendering
        ssh_key = load_deployment_settings().ssh_public_key
        cluster = render_cluster_change(config, ssh_public_key=ssh_key, deploy_workflow=workflow)
        example = args.outputs is None
        outputs = example_cluster_outputs(config) if example else _read_outputs(args.outputs)
        source = (
            "EXAMPLE values (no --outputs given), to be replaced by the applied cluster's"
            if example
            else f"read from {args.outputs}"
        )
        hubs = render_hubs_change(
            config,
            outputs,
            outputs_source=source,
            ssh_public_key=ssh_key,
            deploy_workflow=cluster.files.get(DEPLOY_WORKFLOW, workflow),
            example=example,
        )
        problems = [
            (f"{step}: {where}", reason)
            for step, report in (
                ("cluster", validate_change(cluster, None if checkout else reference)),
                ("hubs", validate_change(combined(cluster, hubs), None if checkout else reference)),
            )
            for where, reason in report.problems
        ]
        if checkout:
            problems += validate_with_checkout(reference, cluster, hubs)
    except InfraError as exc:
        lines = [f"{args.file}: {path}: {reason}" for path, reason in exc.problems]
        raise CommandError([*lines, f"{len(lines)} problem(s); nothing was written"]) from None
    except ReferenceError as exc:
        refuse("--reference", str(exc))
    if problems:
        lines = [f"{where}: {reason}" for where, reason in problems]
        raise CommandError([*lines, f"{len(problems)} problem(s); nothing was written"])
    for step, change in (("1-cluster", cluster), ("2-hubs", hubs)):
        print(f"{step} (pull request {step[0]}):")
        for path in write_change(change, out / step):
            print(f"  wrote {path}")
        for note in change.notes:
            print(f"  NOTE: {note}")
    if checkout:
        checked = (
            f"the repository's own validation from {Path(reference).resolve()} (deployer "
            "validate cluster-config, support-config, all-hub-config; jsonnet; terraform fmt "
            "and plan; deploy-hubs.yaml)"
        )
    elif reference:
        checked = f"the schemas in {Path(reference).resolve()}"
    else:
        checked = "structural checks only (give --reference <checkout> to run the repository's)"
    print(f"validated with {checked}")
    print("secret files to add:")
    for item in cluster.follow_ups + hubs.follow_ups:
        print(f"  - {item}")
    return 0
