"""Shared fixtures: an embedded moto server on loopback and the Chalice test client over it."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from chalice.test import Client, HTTPResponse, TestHTTPClient
from moto.server import ThreadedMotoServer

from chalicelib import local_api_keys
from chalicelib.names import EnvVar, Handler, ResourceNames
from chalicelib.observability import logger as payment_logger
from chalicelib.services import use_services
from localenv import moto_fixes
from localenv.provision import RegionResources, clients_table_definition, local_client, provision_region
from localenv.streams import TableStream, lambda_stream_event
from operations.clients import ClientRegistry

REGION = "us-east-1"
PEER_REGION = "us-east-2"
SUFFIX = "test"
# The clients every handler test has: requests carry the first's key unless a test says otherwise.
MERCHANT, MERCHANT_KEY = "merchant-a", "merchant-a-key-0000000000000000000001"
OTHER_MERCHANT, OTHER_MERCHANT_KEY = "merchant-b", "merchant-b-key-0000000000000000000002"


@pytest.fixture(scope="session")
def local_aws() -> Iterator[str]:
    """The endpoint of a moto server on 127.0.0.1, shared by the session, reset per test."""
    moto_fixes.install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def resources(local_aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[RegionResources]:
    """Fresh payment resources in one region, with this process's environment pointed at them."""
    requests.post(f"{local_aws}/moto-api/reset", timeout=10).raise_for_status()
    provisioned = provision_region(local_aws, REGION, SUFFIX, peer_region=PEER_REGION)
    for name, value in provisioned.function_environment(local_aws).items():
        monkeypatch.setenv(name, value)
    # Requests reach the app as API Gateway would pass them: with the id of an admitted client key.
    monkeypatch.setenv(EnvVar.LOCAL_API_GATEWAY, "1")
    # The peer holds the clients' keys too (and so their directory), and nothing else here.
    local_client("dynamodb", local_aws, PEER_REGION).create_table(
        **clients_table_definition(ResourceNames(SUFFIX).clients_table)
    )
    registry = ClientRegistry(
        names=ResourceNames(SUFFIX),
        regions=(REGION, PEER_REGION),
        client=lambda service, region: local_client(service, local_aws, region),
    )
    for name, value in ((MERCHANT, MERCHANT_KEY), (OTHER_MERCHANT, OTHER_MERCHANT_KEY)):
        report = registry.create(name, value=value)
        assert report.ok, report.render()
    local_api_keys.key_ring.cache_clear()
    use_services(None)
    yield provisioned
    use_services(None)
    local_api_keys.key_ring.cache_clear()


@pytest.fixture
def aws(local_aws: str, resources: RegionResources) -> Any:
    """A factory of boto3 clients on the local AWS, for tests that inspect what was written."""

    def client(service: str, region: str = REGION) -> Any:
        return local_client(service, local_aws, region)

    return client


class KeyedHTTPClient(TestHTTPClient):
    """Chalice's HTTP test client sending one client's API key unless a request names its own."""

    def __init__(self, app: Any, config: Any, api_key: str) -> None:
        super().__init__(app, config)
        self.api_key = api_key

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> HTTPResponse:
        headers = dict(headers or {})
        if not any(name.lower() == local_api_keys.API_KEY_HEADER for name in headers):
            headers[local_api_keys.API_KEY_HEADER] = self.api_key
        return super().request(method, path, headers=headers, body=body)


class MerchantClient(Client):
    """The Chalice test client of one merchant: its requests carry that merchant's key."""

    def __init__(self, app: Any, api_key: str = MERCHANT_KEY) -> None:
        super().__init__(app)
        self._api_key = api_key

    @property
    def http(self) -> TestHTTPClient:
        if self._http_client is None:
            self._http_client = KeyedHTTPClient(self._app, self._chalice_config, self._api_key)
        return self._http_client


@pytest.fixture
def client(resources: RegionResources) -> Iterator[Client]:
    """Chalice's test client for the payment app, against the local AWS, as the merchant."""
    from app import app

    with MerchantClient(app) as chalice_client:
        yield chalice_client


@pytest.fixture
def other_client(resources: RegionResources) -> Iterator[Client]:
    """The same app, called with another merchant's key."""
    from app import app

    with MerchantClient(app, OTHER_MERCHANT_KEY) as chalice_client:
        yield chalice_client


class CapturedLogs:
    """Lines written by the payment logger, formatted exactly as CloudWatch would receive them."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()

    def lines(self) -> list[str]:
        return self.buffer.getvalue().splitlines()


@pytest.fixture
def payment_logs() -> Iterator[CapturedLogs]:
    """Everything the payment logger writes during the test."""
    captured = CapturedLogs()
    handler = logging.StreamHandler(captured.buffer)
    handler.setFormatter(payment_logger.registered_formatter)
    target = logging.getLogger(payment_logger.name)
    target.addHandler(handler)
    yield captured
    target.removeHandler(handler)


class NotifierRun:
    """Delivers the payments table's new stream records to the notifier, as Lambda would."""

    def __init__(self, aws: Any, client: Client, table: str) -> None:
        self._client = client
        self._stream = TableStream(table=table, dynamodb=aws("dynamodb"), streams=aws("dynamodbstreams"))
        self.events: list[dict[str, Any]] = []

    def deliver(self) -> dict[str, Any]:
        """Invoke the notifier with everything new in the stream; returns its response."""
        event = lambda_stream_event(self._stream.poll(), self._stream.stream_arn, REGION)
        self.events.append(event)
        return dict(self._client.lambda_.invoke(Handler.PAYMENT_NOTIFIER, event).payload)


class TopicSpy:
    """An SQS queue subscribed to a topic, to count and read what was published.

    With a notifier run, every read first lets the notifier publish what the table's stream
    holds, so a test sees what subscribers would see once the outbox has drained.
    """

    def __init__(self, aws: Any, topic_arn: str, notifier: NotifierRun | None = None) -> None:
        self._notifier = notifier
        self._sqs = aws("sqs")
        self._url = self._sqs.create_queue(QueueName="topic-spy")["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=self._url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        aws("sns").subscribe(
            TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"}
        )

    def messages(self) -> list[dict[str, Any]]:
        """Every message published so far (drains the spy queue)."""
        if self._notifier is not None:
            self._notifier.deliver()
        found: list[dict[str, Any]] = []
        while True:
            batch = self._sqs.receive_message(QueueUrl=self._url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return found
            for message in batch:
                found.append(json.loads(message["Body"]))
                self._sqs.delete_message(QueueUrl=self._url, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def notifier(aws: Any, client: Client, resources: RegionResources) -> NotifierRun:
    """The notifier reading this test's payments table stream."""
    return NotifierRun(aws, client, resources.payments_table)


@pytest.fixture
def transactions_topic(aws: Any, resources: RegionResources, notifier: NotifierRun) -> TopicSpy:
    """A spy on the transactions topic, fed by the notifier from the table's stream."""
    return TopicSpy(aws, resources.transaction_topic_arn, notifier)
