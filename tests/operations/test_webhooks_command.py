"""``payments-dr webhooks``: an endpoint's backlog, re-enabling it, replaying what was given up (moto's server)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.webhook_endpoints import DynamoWebhookEndpoints
from chalicelib.webhook_delivery import Delivery
from chalicelib.webhook_replay import ReplayJob
from chalicelib.webhooks import EndpointRequest, registered
from localenv.provision import RegionResources, local_client, provision_region
from operations import webhooks
from operations.cli import main
from operations.targets import Target
from tests.conftest import MERCHANT, OTHER_MERCHANT, PEER_REGION, REGION, SUFFIX


@pytest.fixture
def target(operator: Target, local_aws: str, resources: RegionResources) -> Target:
    provision_region(local_aws, PEER_REGION, SUFFIX, peer_region=REGION)
    return operator


def endpoint(local_aws: str, resources: RegionResources, client: str, *, enabled: bool = True) -> Any:
    made = registered(
        EndpointRequest("https://hooks.merchant.example/p", ("payment.processed",)),
        client=client,
        now=time.time(),
    )
    if not enabled:
        made = made._replace(enabled=False, disabled_reason="answered 410 Gone")
    DynamoWebhookEndpoints(
        table_name=resources.webhook_endpoints_table,
        client=lambda: local_client("dynamodb", local_aws, REGION),
    ).add(made)
    return made


def given_up(resources: RegionResources, aws: Any, client: str, endpoint_id: str, event_id: str) -> None:
    delivery = Delivery(
        client, endpoint_id, event_id, "payment.processed", "{}", attempt=13, first_attempt_at=1.0
    )
    aws("sqs").send_message(QueueUrl=resources.webhook_dlq_url, MessageBody=delivery.to_json())


def test_the_backlog_is_replayed_for_that_endpoint_only_from_its_first_attempt_with_its_event_ids(
    local_aws: str, resources: RegionResources, aws: Any, target: Target
) -> None:
    mine = endpoint(local_aws, resources, MERCHANT)
    theirs = endpoint(local_aws, resources, OTHER_MERCHANT)
    for n in (1, 2):
        given_up(resources, aws, MERCHANT, mine.endpoint_id, f"evt_{n}")
    given_up(resources, aws, OTHER_MERCHANT, theirs.endpoint_id, "evt_other")

    [shown] = webhooks.backlog(target, MERCHANT)
    dry = webhooks.replay(target, REGION, MERCHANT, mine.endpoint_id, dry_run=True)
    done = webhooks.replay(target, REGION, MERCHANT, mine.endpoint_id)

    sent = [
        Delivery.from_json(m["Body"])
        for m in aws("sqs").receive_message(QueueUrl=resources.webhook_queue_url, MaxNumberOfMessages=10)[
            "Messages"
        ]
    ]
    left = [
        Delivery.from_json(m["Body"])
        for m in aws("sqs")
        .receive_message(QueueUrl=resources.webhook_dlq_url, MaxNumberOfMessages=10)
        .get("Messages", [])
    ]
    assert shown.given_up == {REGION: 2, PEER_REGION: 0}
    assert (dry.found, dry.replayed, done.found, done.replayed) == (2, 0, 2, 2)
    assert sorted(d.event_id for d in sent) == ["evt_1", "evt_2"] and {d.attempt for d in sent} == {1}
    assert [d.event_id for d in left] == ["evt_other"]


def test_a_disabled_endpoint_is_enabled_again_through_the_command(
    local_aws: str,
    resources: RegionResources,
    target: Target,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    disabled = endpoint(local_aws, resources, MERCHANT, enabled=False)
    state = tmp_path / "state.json"
    state.write_text(json.dumps(target.describe()))
    command = ["--local", "--state-file", str(state), "webhooks"]

    enabled = main([*command, "enable", MERCHANT, disabled.endpoint_id])
    shown = main([*command, "show", MERCHANT])
    unknown = main([*command, "enable", MERCHANT, "we_unknown"])

    out = capsys.readouterr()
    assert (enabled, shown, unknown) == (0, 0, 1)
    assert f"{disabled.endpoint_id} is enabled again" in out.out
    assert "DISABLED" not in out.out.split("enabled again", 1)[1]
    assert "no webhook endpoint we_unknown" in out.err


def test_a_time_range_is_replayed_by_a_job_in_the_regions_queue_and_a_disabled_endpoint_refused(
    local_aws: str,
    resources: RegionResources,
    aws: Any,
    target: Target,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    mine = endpoint(local_aws, resources, MERCHANT)
    disabled = endpoint(local_aws, resources, MERCHANT, enabled=False)
    state = tmp_path / "state.json"
    state.write_text(json.dumps(target.describe()))
    replay = ["--local", "--state-file", str(state), "webhooks", "replay", MERCHANT]
    week = ["--since", "2026-11-01T00:00:00Z", "--until", "2026-11-08T00:00:00Z"]

    queued = main([*replay, mine.endpoint_id, *week])
    refused = main([*replay, disabled.endpoint_id, *week])
    backwards = main(
        [*replay, mine.endpoint_id, "--since", "2026-11-08T00:00:00Z", "--until", "2026-11-01T00:00:00Z"]
    )

    out = capsys.readouterr()
    [message] = aws("sqs").receive_message(QueueUrl=resources.webhook_queue_url, MaxNumberOfMessages=10)[
        "Messages"
    ]
    job = ReplayJob.from_message(json.loads(message["Body"]))
    assert (queued, refused, backwards) == (0, 1, 1)
    assert (job.client, job.endpoint_id) == (MERCHANT, mine.endpoint_id)
    assert job.until - job.since == 7 * 24 * 3600 * 1000
    assert "410 Gone" in out.err and "from: must be before to" in out.err
