"""``payments-dr``: the operator's command line for the payment service's two regions."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chalicelib.failover_numbers import CANARY
from chalicelib.names import DEFAULT_ENVIRONMENT_SUFFIX, DEFAULT_PRIMARY_REGION, DEFAULT_SECONDARY_REGION
from chalicelib.schema import DEFAULT_CLIENT_THROTTLE, ClientThrottle
from operations import regions, webhooks
from operations.clients import ClientRegistry, InvalidClientCommand, render_list
from operations.reannounce import reannounce
from operations.redrive import redrive
from operations.targets import LOCAL_STATE, Target, TargetNotRunning


def _target(args: argparse.Namespace) -> Target:
    if args.local:
        return Target.local(args.state_file)
    return Target.aws(args.suffix, args.primary_region, args.secondary_region, api_urls=dict(args.api_url))


def _region_url(text: str) -> tuple[str, str]:
    region, _, url = text.partition("=")
    if not region or not url.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected REGION=URL, the URL starting http:// or https://"
        )
    return region, url.rstrip("/")


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


def command_reannounce(args: argparse.Namespace) -> int:
    """Publish again what a region stored in a time range, with the same event ids."""
    report = reannounce(
        _target(args),
        args.region,
        since_ms=_epoch_ms(args.since),
        until_ms=_epoch_ms(args.until),
        dry_run=args.dry_run,
    )
    print(report.summary())
    return 0 if report.ok else 1


def _epoch_ms(text: str) -> int:
    """An ISO 8601 time as epoch milliseconds; without a zone, UTC (the table's clock)."""
    moment = datetime.fromisoformat(text)
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() * 1000)


def command_status(args: argparse.Namespace) -> int:
    """Print both regions' state as a table."""
    print(regions.render_status(regions.status(_target(args))))
    return 0


def command_failover(args: argparse.Namespace) -> int:
    """Take a region out of service."""
    flag = regions.failover(_target(args), args.region, reason=args.reason, force=args.force)
    print(f"{args.region} is out of service (by {flag.changed_by}: {flag.reason})")
    return 0


def command_failback(args: argparse.Namespace) -> int:
    """Return a region to service after checking it is safe."""
    flag, lag = regions.failback(
        _target(args), args.region, reason=args.reason, canary_passed_for=args.canary_passed_for
    )
    print(
        f"replication caught up in {lag:.1f} s; {args.region} is back in service (by {flag.changed_by}: {flag.reason})"
    )
    return 0


def command_switchover(args: argparse.Namespace) -> int:
    """Move payments from a region to its peer, draining it and waiting for replication first."""
    report = regions.switchover(_target(args), args.region, reason=args.reason)
    print(report.summary())
    return 0


def _registry(args: argparse.Namespace) -> ClientRegistry:
    target = _target(args)
    return ClientRegistry(names=target.names, regions=target.regions, client=target.client)


def command_clients(args: argparse.Namespace) -> int:
    """Create, rotate, revoke or list API clients, in both regions; exit 1 if a region failed."""
    registry = _registry(args)
    if args.clients_command == "list":
        listing = registry.listing()
        print(render_list(listing, registry.regions))
        return (
            1 if any(isinstance(v, str) for by_region in listing.values() for v in by_region.values()) else 0
        )
    if args.clients_command == "create":
        report = registry.create(args.name, throttle=ClientThrottle(args.rate, args.burst))
    elif args.clients_command == "rotate":
        report = registry.rotate(args.name)
    else:
        report = registry.revoke(args.name, previous_only=args.previous)
    print(
        report.render(show_key=getattr(args, "show_key", False), secret_name=registry.secret_name(args.name))
    )
    return 0 if report.ok else 1


def command_webhooks(args: argparse.Namespace) -> int:
    """Show a client's endpoints, re-enable one, or replay what was given up for one."""
    target = _target(args)
    try:
        if args.webhooks_command == "show":
            print(webhooks.render(webhooks.backlog(target, args.client), args.client))
        elif args.webhooks_command == "enable":
            endpoint = webhooks.enable(target, args.client, args.endpoint)
            print(f"{endpoint.endpoint_id} is enabled again ({endpoint.url})")
        elif args.since:
            region = args.region or target.primary_region
            print(webhooks.replay_range(target, region, args.client, args.endpoint, args.since, args.until))
        else:
            for region in [args.region] if args.region else list(target.regions):
                print(
                    webhooks.replay(
                        target, region, args.client, args.endpoint, dry_run=args.dry_run
                    ).summary()
                )
    except (webhooks.UnknownEndpoint, webhooks.InvalidReplay) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every ``payments-dr`` command."""
    parser = argparse.ArgumentParser(
        prog="payments-dr",
        description="Operate the payment service's regions: inspect, fail over, fail back, redrive, manage clients.",
    )
    parser.add_argument("--local", action="store_true", help="act on the environment `make run` started")
    parser.add_argument("--state-file", type=Path, default=LOCAL_STATE, help=argparse.SUPPRESS)
    parser.add_argument("--suffix", default=DEFAULT_ENVIRONMENT_SUFFIX, help="environment suffix (AWS only)")
    parser.add_argument("--primary-region", default=DEFAULT_PRIMARY_REGION)
    parser.add_argument("--secondary-region", default=DEFAULT_SECONDARY_REGION)
    parser.add_argument(
        "--api-url",
        type=_region_url,
        action="append",
        default=[],
        metavar="REGION=URL",
        help="where REGION's payment API answers /health when not at its stack's APIEndpoint output (an "
        "emulator, a private API through a VPC endpoint); AWS_ENDPOINT_URL never moves the probe",
    )
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

    again = commands.add_parser(
        "reannounce",
        help="publish again what a region stored in a time range (same event ids)",
        description="Read the payments and rejections REGION's table holds that were stored in [--since, --until) "
        "(its own and, after a region was lost, the other region's) and publish them again on REGION's "
        "transactions topic, each with the event id it was first announced with, so subscribers drop what they "
        "have. For announcements given up on (the notification DLQ, PaymentAnnounceFailed) or never made (a "
        "region lost before its stream ran). Reads the whole table: give the narrowest range you can.",
    )
    again.add_argument("region")
    again.add_argument("--since", required=True, help="ISO 8601 time, e.g. 2026-12-04T10:00:00+00:00")
    again.add_argument("--until", required=True, help="ISO 8601 time (exclusive)")
    again.add_argument(
        "--dry-run", action="store_true", help="count what would be published, publish nothing"
    )
    again.set_defaults(run=command_reannounce)

    show = commands.add_parser(
        "status",
        help="both regions: flag, health, alarms, replication, queue and DLQ depth",
        description="Show each region's in-service flag (and who set it, why), /health, critical alarms in "
        "ALARM, global-table replication latency, payment queue and DLQ depth.",
    )
    show.set_defaults(run=command_status)

    out = _flag_command(
        commands,
        "failover",
        summary="take a region out of service",
        description="Set REGION's in-service flag off: its /health fails and Route 53 sends clients to the "
        "peer. Refused if the peer is not in service, unless --force.",
    )
    out.add_argument("--force", action="store_true", help="even if the peer is not in service")
    out.set_defaults(run=command_failover)

    planned = _flag_command(
        commands,
        "switchover",
        summary="planned move of payments to the peer: drain, wait for replication, then move",
        description="Stop REGION taking payments (it stays healthy; clients get a retryable 503), wait until "
        "its queue is empty and replication to the peer has caught up (bounded by ten times the recent "
        "maximum replication latency, at least 30 s), then take it out of service so Route 53 moves clients. "
        "If replication does not catch up in time, REGION takes payments again and nothing moves.",
    )
    planned.set_defaults(run=command_switchover)

    back = _flag_command(
        commands,
        "failback",
        summary="return a region to service, after checks",
        description="Return REGION to service once the peer is healthy, REGION is healthy apart from its flag, "
        "the peer's canary against REGION (real payments through its API) has passed for a while, and a marker "
        "written in the peer has replicated to REGION. Records who and why.",
    )
    back.add_argument(
        "--canary-passed-for",
        type=float,
        default=CANARY.failback_passing_seconds,
        metavar="SECONDS",
        help="how long the peer's canary against REGION must have passed (default %(default)s; "
        "0: only not failing)",
    )
    back.set_defaults(run=command_failback)

    clients = commands.add_parser(
        "clients",
        help="API clients: one key value per client, accepted by both regions",
        description="Each client's key value lives in a secret in the primary region, replicated to the "
        "secondary; each region's API Gateway holds a key with that value in the client's own usage plan. Every "
        "command acts on both regions and reports each; a region it cannot reach is reported and the command "
        "exits 1 (run it again to complete).",
    )
    client_commands = clients.add_subparsers(dest="clients_command", required=True, metavar="ACTION")
    create = client_commands.add_parser("create", help="a new client with a fresh key value")
    create.add_argument("name")
    create.add_argument("--rate", type=float, default=DEFAULT_CLIENT_THROTTLE.rate_limit, help="requests/s")
    create.add_argument("--burst", type=int, default=DEFAULT_CLIENT_THROTTLE.burst_limit, help="burst")
    create.add_argument("--show-key", action="store_true", help="print the key value (to hand to the client)")
    rotate = client_commands.add_parser(
        "rotate", help="a new key value; the old one works until `revoke NAME --previous`"
    )
    rotate.add_argument("name")
    rotate.add_argument("--show-key", action="store_true", help="print the new key value")
    revoke = client_commands.add_parser("revoke", help="refuse the client's keys in both regions")
    revoke.add_argument("name")
    revoke.add_argument(
        "--previous", action="store_true", help="only the values older than the current one (after a rotate)"
    )
    client_commands.add_parser("list", help="every client, region by region")
    clients.set_defaults(run=command_clients)

    hooks = commands.add_parser(
        "webhooks",
        help="a client's webhook endpoints: their backlog, re-enable one, replay what was given up",
        description="An endpoint's backlog is what waits for it in each region's webhook dead-letter queue: "
        "deliveries whose 3 days of retries ran out. A replay sends them back from their first attempt, each "
        "with its event id (the webhook-id the merchant deduplicates on).",
    )
    hook_commands = hooks.add_subparsers(dest="webhooks_command", required=True, metavar="ACTION")
    show_hooks = hook_commands.add_parser("show", help="the client's endpoints, their state and backlog")
    show_hooks.add_argument("client")
    enable_hook = hook_commands.add_parser("enable", help="put a disabled endpoint back in service")
    enable_hook.add_argument("client")
    enable_hook.add_argument("endpoint")
    replay_hook = hook_commands.add_parser("replay", help="deliver an endpoint's given-up deliveries again")
    replay_hook.add_argument("client")
    replay_hook.add_argument("endpoint")
    replay_hook.add_argument("--region", help="one region only (default: both)")
    replay_hook.add_argument("--dry-run", action="store_true", help="count what would be replayed")
    replay_hook.add_argument(
        "--since",
        help="replay instead the client's events stored since this ISO 8601 time (31 days at most), "
        "from the payments table, in one region (--region, default the primary)",
    )
    replay_hook.add_argument("--until", help="with --since: up to this ISO 8601 time (default now)")
    hooks.set_defaults(run=command_webhooks)

    return parser


def _flag_command(commands: Any, name: str, *, summary: str, description: str) -> argparse.ArgumentParser:
    """A subcommand that changes REGION's in-service flag, with the reason every change records."""
    command: argparse.ArgumentParser = commands.add_parser(name, help=summary, description=description)
    command.add_argument("region")
    command.add_argument("--reason", required=True, help="why (recorded with your identity)")
    return command


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``payments-dr``."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except TargetNotRunning as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except regions.RefusedError as error:
        print(f"refused: {error}", file=sys.stderr)
        return 1
    except InvalidClientCommand as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
