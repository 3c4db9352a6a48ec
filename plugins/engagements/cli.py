"""``engagements``: the command line over the same functions the pipelines use."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from engagements.config import ConfigError, load_config


def _store():
    from engagements.store import get_store

    return get_store()


def _who(explicit: str | None) -> str:
    return explicit or f"{getpass.getuser()} (engagements CLI)"


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.file)
    except ConfigError as exc:
        for path, reason in exc.problems:
            print(f"{args.file}: {path}: {reason}")
        print(f"{len(exc.problems)} problem(s); nothing was stored", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 1
    hubs = ", ".join(config.hub_urls.values())
    print(
        f"OK: {config.community_id} ({config.name}), {config.tier.value} tier, "
        f"{config.cloud.provider.value} {config.cloud.region}, "
        f"{len(config.representatives)} representative(s), hubs {hubs}"
    )
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    store = _store()
    engagement = store.get_engagement(args.community_id)
    if engagement is None:
        print(f"no engagement for {args.community_id!r} in the store", file=sys.stderr)
        return 1
    today = dt.datetime.now(dt.UTC).date()
    print(f"{engagement.community_id}: {engagement.name} — status {engagement.status.value}")
    rows = [("MILESTONE", "DUE", "DONE", "BY", "OVERDUE")]
    for m in store.list_milestones(args.community_id):
        rows.append(
            (
                m.milestone,
                m.due.isoformat() if m.due else "-",
                m.done_at.strftime("%Y-%m-%d %H:%M") if m.done_at else "-",
                m.done_by or "-",
                f"yes ({(today - m.due).days} days)" if m.overdue(today) else "no",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    _print_support_hours(store, args.community_id, today)
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
            print(f"    {entry.on}  {entry.hours} h  {entry.note} ({entry.by})")


def cmd_milestone_mark(args: argparse.Namespace) -> int:
    from engagements.milestones import UnknownMilestone, get_milestone

    try:
        spec = get_milestone(args.milestone)
    except UnknownMilestone as exc:
        print(str(exc), file=sys.stderr)
        return 2
    store = _store()
    if store.get_engagement(args.community_id) is None:
        print(f"no engagement for {args.community_id!r} in the store", file=sys.stderr)
        return 1
    before = store.get_milestone(args.community_id, args.milestone)
    record = store.record_milestone(
        args.community_id, args.milestone, by=_who(args.by), note=args.note
    )
    if before is not None and before.done:
        print(
            f"{spec.title}: already recorded by {record.done_by} at {record.done_at:%Y-%m-%d %H:%M}"
        )
    else:
        print(f"{spec.title}: recorded done by {record.done_by} at {record.done_at:%Y-%m-%d %H:%M}")
    return 0


def cmd_render_email(args: argparse.Namespace) -> int:
    from engagements.messages.emails import EmailKind, format_email_for_terminal, render_email
    from engagements.messages.previews import preview_extra
    from engagements.settings import load_settings

    try:
        kind = EmailKind(args.template)
    except ValueError:
        known = ", ".join(k.value for k in EmailKind)
        print(f"unknown template {args.template!r}; known: {known}", file=sys.stderr)
        return 2
    try:
        config = load_config(args.file)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    email = render_email(kind, config, load_settings(), extra=preview_extra(kind, config))
    print(format_email_for_terminal(email))
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    store = _store()
    status = 0
    for file in args.files:
        try:
            config = load_config(file)
        except ConfigError as exc:
            print(f"{file}: {exc}", file=sys.stderr)
            status = 1
            continue
        signed = not args.unsigned
        store.upsert_engagement(
            config.community_id,
            config.name,
            config.to_dict(),
            agreement_signed_community=signed,
            agreement_signed_2i2c=signed,
            agreement_signed_css=signed,
            agreement_url=f"file://{Path(file).resolve()}" if signed else None,
        )
        state = "agreement signed and uploaded" if signed else "agreement not yet signed"
        print(f"seeded {config.community_id} ({config.name}): Closed-Won, {state}")
    return status


def cmd_agreement(args: argparse.Namespace) -> int:
    store = _store()
    if store.get_engagement(args.community_id) is None:
        print(f"no engagement for {args.community_id!r} in the store", file=sys.stderr)
        return 1
    fields: dict = {f"agreement_signed_{party}": True for party in args.signed_by}
    if args.url:
        fields["agreement_url"] = args.url
    if not fields:
        print("nothing to record: give --signed-by and/or --url", file=sys.stderr)
        return 2
    engagement = store.update_engagement(args.community_id, **fields)
    print(
        f"{engagement.community_id}: signed by community={engagement.agreement_signed_community} "
        f"2i2c={engagement.agreement_signed_2i2c} css={engagement.agreement_signed_css}; "
        f"agreement {engagement.agreement_url or 'not uploaded'}"
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
        on = dt.date.fromisoformat(args.date) if args.date else dt.datetime.now(dt.UTC).date()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    store = _store()
    if store.get_engagement(args.community_id) is None:
        print(f"no engagement for {args.community_id!r} in the store", file=sys.stderr)
        return 1
    record_support_hours(store, args.community_id, hours, note=args.note, by=_who(args.by), on=on)
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
    from decimal import Decimal, InvalidOperation

    from engagements.costs import ENTRY_PROVIDERS, Month, format_money, record_cost_entry
    from engagements.onboarding import effective_config

    try:
        month = Month.parse(args.month)
        amount = Decimal(args.amount)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except InvalidOperation:
        print(f"error: {args.amount!r} is not an amount such as 1234.56", file=sys.stderr)
        return 2
    if month >= Month.of(dt.datetime.now(dt.UTC).date()):
        print(f"error: {month} has not ended yet; record a month once it is over", file=sys.stderr)
        return 2
    store = _store()
    engagement = store.get_engagement(args.community_id)
    if engagement is None:
        print(f"no engagement for {args.community_id!r} in the store", file=sys.stderr)
        return 1
    provider = effective_config(engagement).cloud.provider
    if provider not in ENTRY_PROVIDERS:
        print(
            f"error: {args.community_id} runs on {provider.value}, whose costs are read from its "
            "billing API; recorded costs are for azure and jetstream2",
            file=sys.stderr,
        )
        return 2
    try:
        replaced = record_cost_entry(
            store, args.community_id, month, amount, args.currency, by=_who(args.by), note=args.note
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    recorded = format_money(amount.quantize(Decimal("0.01")), args.currency.upper())
    was = f" (replaces {format_money(replaced.amount, replaced.currency)})" if replaced else ""
    print(f"{args.community_id}: cloud cost for {month} recorded: {recorded}{was}")
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
    from engagements.decommission import (
        DecommissionCancelled,
        DecommissionRefused,
        action_key,
        record_cluster_gone_by_hand,
    )
    from engagements.hooks.github import GitHubError
    from engagements.hooks.infra_repo import InfraRepositoryError
    from engagements.onboarding import NotFound

    try:
        end = dt.date.fromisoformat(args.end_date)
    except ValueError:
        print(f"error: end date {args.end_date!r} is not YYYY-MM-DD", file=sys.stderr)
        return 2
    try:
        record, new = record_cluster_gone_by_hand(
            _store(),
            args.community_id,
            end,
            how=args.how,
            by=_who(args.by),
            now=dt.datetime.now(dt.UTC),
            merged=_change_merged,
        )
    except (NotFound, GitHubError, InfraRepositoryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (DecommissionRefused, DecommissionCancelled) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
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


def cmd_trigger_conf(args: argparse.Namespace) -> int:
    from engagements.params import flatten_config

    try:
        config = load_config(args.file)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(json.dumps(flatten_config(config.to_dict()), indent=2))
    return 0


def cmd_render_infra(args: argparse.Namespace) -> int:
    from engagements.infra import InfraError, render_change, write_change
    from engagements.infra.validate import validate_change

    try:
        change = render_change(load_config(args.file))
    except (ConfigError, InfraError) as exc:
        for path, reason in exc.problems:
            print(f"{args.file}: {path}: {reason}")
        print(f"{len(exc.problems)} problem(s); nothing was written", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 1
    report = validate_change(change, args.reference)
    for where, reason in report.problems:
        print(f"{where}: {reason}")
    if not report.ok:
        print(f"{len(report.problems)} problem(s); nothing was written", file=sys.stderr)
        return 1
    for path in write_change(change, Path(args.out)):
        print(f"wrote {path}")
    checked = f"the schemas in {report.schemas}" if report.schemas else "structural checks only"
    print(f"validated with {checked}")
    print("secret files to add:")
    for item in change.follow_ups:
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

    p = sub.add_parser("trigger-conf", help="print a config as the onboarding DAG's JSON conf")
    p.add_argument("file")
    p.set_defaults(func=cmd_trigger_conf)

    p = sub.add_parser(
        "render-infra", help="write the infrastructure-repository change for a config file"
    )
    p.add_argument("file")
    p.add_argument("--out", required=True, help="folder to write the repository tree into")
    p.add_argument(
        "--reference",
        help="folder with the repository's schemas and chart defaults to validate against "
        "(default: $ENGAGEMENTS_INFRA_REFERENCE_DIR; without it, structural checks only)",
    )
    p.set_defaults(func=cmd_render_infra)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from engagements.store.base import StoreError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
