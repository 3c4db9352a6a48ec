"""The command line's edge: one error policy, and text from the store made safe to print.

Bad input is one line per problem, ``WHERE: key.path: reason`` (the file, the argument or
the store, then what is wrong), exit code 1, or 2 for a command-line value the command cannot
take; nothing is sent, stored or deleted on the way.
"""

from __future__ import annotations

import datetime as dt
import getpass
from collections.abc import Callable
from typing import NoReturn, TypeVar

from engagements.config import (
    CommunityConfig,
    ConfigError,
    check_date,
    control_character,
    load_config,
)

T = TypeVar("T")


class CommandError(Exception):
    """What a command refuses: ``WHERE: reason`` lines and the exit code (2: usage)."""

    def __init__(self, lines: list[str], code: int = 1) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines
        self.code = code


def refuse(where: str, reason: str, *, usage: bool = False) -> NoReturn:
    raise CommandError([f"{where}: {reason}"], 2 if usage else 1)


def open_store(*, existing: bool = True):
    """The configured store; with ``existing``, the embedded one must already exist (a
    command that reads or updates records never creates an empty store in their place)."""
    from engagements.hooks.store import get_store
    from engagements.store.local import LocalStore

    store = get_store()
    if existing and isinstance(store, LocalStore) and not store.exists:
        refuse(
            f"SQLite store {store.path}",
            "does not exist, so nothing is recorded there; check ENGAGEMENTS_STORE_PATH, or "
            "create it with `engagements seed FILE`",
        )
    return store


def load_file(file: str) -> CommunityConfig:
    """A config file; its problems as ``FILE: key.path: reason``."""
    try:
        return load_config(file)
    except ConfigError as exc:
        raise CommandError([f"{file}: {path}: {reason}" for path, reason in exc.problems]) from None


def find_engagement(store, community_id: str):
    engagement = store.get_engagement(community_id)
    if engagement is None:
        refuse(community_id, "no engagement for this community in the store")
    return engagement


def stored_config(engagement) -> CommunityConfig:
    """The engagement's config as the pipelines use it; a stored one that is no longer valid
    names the record and each problem."""
    from engagements.onboarding import effective_config

    try:
        return effective_config(engagement)
    except ConfigError as exc:
        where = f"stored engagement {engagement.community_id!r}"
        raise CommandError(
            [f"{where}: {path}: {reason}" for path, reason in exc.problems]
        ) from None


def checked_text(value: str | None, option: str, *, multiline: bool = False) -> str | None:
    """A free text argument, refused if it holds terminal control characters."""
    if value is not None and (found := control_character(value, multiline=multiline)):
        refuse(option, f"contains the control character {found}", usage=True)
    return value


def parse_day(value: str, option: str) -> dt.date:
    try:
        return check_date(dt.date.fromisoformat(value))
    except ValueError as exc:
        reason = str(exc) if value[:4].isdigit() and len(value) == 10 else "expected YYYY-MM-DD"
        refuse(option, f"{value!r}: {reason}", usage=True)


def parsed(where: str, parse: Callable[[str], T], value: str) -> T:
    """A command-line value through its parser; a ValueError is a usage error naming it."""
    try:
        return parse(value)
    except ValueError as exc:
        refuse(where, str(exc), usage=True)


def printable(text: str | None) -> str:
    """Text from the store as a terminal can show it: control characters as escapes."""
    if text is None:
        return "-"
    return "".join(
        repr(char)[1:-1] if control_character(char, multiline=False) else char for char in text
    )


def who(explicit: str | None) -> str:
    from engagements.milestones import recorded_by

    return checked_text(explicit, "--by") or recorded_by(getpass.getuser(), "engagements CLI")


def print_unconfirmed_emails(store, community_id: str) -> None:
    """Emails whose sending began but was not confirmed: the next run of their task sends
    them (same Message-ID)."""
    from engagements.onboarding import email_sent

    pending = [a for a in store.list_actions(community_id, kind="email") if not email_sent(a)]
    if pending:
        print("\nEmails recorded as being sent, not confirmed sent (re-run their task):")
    for action in pending:
        subject = printable(action.detail.get("subject"))
        print(f"  {action.created_at:%Y-%m-%d %H:%M}  {action.key}  {subject}")


def describe_recorded(engagement, config: CommunityConfig) -> str:
    """What the store holds for an engagement that seeding leaves as it is."""
    signed = [
        party
        for party, flag in (
            ("community", engagement.agreement_signed_community),
            ("2i2c", engagement.agreement_signed_2i2c),
            ("CS&S", engagement.agreement_signed_css),
        )
        if flag
    ]
    facts = [
        f"already in the store as {engagement.status.value}",
        f"agreement signed by {', '.join(signed)}" if signed else "agreement not signed",
        "uploaded" if engagement.agreement_url else "not uploaded",
    ]
    if engagement.config != config.to_dict():
        facts.append("its recorded config differs from the file and is kept")
    return "; ".join(facts) + " (nothing changed)"
