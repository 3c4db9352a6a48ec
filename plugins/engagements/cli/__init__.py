"""``engagements``: the command line over the same functions the pipelines use.

One error policy, at this edge: bad input is one line per problem, ``WHERE: key.path:
reason`` (the file, the argument or the store, then what is wrong), exit code 1, or 2 for a
command-line value the command cannot take; nothing is sent, stored or deleted on the way,
and there is never a traceback (``ENGAGEMENTS_DEBUG=1`` shows one for an unexpected error).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from engagements.cli.infra import cmd_render_email, cmd_render_infra, cmd_trigger_conf, cmd_validate
from engagements.cli.lifecycle import cmd_decommission_cluster_gone, cmd_upkeep_plan, day_argument
from engagements.cli.policy import CommandError
from engagements.cli.records import (
    cmd_agreement,
    cmd_cost_record,
    cmd_milestone_mark,
    cmd_seed,
    cmd_status,
    cmd_support_hours_add,
)


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
    p.add_argument(
        "--today", type=day_argument, help="plan as of this day, YYYY-MM-DD (default: today)"
    )
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
