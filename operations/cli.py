"""``payments-dr``: the operator's command line for the payment service's two regions."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from chalicelib.names import DEFAULT_ENVIRONMENT_SUFFIX, DEFAULT_PRIMARY_REGION, DEFAULT_SECONDARY_REGION
from operations.redrive import redrive
from operations.targets import LOCAL_STATE, Target, TargetNotRunning


def _target(args: argparse.Namespace) -> Target:
    if args.local:
        return Target.local(args.state_file)
    return Target.aws(args.suffix, args.primary_region, args.secondary_region)


def command_redrive(args: argparse.Namespace) -> int:
    """Move dead-lettered payment messages back to the payment queue."""
    target = _target(args)
    regions = [args.region] if args.region else list(target.regions)
    for region in regions:
        report = redrive(
            target.client("sqs", region),
            dlq_url=target.queue_url(region, target.names.payment_dlq),
            queue_url=target.queue_url(region, target.names.payment_queue),
            dry_run=args.dry_run,
            limit=args.limit,
        )
        print(f"{region}: {report.summary()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every ``payments-dr`` command."""
    parser = argparse.ArgumentParser(
        prog="payments-dr",
        description="Operate the payment service's regions: inspect, fail over, fail back, redrive, drill.",
    )
    parser.add_argument("--local", action="store_true", help="act on the environment `make run` started")
    parser.add_argument("--state-file", type=Path, default=LOCAL_STATE, help=argparse.SUPPRESS)
    parser.add_argument("--suffix", default=DEFAULT_ENVIRONMENT_SUFFIX, help="environment suffix (AWS only)")
    parser.add_argument("--primary-region", default=DEFAULT_PRIMARY_REGION)
    parser.add_argument("--secondary-region", default=DEFAULT_SECONDARY_REGION)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    move = commands.add_parser(
        "redrive",
        help="move dead-lettered payments back to the payment queue",
        description="Move messages from the payment DLQ back to the payment queue, sending before deleting. "
        "Processing is idempotent, so a message moved twice is still one payment.",
    )
    move.add_argument("--region", help="one region only (default: both)")
    move.add_argument("--dry-run", action="store_true", help="count what would move, move nothing")
    move.add_argument("--limit", type=int, help="move at most this many messages per region")
    move.set_defaults(run=command_redrive)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``payments-dr``."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except TargetNotRunning as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
