"""What a lost region stored and never announced: the survivor's observer announces it, once, with the
events' own ids, after the peer has been out for the bound (chalicelib.orphans)."""

from __future__ import annotations

import time
from typing import Any

from chalicelib.failover_numbers import ORPHAN_ANNOUNCE_AFTER_SECONDS, ORPHAN_LOOKBACK_SECONDS
from chalicelib.names import ResourceNames
from chalicelib.observer import announce_what_a_lost_peer_left
from chalicelib.orphans import Sweep
from chalicelib.outbox import event_id
from chalicelib.payments import PaymentRecord
from chalicelib.regions import RegionFlag
from chalicelib.services import get_services
from localenv.provision import RegionResources
from tests.conftest import MERCHANT, PEER_REGION, REGION, SUFFIX, TopicSpy

NOW = time.time()


def stored(transaction_id: str, *, region: str, at: float) -> PaymentRecord:
    from decimal import Decimal

    return PaymentRecord(
        transaction_id, int(at * 1000), "cust-o", Decimal("5.00"), "USD", "PROCESSED", False, region, MERCHANT
    )


def peer_flag(aws: Any, flag: RegionFlag) -> None:
    aws("ssm", PEER_REGION).put_parameter(
        Name=ResourceNames(SUFFIX).in_service_parameter, Value=flag.to_text(), Type="String", Overwrite=True
    )


def out_for(seconds: float) -> RegionFlag:
    changed = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW - seconds))
    return RegionFlag(
        in_service=False, changed_by="failover-orchestrator", reason="canary", changed_at=changed
    )


def test_the_survivor_announces_what_the_lost_peer_stored_once_with_the_events_ids(
    aws: Any, resources: RegionResources
) -> None:
    transactions_topic = TopicSpy(aws, resources.transaction_topic_arn)
    went_out = ORPHAN_ANNOUNCE_AFTER_SECONDS + 60
    repository = get_services().repository
    orphans = [stored(f"lost-{n}", region=PEER_REGION, at=NOW - went_out - 30 * n) for n in range(3)]
    long_before = stored("old", region=PEER_REGION, at=NOW - went_out - ORPHAN_LOOKBACK_SECONDS - 60)
    ours = stored("ours", region=REGION, at=NOW - went_out)
    for record in (*orphans, long_before, ours):
        repository.insert_new(record)
    peer_flag(aws, out_for(went_out))

    first = announce_what_a_lost_peer_left(get_services(), now=lambda: NOW)
    again = announce_what_a_lost_peer_left(get_services(), now=lambda: NOW)
    published = transactions_topic.messages()

    assert first is not None and first.done and first.announced == 3
    assert again is None  # one sweep per outage
    assert sorted(m["payment"]["transaction_id"] for m in published) == ["lost-0", "lost-1", "lost-2"]
    assert {m["id"] for m in published} == {event_id(record) for record in orphans}


def test_nothing_is_swept_before_the_bound_or_while_the_peer_is_in_service(
    aws: Any, resources: RegionResources
) -> None:
    transactions_topic = TopicSpy(aws, resources.transaction_topic_arn)
    get_services().repository.insert_new(stored("lost", region=PEER_REGION, at=NOW - 60))
    peer_flag(aws, RegionFlag(in_service=True))
    in_service = announce_what_a_lost_peer_left(get_services(), now=lambda: NOW)
    peer_flag(aws, out_for(ORPHAN_ANNOUNCE_AFTER_SECONDS - 30))
    too_soon = announce_what_a_lost_peer_left(get_services(), now=lambda: NOW)

    assert (in_service, too_soon) == (None, None)
    assert transactions_topic.messages() == []


def test_a_sweep_cut_short_keeps_its_place_and_finishes_on_a_later_run(
    aws: Any, resources: RegionResources
) -> None:
    transactions_topic = TopicSpy(aws, resources.transaction_topic_arn)
    went_out = ORPHAN_ANNOUNCE_AFTER_SECONDS + 10
    for n in range(250):
        get_services().repository.insert_new(stored(f"lost-{n:03d}", region=PEER_REGION, at=NOW - went_out))
    peer_flag(aws, out_for(went_out))
    ticks = iter(range(1000))

    runs: list[Sweep] = []
    while not runs or not runs[-1].done:
        # A clock past the run's budget after each page: one page a run.
        run = announce_what_a_lost_peer_left(
            get_services(), now=lambda: NOW, monotonic=lambda: next(ticks) * 100.0
        )
        assert isinstance(run, Sweep)
        runs.append(run)

    assert len(runs) > 1
    assert runs[-1].announced == 250
    assert len({m["payment"]["transaction_id"] for m in transactions_topic.messages()}) == 250
