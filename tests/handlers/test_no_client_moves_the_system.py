"""No client, whatever it sends, can make the system move.

Any sequence of client requests (valid, invalid, replayed, conflicting, in both regions) goes
through the API handlers on moto's server; whatever they queued is then run through the
processor as Lambda would (sometimes delivered twice, sometimes as two concurrent invocations)
and the notifier reads each region's table stream. Afterwards:

- no request was answered with a 5xx,
- no processor or notifier invocation raised or reported a batch item failure, so nothing is
  retried and nothing can reach a dead-letter queue (both are empty, and the queues drained),
- every failover-trigger alarm's signal stayed at zero, so the orchestrator has nothing to act on,
- every acknowledged payment ended processed or recorded as rejected, never lost.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import pytest
from chalice.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib import processor
from chalicelib.failover import trigger_alarms
from chalicelib.items import is_payment_record, unscoped
from chalicelib.names import ResourceNames
from chalicelib.services import Services, build_aws_services, use_services
from chalicelib.settings import Settings
from localenv.events import sqs_lambda_record
from localenv.provision import RegionResources, provision_region
from localenv.streams import TableStream, lambda_stream_event
from tests.conftest import PEER_REGION, REGION, SUFFIX

REGIONS = (REGION, PEER_REGION)


class Region(NamedTuple):
    """One region's resources and the services its functions run on."""

    resources: RegionResources
    services: Services
    stream: TableStream
    sqs: Any
    dynamodb: Any


@pytest.fixture
def regions(local_aws: str, resources: RegionResources, aws: Any) -> Iterator[dict[str, Region]]:
    peer = provision_region(local_aws, PEER_REGION, SUFFIX, peer_region=REGION)
    found = {}
    for provisioned in (resources, peer):
        settings_ = Settings.from_environment(provisioned.function_environment(local_aws))
        stream = TableStream(
            table=provisioned.payments_table,
            dynamodb=aws("dynamodb", provisioned.region),
            streams=aws("dynamodbstreams", provisioned.region),
        )
        found[provisioned.region] = Region(
            provisioned,
            build_aws_services(settings_),
            stream,
            aws("sqs", provisioned.region),
            aws("dynamodb", provisioned.region),
        )
    yield found
    use_services(None)


class Request(NamedTuple):
    region: str
    path: str
    body: str
    idempotency_key: str | None


# A small pool of ids and amounts, so that reuses of one id with other details (conflicts),
# exact repeats and replays under one Idempotency-Key are common.
TRANSACTIONS = ("t1", "t2", "t3")
payment_bodies = st.fixed_dictionaries(
    {
        "transaction_id": st.sampled_from(TRANSACTIONS),
        "customer_id": st.sampled_from(["c1", "c2"]),
        "amount": st.sampled_from(["1.00", "12.50", "10000.01", "0", "-3", "1.001", "abc"]),
        "currency": st.sampled_from(["USD", "JPY", "BHD", "XXX"]),
    },
    optional={"description": st.sampled_from(["ok", "4111 1111 1111 1111", "\x00"]), "extra": st.just(1)},
)
valid_payments = st.fixed_dictionaries(
    {
        "transaction_id": st.sampled_from(TRANSACTIONS),
        "customer_id": st.sampled_from(["c1", "c2"]),
        "amount": st.sampled_from(["1.00", "12.50", "10000.01"]),
        "currency": st.sampled_from(["USD", "BHD"]),
    }
)
raw_bodies = st.one_of(
    valid_payments.map(json.dumps),
    valid_payments.map(json.dumps),
    payment_bodies.map(json.dumps),
    st.sampled_from(
        ['{"amount":"1.00","amount":"9.00"}', "{", "[]", "null", '{"transaction_id": 4111111111111111}']
    ),
    st.text(max_size=30),
)
requests_ = st.builds(
    Request,
    region=st.sampled_from(REGIONS),
    path=st.sampled_from(["/validate", "/validate", "/process"]),
    body=raw_bodies,
    idempotency_key=st.none() | st.sampled_from(["k1", "k2"]),
)
reads = st.sampled_from(["/payments/t1", "/payments/t2", "/customers/c1/payments?limit=2", "/payments/nope"])


def with_run_ids(body: str, run: str) -> str:
    """``body`` with its pool transaction id made unique to this example."""
    try:
        document = json.loads(body)
    except ValueError:
        return body
    if isinstance(document, dict) and document.get("transaction_id") in TRANSACTIONS:
        document["transaction_id"] = f"{run}-{document['transaction_id']}"
        return json.dumps(document)
    return body


def drain_queue(region: Region, client: Client, *, twice: bool, concurrently: bool) -> list[dict[str, Any]]:
    """Run the processor on everything queued; returns each invocation's response."""
    sqs = region.sqs
    queue_arn = sqs.get_queue_attributes(
        QueueUrl=region.resources.payment_queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    responses: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(
            QueueUrl=region.resources.payment_queue_url,
            MaxNumberOfMessages=10,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return responses
        event = {"Records": [sqs_lambda_record(m, queue_arn, region.resources.region) for m in messages]}
        deliveries = [event, event] if twice else [event]
        if concurrently:
            # Two pollers delivering the same messages at once (a visibility timeout that ran out).
            with ThreadPoolExecutor(2) as pool:
                responses.extend(
                    pool.map(lambda e: processor.process_message_batch(e, region.services), deliveries * 2)
                )
        else:
            use_services(region.services)
            responses.extend(client.lambda_.invoke("process_payment_messages", e).payload for e in deliveries)
        failed = {f["itemIdentifier"] for r in responses for f in r["batchItemFailures"]}
        done = [m for m in messages if m["MessageId"] not in failed]
        for message in done:
            sqs.delete_message(
                QueueUrl=region.resources.payment_queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
        if len(done) < len(messages):
            return responses


def depth(region: Region, url: str) -> int:
    attributes = region.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    sent=st.lists(requests_, min_size=1, max_size=12),
    read=st.lists(st.tuples(st.sampled_from(REGIONS), reads), max_size=3),
    twice=st.booleans(),
    concurrently=st.booleans(),
)
def test_no_sequence_of_client_requests_moves_the_system(
    client: Client,
    regions: dict[str, Region],
    sent: list[Request],
    read: list[tuple[str, str]],
    twice: bool,
    concurrently: bool,
) -> None:
    # Each example its own ids, so examples cannot see each other's payments.
    run = uuid.uuid4().hex[:8]
    statuses: list[int] = []
    acknowledged: dict[str, set[str]] = {region: set() for region in REGIONS}
    for request in sent:
        use_services(regions[request.region].services)
        body = with_run_ids(request.body, run)
        headers = {"Content-Type": "application/json"}
        if request.idempotency_key:
            headers["Idempotency-Key"] = f"{run}-{request.idempotency_key}"
        response = client.http.post(request.path, headers=headers, body=body)
        statuses.append(response.status_code)
        if response.status_code in (200, 201, 202):
            acknowledged[request.region].add(response.json_body["transaction_id"])
    for region_name, path in read:
        use_services(regions[region_name].services)
        statuses.append(client.http.get(path.replace("/t", f"/{run}-t")).status_code)

    processor_responses = []
    notifier_responses = []
    for region in regions.values():
        processor_responses += drain_queue(region, client, twice=twice, concurrently=concurrently)
        stream_event = lambda_stream_event(
            region.stream.poll(), region.stream.stream_arn, region.resources.region
        )
        use_services(region.services)
        notifier_responses.append(client.lambda_.invoke("announce_processed_payments", stream_event).payload)

    # The signal each failover trigger alarms on, as this run produced it.
    names = ResourceNames(SUFFIX)
    signals = {
        names.api_5xx_alarm: sum(status >= 500 for status in statuses),
        # An invocation that raised would have failed the test already; a reported failure is retried.
        names.lambda_errors_alarm: sum(
            len(r["batchItemFailures"]) for r in processor_responses + notifier_responses
        ),
        # moto never throttles: what a client can do to the table shows as errors or 5xx above.
        names.dynamodb_throttles_alarm: 0,
    }
    assert set(signals) == trigger_alarms(names)
    assert signals == dict.fromkeys(trigger_alarms(names), 0), (
        statuses,
        processor_responses,
        notifier_responses,
    )
    for region in regions.values():
        assert depth(region, region.resources.payment_dlq_url) == 0
        assert depth(region, region.resources.payment_queue_url) == 0
        # Nothing acknowledged is lost: each id is stored as a payment or as a rejection.
        items = region.dynamodb.scan(TableName=region.resources.payments_table, ConsistentRead=True)
        outcomes = {
            unscoped(item["transaction_id"]["S"])[1]
            for item in items["Items"]
            if is_payment_record(item) or item.get("status", {}).get("S") == "REJECTED"
        }
        assert acknowledged[region.resources.region] <= outcomes
