"""``vir region coordination``: a region's rules for a match's coordinator.
``vir region follow-up``: after how many days a match without confirmed contact is
overdue for the region's follow-up officer.

``--categories youth_care,neighbourhood_team,gp`` (``--days 21``) sets them (audited);
without it the setting in effect is shown, the default where the region set none
(docs/matching.md, "Coordinator" and "Follow-up officer").
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from vir.cli_databases import open_database
from vir.domain.clock import utc_now
from vir.settings import Settings

Command = Callable[[Settings, argparse.Namespace], int]


def cmd_region_coordination(settings: Settings, args: argparse.Namespace) -> int:
    from vir.domain.coordination import parse_rules
    from vir.services.coordination import rules_in_effect, set_rules

    db = open_database(settings.database_url)
    if args.categories is not None:
        rules = set_rules(db, args.region, parse_rules(args.categories), utc_now())
    else:
        rules = rules_in_effect(db, args.region)
    source = "configured" if rules.configured else "default: the region set none"
    print(f"vir: coordination in {rules.region} ({source}), first to last:")
    for place, category in enumerate(rules.categories, start=1):
        print(f"{place:>3}  {category}")
    return 0


def cmd_region_follow_up(settings: Settings, args: argparse.Namespace) -> int:
    from vir.services.followup import period, set_period

    db = open_database(settings.database_url)
    if args.days is not None:
        found = set_period(db, args.region, args.days, utc_now())
    else:
        found = period(db, args.region)
    source = "configured" if found.configured else "default: the region set none"
    print(f"vir: follow-up in {found.region} ({source}): overdue after {found.days} days")
    return 0


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``vir region ...``."""
    region = sub.add_parser("region").add_subparsers(dest="region_command", required=True)
    coordination = region.add_parser(
        "coordination", help="the organisation categories that coordinate matches, in order"
    )
    coordination.add_argument(
        "--region", required=True, help="the region, as organisations have it"
    )
    coordination.add_argument(
        "--categories", help="set them: categories, comma-separated, first to last"
    )
    coordination.set_defaults(run=cmd_region_coordination)
    follow_up = region.add_parser(
        "follow-up", help="after how many days a match without confirmed contact is overdue"
    )
    follow_up.add_argument("--region", required=True, help="the region, as organisations have it")
    follow_up.add_argument("--days", type=int, help="set it: whole days, 1 to 365")
    follow_up.set_defaults(run=cmd_region_follow_up)
