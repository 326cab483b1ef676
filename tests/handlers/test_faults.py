"""Throttling and 5xx from DynamoDB, SQS and SNS: bounded retries, then the work is retried later.

Faults are injected on the wire: a botocore ``before-send`` hook answers chosen requests with
a retryable error instead of sending them to moto, so botocore's own retry policy (standard
mode, PAYMENT_CALL_ATTEMPTS attempts, jittered backoff) is what runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from chalice.test import Client

from chalicelib import adapters, sdk
from chalicelib.failover_numbers import PAYMENT_CALL_ATTEMPTS
from chalicelib.names import Handler
from chalicelib.services import get_services, use_services
from localenv.provision import RegionResources
from tests.conftest import MERCHANT, REGION, CapturedLogs, NotifierRun, TopicSpy

THROTTLED = (
    400,
    b'{"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException", "message": "Rate exceeded"}',
)
UNAVAILABLE_JSON = (503, b"{}")
UNAVAILABLE_XML = (
    503,
    (
        b"<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code>"
        b"<Message>Service unavailable</Message></Error></ErrorResponse>"
    ),
)


class _Body:
    def __init__(self, payload: bytes) -> None:
        self._payload = payload

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._payload


class FaultyAws:
    """Clients whose chosen operations fail while ``failing`` is on; counts every attempt."""

    def __init__(self) -> None:
        self.failing = True
        self.attempts: dict[str, int] = {}

    def client(self, service: str, operation: str, fault: tuple[int, bytes]) -> Any:
        client = sdk.make_client(service, REGION)
        status, body = fault

        def answer(request: Any, **_: Any) -> AWSResponse | None:
            if not self.failing:
                return None
            self.attempts[operation] = self.attempts.get(operation, 0) + 1
            return AWSResponse(request.url, status, HTTPHeaders(), _Body(body))

        client.meta.events.register(
            f"before-send.{client.meta.service_model.endpoint_prefix}.{operation}", answer
        )
        return client

    def fail_table_writes(self, resources: RegionResources, fault: tuple[int, bytes]) -> None:
        """The handlers' payments table, its writes answering ``fault``."""
        use_services(
            get_services()._replace(
                repository=adapters.DynamoPaymentRepository(
                    table_name=resources.payments_table,
                    client=partial(self.client, "dynamodb", "PutItem", fault),
                )
            )
        )


@pytest.fixture
def faults(resources: RegionResources) -> FaultyAws:
    return FaultyAws()


def message(transaction_id: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": "m-1",
                "receiptHandle": "r-1",
                "body": json.dumps(
                    {
                        "transaction_id": transaction_id,
                        "customer_id": "c-1",
                        "amount": "8.00",
                        "currency": "USD",
                    }
                ),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {"client": {"stringValue": MERCHANT, "dataType": "String"}},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:payment-queue-test",
                "awsRegion": REGION,
            }
        ]
    }


def test_a_throttled_table_write_is_retried_within_its_attempts_then_the_message_is_retried_later(
    client: Client, faults: FaultyAws, resources: RegionResources, transactions_topic: TopicSpy
) -> None:
    faults.fail_table_writes(resources, THROTTLED)

    throttled = client.lambda_.invoke(Handler.PAYMENT_PROCESSOR, message("txn-throttled")).payload
    faults.failing = False
    redelivered = client.lambda_.invoke(Handler.PAYMENT_PROCESSOR, message("txn-throttled")).payload

    assert throttled == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert faults.attempts == {"PutItem": PAYMENT_CALL_ATTEMPTS}
    assert redelivered == {"batchItemFailures": []}
    assert [m["payment"]["transaction_id"] for m in transactions_topic.messages()] == ["txn-throttled"]


def test_validate_answers_503_with_retry_after_when_the_queue_keeps_failing(
    client: Client, faults: FaultyAws, resources: RegionResources
) -> None:
    services = get_services()
    use_services(
        services._replace(
            queue=adapters.SqsPaymentQueue(
                queue_url=resources.payment_queue_url,
                client=partial(faults.client, "sqs", "SendMessage", UNAVAILABLE_JSON),
            )
        )
    )

    response = client.http.post(
        "/validate",
        headers={"Content-Type": "application/json"},
        body=json.dumps({"transaction_id": "t-503", "customer_id": "c", "amount": "1.00", "currency": "USD"}),
    )

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json_body["errors"][0]["message"] == "payment queue is unavailable, retry later"
    assert faults.attempts == {"SendMessage": PAYMENT_CALL_ATTEMPTS}


def test_a_failed_publish_is_retried_from_the_stream_and_announced_once(
    client: Client, faults: FaultyAws, resources: RegionResources, notifier: NotifierRun, aws: Any
) -> None:
    spy = TopicSpy(aws, resources.transaction_topic_arn)
    services = get_services()
    use_services(
        services._replace(
            notifications=adapters.SnsNotifications(
                topic_arn=resources.transaction_topic_arn,
                client=partial(faults.client, "sns", "PublishBatch", UNAVAILABLE_XML),
            )
        )
    )
    # The payment is stored; the function then fails to publish (as if it died after the write).
    client.lambda_.invoke(Handler.PAYMENT_PROCESSOR, message("txn-outbox"))

    failed = notifier.deliver()
    first_position = failed["batchItemFailures"][0]["itemIdentifier"]
    faults.failing = False
    retried = client.lambda_.invoke(Handler.PAYMENT_NOTIFIER, _retry_event(notifier, first_position)).payload

    assert faults.attempts == {"PublishBatch": PAYMENT_CALL_ATTEMPTS}
    assert retried == {"batchItemFailures": []}
    assert [m["payment"]["transaction_id"] for m in spy.messages()] == ["txn-outbox"]


def _retry_event(notifier: NotifierRun, position: str) -> dict[str, Any]:
    """What Lambda redelivers after a partial failure: the batch from the failed position on."""
    delivered = notifier.events[-1]["Records"]
    start = next(i for i, r in enumerate(delivered) if r["dynamodb"]["SequenceNumber"] == position)
    return {"Records": delivered[start:]}


ACCESS_DENIED = (
    400,
    b'{"__type": "com.amazon.coral.service#AccessDeniedException", "message": "User is not authorized"}',
)
# Multi-Region strong consistency: the other region wrote the same item at the same moment.
WRITE_CONFLICT = (
    409,
    b'{"__type": "com.amazonaws.dynamodb.v20120810#ReplicatedWriteConflictException", "message": "conflict"}',
)


def dependency_lines(logs: CapturedLogs) -> list[dict[str, Any]]:
    return [json.loads(line) for line in logs.lines() if '"dependency' in line and "failure_kind" in line]


@pytest.mark.parametrize(
    ("fault", "code", "kind", "level", "metric"),
    [
        (THROTTLED, "ThrottlingException", "load", "WARNING", "DependencyOverloaded"),
        (WRITE_CONFLICT, "ReplicatedWriteConflictException", "load", "WARNING", "DependencyOverloaded"),
        (ACCESS_DENIED, "AccessDeniedException", "misconfiguration", "ERROR", "DependencyMisconfigured"),
    ],
)
def test_every_503_logs_its_cause_once_and_counts_misconfiguration_apart_from_load(
    client: Client,
    faults: FaultyAws,
    resources: RegionResources,
    payment_logs: CapturedLogs,
    capsys: pytest.CaptureFixture[str],
    fault: tuple[int, bytes],
    code: str,
    kind: str,
    level: str,
    metric: str,
) -> None:
    faults.fail_table_writes(resources, fault)

    response = client.http.post(
        "/process",
        headers={"Content-Type": "application/json"},
        body=json.dumps(
            {"transaction_id": "t-cause", "customer_id": "c", "amount": "1.00", "currency": "USD"}
        ),
    )

    assert response.status_code == 503
    [line] = dependency_lines(payment_logs)
    assert (line["level"], line["dependency"], line["error_code"], line["failure_kind"]) == (
        level,
        "payments table",
        code,
        kind,
    )
    assert line["operation"] == "PutItem"
    assert "t-cause" not in json.dumps(line)  # the cause, never the request
    emitted = capsys.readouterr().out
    assert f'"{metric}":[1.0]' in emitted


SSM_THROTTLED = (
    400,
    b'{"__type": "com.amazonaws.ssm#ThrottlingException", "message": "Rate exceeded"}',
)
SSM_DENIED = (
    400,
    b'{"__type": "com.amazon.coral.service#AccessDeniedException", "message": "not authorized"}',
)


def health_with_flag_reads_answering(
    client: Client, faults: FaultyAws, resources: RegionResources, fault: tuple[int, bytes]
) -> tuple[int, int]:
    """/health before and after Parameter Store starts answering ``fault`` to the flag read."""
    services = get_services()
    flag = adapters.SsmRegionControl(
        parameter=services.settings.names.in_service_parameter,
        client=lambda region: faults.client("ssm", "GetParameter", fault),
    )
    use_services(
        services._replace(
            probes=adapters.DependencyProbes(
                table_name=resources.payments_table,
                queue_url=resources.payment_queue_url,
                client=partial(sdk.make_client, region=REGION),
                flag=flag,
                region=REGION,
            )
        )
    )
    faults.failing = False
    before = client.http.get("/health").status_code
    faults.failing = True
    get_services().health_cache.clear()
    after = client.http.get("/health").status_code
    return before, after


def test_a_throttled_flag_read_never_turns_health_to_503_on_its_own(
    client: Client, faults: FaultyAws, resources: RegionResources
) -> None:
    """Parameter Store's throughput is the account's: a busy account is not a failing region."""
    assert health_with_flag_reads_answering(client, faults, resources, SSM_THROTTLED) == (200, 200)
    assert faults.attempts["GetParameter"] >= 1  # it was asked, throttled, and the last flag stood


def test_a_flag_that_cannot_be_read_for_good_still_fails_health(
    client: Client, faults: FaultyAws, resources: RegionResources
) -> None:
    assert health_with_flag_reads_answering(client, faults, resources, SSM_DENIED) == (200, 503)
