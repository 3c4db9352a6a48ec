"""Commands that read or record an engagement's facts in the store: status, milestones,
seeding, the agreement, image-support hours and recorded cloud costs."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from engagements.cli.policy import (
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
from engagements.config import URL_PATTERN, control_character


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
