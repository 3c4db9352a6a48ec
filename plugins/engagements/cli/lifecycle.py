"""Commands for lifecycle steps made by hand or planned ahead: a decommission's cluster
checked gone, and the platform upkeep plan."""

from __future__ import annotations

import argparse
import datetime as dt
import json

from engagements.cli.policy import CommandError, checked_text, open_store, parse_day, refuse, who


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


def day_argument(text: str) -> dt.date:
    """An argparse type: a YYYY-MM-DD day, or argparse's own usage error."""
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
