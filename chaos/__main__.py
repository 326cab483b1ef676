"""``python -m chaos`` (``make chaos``): many random fault schedules, every promise checked, a report.

Each schedule is written to ``--record`` (one JSON line each) before it runs; ``--replay FILE``
runs the schedules of such a file again, in order. Exit status 1 when any promise broke.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from chaos.properties import Findings
from chaos.run import run_schedule
from chaos.schedule import Schedule, draw, dumps
from chaos.twins import TWINS
from chaos.world import World

DEFAULT_RECORD = Path(".chaos/schedules.jsonl")


@contextlib.contextmanager
def local_aws() -> Iterator[str]:
    """A moto server on loopback, in this process, with the local environment's rules."""
    from moto.server import ThreadedMotoServer

    from localenv import moto_fixes
    from localenv.provision import LOCAL_CREDENTIALS

    moto_fixes.install()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved = dict(os.environ)
    os.environ.update({**LOCAL_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint})
    try:
        yield endpoint
    finally:
        os.environ.clear()
        os.environ.update(saved)
        server.stop()


@contextlib.contextmanager
def world_of(endpoint: str, *, strong: bool, merchants: int) -> Iterator[World]:
    world = World(endpoint, strong=strong)
    world.start(merchants)
    try:
        yield world
    finally:
        world.stop()


@contextlib.contextmanager
def quiet(log: Path | None) -> Iterator[None]:
    """The functions' log lines and the local replication's notes go to ``log``, not the report."""
    if log is None:
        yield
        return
    from chalicelib.observability import logger

    handler = logger.registered_handler
    with log.open("a") as sink, contextlib.redirect_stdout(sink):
        previous = handler.setStream(sink)  # type: ignore[attr-defined]
        try:
            yield
        finally:
            handler.setStream(previous)  # type: ignore[attr-defined]


def run_many(
    schedules: list[Schedule],
    *,
    strong: bool,
    endpoint: str,
    twin: str | None = None,
    log: Path | None = None,
) -> list[tuple[Schedule, Findings]]:
    """Run ``schedules`` in one world of that consistency mode (with ``twin`` planted, if named)."""
    results = []
    merchants = max(s.merchants for s in schedules)
    with quiet(log), world_of(endpoint, strong=strong, merchants=merchants) as world:
        planted = TWINS[twin](world) if twin else contextlib.nullcontext()
        with planted:
            for schedule in schedules:
                results.append((schedule, run_schedule(world, schedule)))
    return results


def report(results: list[tuple[Schedule, Findings]], seconds: float) -> str:
    """The figures of every history, summed, with the schedules that broke a promise."""
    total = Findings()
    faults: Counter[str] = Counter()
    for schedule, found in results:
        for name in (
            "acknowledged",
            "payments",
            "caller_errors",
            "excused_errors",
            "missing",
            "doubled",
            "unannounced",
            "several_ids",
            "unjustified_moves",
            "struck",
        ):
            setattr(total, name, getattr(total, name) + getattr(found, name))
        total.blocked_seconds = max(total.blocked_seconds, found.blocked_seconds)
        faults.update(struck.fault.value for struck in schedule.requests)
        faults.update([f"region {schedule.region.fault.value}"] if schedule.region else [])
        faults.update(["notifier failing"] if schedule.notifier else [])
    broken = [(s, f) for s, f in results if not f.ok]
    lines = [
        f"schedules                            {len(results)}",
        f"payments                             {total.payments}",
        f"acknowledged                         {total.acknowledged}",
        f"faults drawn                         {sum(faults.values())} ({', '.join(f'{k} {v}' for k, v in sorted(faults.items()))})",
        f"attempts struck                      {total.struck}",
        f"caller errors                        {total.caller_errors}",
        f"  in whole-budget outages (excused)  {total.excused_errors}",
        f"acknowledged and missing             {total.missing}",
        f"doubled                              {total.doubled}",
        f"unannounced after reannounce         {total.unannounced}",
        f"announced under several event ids    {total.several_ids}",
        f"moves away from a healthy region     {total.unjustified_moves}",
        f"longest retry blocked by a marker    {total.blocked_seconds:.3f} s",
        f"seconds                              {seconds:.0f}",
        f"verdict                              {'PASS' if not broken else 'FAIL'}",
    ]
    for schedule, found in broken[:10]:
        lines.append(f"  schedule {schedule.seed}: {found.violations[0]} ({len(found.violations)} in all)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=200)
    parser.add_argument("--merchants", type=int, default=3)
    parser.add_argument("--payments", type=int, default=10, help="payments per merchant per schedule")
    parser.add_argument(
        "--seed", type=int, default=1, help="the first schedule's seed; each next is one more"
    )
    parser.add_argument(
        "--strong-share",
        type=float,
        default=0.5,
        help="share of the schedules run under multi-Region strong consistency",
    )
    parser.add_argument("--record", type=Path, default=DEFAULT_RECORD)
    parser.add_argument("--replay", type=Path, help="run the schedules recorded in this file")
    parser.add_argument(
        "--log", type=Path, default=Path(".chaos/functions.log"), help="where the functions' output goes"
    )
    parser.add_argument("--twin", choices=sorted(TWINS), help="plant one of the problems the fixes removed")
    args = parser.parse_args(argv)

    if args.replay:
        lines = [json.loads(line) for line in args.replay.read_text().splitlines() if line.strip()]
        drawn = [(Schedule.from_json(line["schedule"]), bool(line["strong"])) for line in lines]
    else:
        strong_count = round(args.schedules * args.strong_share)
        drawn = [
            (draw(args.seed + n, merchants=args.merchants, payments_each=args.payments), n < strong_count)
            for n in range(args.schedules)
        ]
        with args.record.open("w") as record:
            for schedule, strong in drawn:
                record.write(json.dumps({"strong": strong, "schedule": json.loads(dumps(schedule))}) + "\n")
    started = time.monotonic()
    results: list[tuple[Schedule, Findings]] = []
    with local_aws() as endpoint:
        for strong in (False, True):
            mine = [schedule for schedule, is_strong in drawn if is_strong == strong]
            if mine:
                results += run_many(mine, strong=strong, endpoint=endpoint, twin=args.twin, log=args.log)
    print(report(results, time.monotonic() - started))
    if not args.replay:
        print(f"schedules recorded in {args.record} (replay: python -m chaos --replay {args.record})")
    return 0 if all(found.ok for _, found in results) else 1


if __name__ == "__main__":
    sys.exit(main())
