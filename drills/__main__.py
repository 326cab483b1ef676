"""``python -m drills`` (``make drill``): the DR drill on a local environment of its own.

It starts both regions on free ports (each running the canary against the other), sends payments
steadily through the merchants' client, faults the primary, fails back with the operator's
checks, and reports RTO as detect / decide / execute, RPO and duplicates. Exit status 1 if a
payment was lost or doubled, or the caller saw an error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from chalicelib.names import DEFAULT_PRIMARY_REGION, DEFAULT_SECONDARY_REGION, Topology, topology_refusal
from drills.riders import RIDER_FAULTS, RidersPlan, run_riders_drill
from drills.scenario import FAULTS, DrillPlan, run_drill
from drills.timeline import draw_riders_timeline, draw_timeline
from drills.webhooks import WebhookDrillPlan, run_webhook_drill
from localenv import replication
from localenv.environment import (
    LocalEnvironment,
    RegionPlan,
    add_consistency_argument,
    add_topology_argument,
)
from localenv.network import free_port


def build_parser() -> argparse.ArgumentParser:
    """The drill's arguments."""
    parser = argparse.ArgumentParser(
        prog="python -m drills",
        description="Start a local environment (both regions, free ports, each running the canary against the "
        "other), send payments steadily through a client that follows Route 53's failover record (the primary's "
        "calculated health check: its /health and the secondary's canary alarm), fault the primary, fail back "
        "with the operator's checks, and report RTO as detect / decide / execute, RPO and duplicates. Exit "
        "status 1 if a payment was lost or doubled.",
    )
    parser.add_argument("--primary-region", default=DEFAULT_PRIMARY_REGION)
    parser.add_argument("--secondary-region", default=DEFAULT_SECONDARY_REGION)
    parser.add_argument(
        "--fault",
        choices=sorted(FAULTS),
        default="api",
        help="; ".join(f"{name}: {what}" for name, what in FAULTS.items()),
    )
    parser.add_argument("--rate", type=float, default=10.0, help="payments per second (default 10)")
    parser.add_argument(
        "--outage", type=float, default=10.0, help="seconds the primary stays down (default 10)"
    )
    add_consistency_argument(parser)
    add_topology_argument(parser)
    parser.add_argument(
        "--riders",
        action="store_true",
        help="several merchants' riders (both endpoints and one domain each) instead of one client; "
        "always so in active-active, whose riders are split between the regions",
    )
    parser.add_argument(
        "--webhooks",
        action="store_true",
        help="the webhook drill instead: a merchant's receiver down for an hour, the primary lost in the "
        "middle, in compressed time (an hour in ten seconds)",
    )
    parser.add_argument("--png", type=Path, help="write the timeline picture here")
    parser.add_argument("--log-dir", type=Path, default=Path(".localenv/drill"), help="process output")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the drill and print its report (and the timeline picture's path)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    refusal = topology_refusal(args.topology, strong_consistency=args.consistency == "strong")
    if refusal:
        parser.error(f"{refusal}; add --consistency strong (CONSISTENCY=strong)")
    riders = args.riders or args.topology is Topology.ACTIVE_ACTIVE
    if riders and args.fault not in RIDER_FAULTS:
        parser.error(f"the riders' drill takes --fault {' or '.join(RIDER_FAULTS)}")
    replication.VERBOSE = False
    plan = DrillPlan(rate_per_second=args.rate, outage_seconds=args.outage, fault=args.fault)
    plans = [RegionPlan(args.primary_region, free_port()), RegionPlan(args.secondary_region, free_port())]
    if args.webhooks:
        hooks = WebhookDrillPlan()
        with LocalEnvironment(plans, log_dir=args.log_dir, webhook_time_scale=hooks.scale) as environment:
            hooks_report = run_webhook_drill(environment, environment.target(), hooks)
        print(hooks_report.table())
        return 0 if hooks_report.passed else 1
    # The gray failure is the one only the observer sees: the primary's own orchestrator is off.
    idle = frozenset({args.primary_region}) if args.fault == "gray" else frozenset()
    with LocalEnvironment(
        plans,
        log_dir=args.log_dir,
        canary_seconds=plan.canary_seconds,
        orchestrators_off=idle,
        strong_consistency=args.consistency == "strong",
        topology=args.topology,
    ) as environment:
        target = environment.target()
        if riders:
            ride = RidersPlan(topology=args.topology, fault=args.fault, outage_seconds=args.outage)
            riders_report = run_riders_drill(environment, target, ride)
        else:
            report = run_drill(environment, target, plan)
    if riders:
        print(riders_report.table())
        if args.png:
            print(f"timeline: {draw_riders_timeline(riders_report, target.regions, args.png)}")
        return 0 if riders_report.passed else 1
    print(report.table())
    if args.png:
        print(f"timeline: {draw_timeline(report, target.regions, args.png)}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
