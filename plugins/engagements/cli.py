"""``engagements``: the command line over the same functions the pipelines use.

One error policy, at this edge: bad input is one line per problem, ``WHERE: key.path:
reason`` (the file, the argument or the store, then what is wrong), exit code 1, or 2 for a
command-line value the command cannot take; nothing is sent, stored or deleted on the way,
and there is never a traceback (``ENGAGEMENTS_DEBUG=1`` shows one for an unexpected error).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from engagements.cli_policy import (
    CommandError,
    checked_text,
    describe_recorded,
    find_engagement,
    load_file,
    open_store,
    parse_day,
    parsed,
    print_unconfirmed_emails,
    printable,
    refuse,
    stored_config,
    who,
)
from engagements.config import URL_PATTERN, ConfigError, control_character, load_config


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


def cmd_status(args: argparse.Namespace) -> int:
    store = open_store()
    engagement = find_engagement(store, args.community_id)
    today = dt.datetime.now(dt.UTC).date()
    print(
        f"{engagement.community_id}: {printable(engagement.name)} — "
        f"status {engagement.status.value}"
    )
    rows = [("MILESTONE", "DUE", "DONE", "BY", "OVERDUE")]
    for m in store.list_milestones(args.community_id):
        rows.append(
            (
                m.milestone,
                m.due.isoformat() if m.due else "-",
                m.done_at.strftime("%Y-%m-%d %H:%M") if m.done_at else "-",
                printable(m.done_by),
                f"yes ({(today - m.due).days} days)" if m.overdue(today) else "no",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    _print_support_hours(store, args.community_id, today)
    print_unconfirmed_emails(store, args.community_id)
    return 0


def _print_support_hours(store, community_id: str, today: dt.date) -> None:
    """The last four quarters' image-support hours against the tier's allowance."""
    from engagements.checkin import (
        SUPPORT_HOURS,
        SUPPORT_HOURS_PER_QUARTER,
        Quarter,
        hours_by_quarter,
        support_hours,
    )

    entries = support_hours(store.list_actions(community_id, kind=SUPPORT_HOURS))
    totals = hours_by_quarter(entries)
    print(f"\nImage-support hours ({SUPPORT_HOURS_PER_QUARTER} h included each quarter):")
    for quarter in sorted(set(totals) | {Quarter.of(today)}, reverse=True)[:4]:
        used = totals.get(quarter, 0)
        over = "  over the allowance" if used > SUPPORT_HOURS_PER_QUARTER else ""
        print(f"  {quarter}: {used} h used{over}")
        for entry in (e for e in entries if Quarter.of(e.on) == quarter):
            print(
                f"    {entry.on}  {entry.hours} h  {printable(entry.note)} ({printable(entry.by)})"
            )


def cmd_milestone_mark(args: argparse.Namespace) -> int:
    from engagements.milestones import UnknownMilestone, get_milestone, record_done

    try:
        spec = get_milestone(args.milestone)
    except UnknownMilestone as exc:
        refuse("milestone", str(exc), usage=True)
    by, note = who(args.by), checked_text(args.note, "--note", multiline=True)
    store = open_store()
    find_engagement(store, args.community_id)
    recording = record_done(store, args.community_id, args.milestone, by=by, note=note)
    record = recording.record
    done = f"by {printable(record.done_by)} at {record.done_at:%Y-%m-%d %H:%M}"
    if recording.already:
        print(f"{spec.title}: already recorded {done}")
    else:
        print(f"{spec.title}: recorded done {done}")
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


def cmd_seed(args: argparse.Namespace) -> int:
    """Add each config's engagement if the store has none; never change a recorded one."""
    configs, problems = [], []
    for file in args.files:
        try:
            configs.append((file, load_file(file)))
        except CommandError as exc:
            problems += exc.lines
    if problems:  # nothing is seeded from a list with a bad file in it
        raise CommandError([*problems, "nothing was seeded"])
    store = open_store(existing=False)
    signed = not args.unsigned
    for file, config in configs:
        existing = store.get_engagement(config.community_id)
        if existing is not None:
            print(f"left alone {config.community_id}: {describe_recorded(existing, config)}")
            continue
        store.upsert_engagement(
            config.community_id,
            config.name,
            config.to_dict(),
            agreement_signed_community=signed,
            agreement_signed_2i2c=signed,
            agreement_signed_css=signed,
            agreement_url=Path(file).resolve().as_uri() if signed else None,
        )
        state = "agreement signed and uploaded" if signed else "agreement not yet signed"
        print(f"seeded {config.community_id} ({config.name}): Closed-Won, {state}")
    return 0


def cmd_agreement(args: argparse.Namespace) -> int:
    import re

    fields: dict = {f"agreement_signed_{party}": True for party in args.signed_by}
    if args.url:
        if not re.fullmatch(URL_PATTERN, args.url) or control_character(args.url):
            refuse("--url", f"{args.url!r} is not an http(s) address", usage=True)
        fields["agreement_url"] = args.url
    if not fields:
        refuse("agreement", "nothing to record: give --signed-by and/or --url", usage=True)
    store = open_store()
    find_engagement(store, args.community_id)
    engagement = store.update_engagement(args.community_id, **fields)
    print(
        f"{engagement.community_id}: signed by community={engagement.agreement_signed_community} "
        f"2i2c={engagement.agreement_signed_2i2c} css={engagement.agreement_signed_css}; "
        f"agreement {printable(engagement.agreement_url or 'not uploaded')}"
    )
    return 0


def cmd_support_hours_add(args: argparse.Namespace) -> int:
    from engagements.checkin import (
        SUPPORT_HOURS,
        SUPPORT_HOURS_PER_QUARTER,
        Quarter,
        hours_by_quarter,
        parse_hours,
        record_support_hours,
        support_hours,
    )

    try:
        hours = parse_hours(args.hours)
    except ValueError as exc:
        refuse("hours", str(exc), usage=True)
    on = parse_day(args.date, "--date") if args.date else dt.datetime.now(dt.UTC).date()
    note, by = checked_text(args.note, "--note", multiline=True), who(args.by)
    store = open_store()
    find_engagement(store, args.community_id)
    record_support_hours(store, args.community_id, hours, note=note, by=by, on=on)
    quarter = Quarter.of(on)
    entries = support_hours(store.list_actions(args.community_id, kind=SUPPORT_HOURS))
    used = hours_by_quarter(entries)[quarter]
    over = "; over the allowance" if used > SUPPORT_HOURS_PER_QUARTER else ""
    print(
        f"{args.community_id}: {hours} h of image support recorded on {on}; "
        f"{quarter}: {used} of {SUPPORT_HOURS_PER_QUARTER} h used{over}"
    )
    return 0


def cmd_cost_record(args: argparse.Namespace) -> int:
    from decimal import Decimal

    from engagements.billing import Month, format_money, parse_amount, parse_currency
    from engagements.costs import ENTRY_PROVIDERS, record_cost_entry

    month = parsed("month", Month.parse, args.month)
    amount = parsed("amount", parse_amount, args.amount)
    currency = parsed("--currency", parse_currency, args.currency)
    if month >= Month.of(dt.datetime.now(dt.UTC).date()):
        refuse("month", f"{month} has not ended yet; record a month once it is over", usage=True)
    note, by = checked_text(args.note, "--note", multiline=True), who(args.by)
    store = open_store()
    provider = stored_config(find_engagement(store, args.community_id)).cloud.provider
    if provider not in ENTRY_PROVIDERS:
        refuse(
            args.community_id,
            f"runs on {provider.value}, whose costs are read from its billing API; recorded "
            "costs are for azure and jetstream2",
            usage=True,
        )
    replaced = record_cost_entry(
        store, args.community_id, month, amount, currency, by=by, note=note
    )
    recorded = format_money(amount, currency)
    typed = Decimal(args.amount.strip())
    rounded = f" (rounded from {args.amount.strip()})" if amount != typed else ""
    was = f" (replaces {format_money(replaced.amount, replaced.currency)})" if replaced else ""
    print(f"{args.community_id}: cloud cost for {month} recorded: {recorded}{rounded}{was}")
    return 0


def _change_merged(branch: str, since: str | None) -> bool:
    from engagements.hooks.infra_repo import (
        ChangeState,
        get_infra_repository,
        load_deployment_settings,
    )

    repo = get_infra_repository(load_deployment_settings())
    return repo.change_state(branch, since=since) is ChangeState.MERGED


def cmd_decommission_cluster_gone(args: argparse.Namespace) -> int:
    from engagements.decommission.dates import (
        DecommissionCancelled,
        DecommissionRefused,
        action_key,
    )
    from engagements.decommission.teardown import record_cluster_gone_by_hand
    from engagements.hooks.github import GitHubError
    from engagements.hooks.infra_repo import InfraRepositoryError
    from engagements.onboarding import NotFound

    end = parse_day(args.end_date, "end_date")
    how, by = checked_text(args.how, "--how", multiline=True), who(args.by)
    try:
        record, new = record_cluster_gone_by_hand(
            open_store(),
            args.community_id,
            end,
            how=how,
            by=by,
            now=dt.datetime.now(dt.UTC),
            merged=_change_merged,
        )
    except (NotFound, GitHubError, InfraRepositoryError) as exc:
        refuse(args.community_id, str(exc))
    except (DecommissionRefused, DecommissionCancelled) as exc:
        refuse(args.community_id, str(exc), usage=True)
    detail = record.detail
    if not new:
        print(
            f"{args.community_id}: the removal was already verified "
            f"({detail.get('provider')}, {detail.get('checked_at')}); nothing changed"
        )
        return 0
    print(
        f"{args.community_id}: cluster {detail['cluster']} recorded gone, checked by "
        f"{detail['checked_by']} ({action_key('cluster-gone', end)}). Next: clear "
        "record_decommissioned in the community's engagement_decommission run (run id "
        f"decommission__{args.community_id}__{end} when the renewal started it)."
    )
    return 0


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


def cmd_upkeep_plan(args: argparse.Namespace) -> int:
    """Print the plan as JSON; bad input is one ``FILE: key.path: reason`` line per problem
    (the command line's error policy: on stderr, exit 1, nothing on stdout)."""
    from dataclasses import replace

    from engagements.upkeep import (
        ObservationError,
        Policy,
        SettingError,
        load_observation,
        load_upkeep_settings,
        plan,
    )

    try:
        policy = Policy.from_settings(load_upkeep_settings())
    except SettingError as exc:
        raise CommandError([str(exc)]) from None
    problems: list[tuple[str, str]] = []
    try:
        observation = load_observation(args.file)
    except ObservationError as exc:
        problems += exc.problems
    if args.batch_size is not None:
        if args.batch_size < 1:
            problems.append(("--batch-size", f"must be at least 1, not {args.batch_size}"))
        else:
            policy = replace(policy, batch_size=args.batch_size)
    if problems:
        raise CommandError([f"{args.file}: {path}: {reason}" for path, reason in problems])
    today = args.today or dt.datetime.now(dt.UTC).date()
    print(json.dumps(plan(observation, today, policy), indent=2))
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
    import os

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="engagements", description="Engagement lifecycle pipelines: the command line."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check a community config file")
    p.add_argument("file")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("status", help="milestones of an engagement with due dates")
    p.add_argument("community_id")
    p.set_defaults(func=cmd_status)

    milestone = sub.add_parser("milestone", help="record human milestones").add_subparsers(
        dest="action", required=True
    )
    p = milestone.add_parser("mark", help="record a milestone as done")
    p.add_argument("community_id")
    p.add_argument("milestone")
    p.add_argument("--note")
    p.add_argument("--by", help="who did it (default: your login)")
    p.set_defaults(func=cmd_milestone_mark)

    p = sub.add_parser("render-email", help="print a rendered email for a config file")
    p.add_argument("template")
    p.add_argument("file")
    p.set_defaults(func=cmd_render_email)

    p = sub.add_parser("seed", help="load community configs into the store as Closed-Won")
    p.add_argument("files", nargs="+")
    p.add_argument("--unsigned", action="store_true", help="leave the agreement unsigned")
    p.set_defaults(func=cmd_seed)

    p = sub.add_parser("agreement", help="record BD's agreement facts (signatures, upload)")
    p.add_argument("community_id")
    p.add_argument("--signed-by", action="append", default=[], choices=["community", "2i2c", "css"])
    p.add_argument("--url", help="where the signed agreement is uploaded")
    p.set_defaults(func=cmd_agreement)

    hours = sub.add_parser("support-hours", help="image-support time spent").add_subparsers(
        dest="action", required=True
    )
    p = hours.add_parser("add", help="record image-support hours (4 h included each quarter)")
    p.add_argument("community_id")
    p.add_argument("hours", help="hours spent, e.g. 1.5")
    p.add_argument("--note", required=True, help="what the time was spent on")
    p.add_argument("--date", help="day the work was done, YYYY-MM-DD (default: today, UTC)")
    p.add_argument("--by", help="who did it (default: your login)")
    p.set_defaults(func=cmd_support_hours_add)

    cost = sub.add_parser("cost", help="cloud costs without a billing API").add_subparsers(
        dest="action", required=True
    )
    p = cost.add_parser("record", help="record a month's cloud cost (Azure, Jetstream2)")
    p.add_argument("community_id")
    p.add_argument("month", help="YYYY-MM, a month that has ended")
    p.add_argument("amount", help="the month's cost as the provider's console shows it")
    p.add_argument("--currency", default="USD")
    p.add_argument("--note")
    p.add_argument("--by", help="who recorded it (default: your login)")
    p.set_defaults(func=cmd_cost_record)

    decommission = sub.add_parser(
        "decommission", help="steps of a decommission made by hand"
    ).add_subparsers(dest="action", required=True)
    p = decommission.add_parser(
        "cluster-gone",
        help="record that you checked the cluster is gone (when the pipeline could not check)",
    )
    p.add_argument("community_id")
    p.add_argument("end_date", help="the contract end of the decommission run, YYYY-MM-DD")
    p.add_argument("--how", required=True, help="what you ran and what it said")
    p.add_argument("--by", help="who checked (default: your login)")
    p.set_defaults(func=cmd_decommission_cluster_gone)

    upkeep = sub.add_parser("upkeep", help="platform upkeep of the clusters").add_subparsers(
        dest="action", required=True
    )
    p = upkeep.add_parser(
        "plan", help="print, as JSON, the upgrades an observation of the fleet calls for"
    )
    p.add_argument("file", help="the observation (YAML or JSON): offered versions, clusters")
    p.add_argument("--today", type=_day, help="plan as of this day, YYYY-MM-DD (default: today)")
    p.add_argument(
        "--batch-size",
        type=int,
        help="clusters per batch after the canaries (default: engagements_upkeep_batch_size, 5)",
    )
    p.set_defaults(func=cmd_upkeep_plan)

    p = sub.add_parser("trigger-conf", help="print a config as the onboarding DAG's JSON conf")
    p.add_argument("file")
    p.set_defaults(func=cmd_trigger_conf)

    p = sub.add_parser(
        "render-infra",
        help="write the two infrastructure-repository changes (cluster, then hubs) for a config",
    )
    p.add_argument("file")
    p.add_argument(
        "--out", required=True, help="folder to write the trees into (1-cluster/, 2-hubs/)"
    )
    p.add_argument(
        "--reference",
        help="a checkout of the infrastructure repository, whose own validation is run, or a "
        "folder of its schemas and chart defaults (default: $ENGAGEMENTS_INFRA_REFERENCE_DIR; "
        "without it, structural checks only)",
    )
    p.add_argument(
        "--outputs",
        help="YAML of the applied cluster's outputs for the hubs (name: {hub: value}); without "
        "it the hubs are rendered with example outputs, and say so",
    )
    p.set_defaults(func=cmd_render_infra)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; every refusal or failure is its lines on stderr and an exit code."""
    from engagements.hooks import ConnectionUnusable
    from engagements.store.base import StoreError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CommandError as exc:
        lines, code = exc.lines, exc.code
    except (StoreError, ConnectionUnusable) as exc:  # the message names the store and what
        lines, code = [str(exc)], 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if os.environ.get("ENGAGEMENTS_DEBUG"):
            raise
        lines = [
            f"engagements {args.command}: unexpected {type(exc).__name__}: {exc} (a bug: "
            "please report it; ENGAGEMENTS_DEBUG=1 shows where it happened)"
        ]
        code = 1
    for line in lines:
        print(line, file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
