"""Local stand-in for Lambda's event source mapping and SNS subscription, for one region.

Run as ``python -m localenv.events`` with the region's function environment (see
``RegionResources.function_environment``). It long-polls the payment queue and invokes the
Chalice SQS handler with real batches, honouring the partial batch response: processed
messages are deleted, failed ones become visible again after a short delay and reach the
dead-letter queue after the queue's maximum receives, exactly as the redrive policy says. It
reads the payments table's stream and invokes the notifier, retrying from the first position
it reports failed, as Lambda does. It also delivers ops-alert topic messages (through an SQS
subscription) to the SNS handler, and, when ``PAYMENTS_LOCAL_CANARY_SECONDS`` is set, runs the
scheduled canary against the peer region's local API at that interval and keeps the canary
alarm's state (:mod:`localenv.canary`).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any

import boto3

from chalicelib.cards import redact_pans
from chalicelib.names import PAYMENT_NOTIFIER, PAYMENT_QUEUE, WEBHOOK_QUEUE, EnvVar, ResourceNames
from localenv.canary import CanaryAlarm
from localenv.metric_logs import capture_function_output
from localenv.streams import TableStream, lambda_stream_event

# Lambda leaves a failed message invisible for the queue's whole visibility timeout (300 s);
# locally a failed message is retried after this many seconds so the redrive path is
# observable while you watch.
LOCAL_RETRY_DELAY_SECONDS = 1
POLL_WAIT_SECONDS = 1
OPS_ALERT_SUBSCRIPTION_QUEUE = "local-ops-alert-delivery"
# Seconds between canary runs (Lambda's schedule: one a minute); unset or 0: no canary.
CANARY_SECONDS_VARIABLE = "PAYMENTS_LOCAL_CANARY_SECONDS"
ORCHESTRATOR_VARIABLE = "PAYMENTS_LOCAL_ORCHESTRATOR"


@dataclass
class LocalContext:
    """The parts of Lambda's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:local:000000000000:function:local"
    aws_request_id: str = "local"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


def sqs_lambda_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """The record Lambda's SQS event source mapping would build from a received message."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            name: {"stringValue": value.get("StringValue"), "dataType": value["DataType"]}
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def sns_lambda_event(message: str, topic_arn: str) -> dict[str, Any]:
    """The event an SNS subscription would deliver to a Lambda function."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic_arn}:local",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": "local",
                    "TopicArn": topic_arn,
                    "Subject": None,
                    "Message": message,
                    "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                    "MessageAttributes": {},
                },
            }
        ]
    }


def scheduled_event(region: str) -> dict[str, Any]:
    """The event EventBridge's schedule delivers to a scheduled function."""
    return {
        "version": "0",
        "id": "local",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": region,
        "resources": [],
        "detail": {},
    }


class RegionEventRunner:
    """Polls one region's payment queue and ops-alert subscription and invokes the handlers."""

    def __init__(self, environ: dict[str, str]) -> None:
        from app import (
            announce_processed_payments,
            deliver_webhooks,
            orchestrate_failover,
            probe_peer_region,
            process_payment_messages,
        )

        self.region = environ[EnvVar.REGION]
        self.queue_url = environ[EnvVar.PAYMENT_QUEUE_URL]
        self.ops_topic_arn = environ[EnvVar.OPS_ALERT_TOPIC_ARN]
        self._processor = process_payment_messages
        self._orchestrator = orchestrate_failover
        self._notifier = announce_processed_payments
        self._deliverer = deliver_webhooks
        self.webhook_queue_url = environ.get(EnvVar.WEBHOOK_QUEUE_URL, "")
        self.webhooks = 0
        self._sqs = boto3.client("sqs", region_name=self.region)
        self._stream = TableStream(
            table=environ[EnvVar.PAYMENTS_TABLE],
            dynamodb=boto3.client("dynamodb", region_name=self.region),
            streams=boto3.client("dynamodbstreams", region_name=self.region),
        )
        self._unannounced: list[dict[str, Any]] = []
        self._notifier_attempts = 0
        self.queue_arn = self._queue_arn(self.queue_url)
        self.webhook_queue_arn = self._queue_arn(self.webhook_queue_url) if self.webhook_queue_url else ""
        self.alert_queue_url = self._subscribe_to_ops_alerts()
        self.processed = self.failed = self.alerts = self.announced = 0
        self.running = True
        self._canary = probe_peer_region
        self._canary_seconds = float(environ.get(CANARY_SECONDS_VARIABLE) or 0)
        self._next_canary = 0.0
        peer = environ.get(EnvVar.PEER_REGION, "")
        names = ResourceNames(environ.get(EnvVar.ENVIRONMENT_SUFFIX, ""))
        self._canary_alarm = CanaryAlarm(
            boto3.client("cloudwatch", region_name=self.region),
            boto3.client("sns", region_name=self.region),
            alarm_name=names.canary_alarm(peer),
            topic_arn=self.ops_topic_arn,
            region=self.region,
            target=peer,
        )
        self.canary_runs = 0
        self._orchestrator_on = environ.get(ORCHESTRATOR_VARIABLE, "on") != "off"

    def _queue_arn(self, url: str) -> str:
        return self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]

    def _subscribe_to_ops_alerts(self) -> str:
        url = self._sqs.create_queue(QueueName=OPS_ALERT_SUBSCRIPTION_QUEUE)["QueueUrl"]
        boto3.client("sns", region_name=self.region).subscribe(
            TopicArn=self.ops_topic_arn,
            Protocol="sqs",
            Endpoint=self._queue_arn(url),
            Attributes={"RawMessageDelivery": "true"},
        )
        return url

    def poll_payments(self) -> int:
        """Receive up to one batch and hand it to the processor; returns the batch size."""
        messages = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=PAYMENT_QUEUE.processor_batch_size,
            WaitTimeSeconds=POLL_WAIT_SECONDS,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            return 0
        failed_ids = self._invoke_with_batch(self._processor, "payment-processor", self.queue_arn, messages)
        done = []
        for message in messages:
            receives = message.get("Attributes", {}).get("ApproximateReceiveCount", "?")
            transaction = _transaction_id(message["Body"])
            if message["MessageId"] in failed_ids:
                self.failed += 1
                self._receive_again_soon(self.queue_url, message)
                print(
                    f"[{self.region}] FAILED    {transaction} (receive {receives}; retried, DLQ after "
                    f"{PAYMENT_QUEUE.max_receive_count})",
                    flush=True,
                )
            else:
                self.processed += 1
                done.append(message)
                # Stored or recorded as rejected: either way done with, and deleted from the queue.
                print(f"[{self.region}] done      {transaction}", flush=True)
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        return len(messages)

    def _invoke_with_batch(
        self, handler: Any, function: str, queue_arn: str, messages: list[dict[str, Any]]
    ) -> set[str]:
        """Invoke an SQS handler with ``messages`` as Lambda's event source does; the ids it failed."""
        event = {"Records": [sqs_lambda_record(m, queue_arn, self.region) for m in messages]}
        try:
            response = handler(event, LocalContext(function))
            return {item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])}
        except Exception as error:  # noqa: BLE001 - a crashed invocation fails the whole batch, as in Lambda
            print(f"[{self.region}] {function} invocation failed: {type(error).__name__}", flush=True)
            return {m["MessageId"] for m in messages}

    def _receive_again_soon(self, queue_url: str, message: dict[str, Any]) -> None:
        """A failed message back on its queue after LOCAL_RETRY_DELAY_SECONDS (its receives still count)."""
        self._sqs.change_message_visibility(
            QueueUrl=queue_url,
            ReceiptHandle=message["ReceiptHandle"],
            VisibilityTimeout=LOCAL_RETRY_DELAY_SECONDS,
        )

    def poll_table_stream(self) -> None:
        """Hand new stream records to the notifier; on failure retry from the first failed one."""
        fresh = lambda_stream_event(self._stream.poll(), self._stream.stream_arn, self.region)["Records"]
        self._unannounced.extend(fresh)
        if not self._unannounced:
            return
        batch = self._unannounced[: PAYMENT_NOTIFIER.batch_size]
        try:
            response = self._notifier({"Records": batch}, LocalContext("payment-notifier"))
            failed = [item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])]
        except Exception as error:  # noqa: BLE001 - a crashed invocation retries the batch, as in Lambda
            print(f"[{self.region}] notifier invocation failed: {type(error).__name__}", flush=True)
            failed = [batch[0]["dynamodb"]["SequenceNumber"]]
        positions = [record["dynamodb"]["SequenceNumber"] for record in batch]
        done = positions.index(min(failed, key=positions.index)) if failed else len(batch)
        self.announced += done
        self._unannounced = self._unannounced[done:]
        self._notifier_attempts = self._notifier_attempts + 1 if failed else 0
        if failed and self._notifier_attempts > PAYMENT_NOTIFIER.max_retry_attempts:
            print(
                f"[{self.region}] notifier gave up on {len(batch) - done} records "
                "(Lambda would send their positions to the notification DLQ)",
                flush=True,
            )
            self._unannounced = self._unannounced[len(batch) - done :]
            self._notifier_attempts = 0

    def poll_webhooks(self) -> None:
        """Hand waiting webhook messages to the deliverer; a message it failed on comes back later."""
        if not self.webhook_queue_url:
            return
        messages = self._sqs.receive_message(
            QueueUrl=self.webhook_queue_url, MaxNumberOfMessages=WEBHOOK_QUEUE.batch_size
        ).get("Messages", [])
        if not messages:
            return
        failed_ids = self._invoke_with_batch(
            self._deliverer, "payment-webhooks", self.webhook_queue_arn, messages
        )
        for message in messages:
            if message["MessageId"] in failed_ids:
                self._receive_again_soon(self.webhook_queue_url, message)
            else:
                self._sqs.delete_message(
                    QueueUrl=self.webhook_queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
                self.webhooks += 1

    def poll_ops_alerts(self) -> None:
        """Deliver waiting ops-alert messages to the failover orchestrator, one per event.

        With ``PAYMENTS_LOCAL_ORCHESTRATOR=off`` the messages are taken and dropped: the drill's
        gray failure shows that traffic moves without the failing region's orchestrator.
        """
        messages = self._sqs.receive_message(QueueUrl=self.alert_queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        for message in messages:
            if not self._orchestrator_on:
                self._sqs.delete_message(
                    QueueUrl=self.alert_queue_url, ReceiptHandle=message["ReceiptHandle"]
                )
                continue
            self._orchestrator(
                sns_lambda_event(message["Body"], self.ops_topic_arn), LocalContext("orchestrator")
            )
            self._sqs.delete_message(QueueUrl=self.alert_queue_url, ReceiptHandle=message["ReceiptHandle"])
            self.alerts += 1
            print(f"[{self.region}] ops alert delivered to the failover orchestrator", flush=True)

    def poll_canary(self) -> None:
        """Run the canary against the peer when it is due, and evaluate its alarm here."""
        if not self._canary_seconds or time.monotonic() < self._next_canary:
            return
        self._next_canary = time.monotonic() + self._canary_seconds
        result = self._canary(scheduled_event(self.region), LocalContext("canary"))
        before = self._canary_alarm.state
        state = self._canary_alarm.record(bool(result["success"]))
        self.canary_runs += 1
        if state != before:
            print(f"[{self.region}] canary alarm on {result['target_region']}: {state}", flush=True)

    def run(self) -> None:
        """Poll until SIGTERM or SIGINT, then print a summary."""
        while self.running:
            try:
                self.poll_canary()
                self.poll_payments()
                self.poll_table_stream()
                self.poll_webhooks()
                self.poll_ops_alerts()
            except Exception as error:  # noqa: BLE001 - Lambda's pollers outlive a missing queue or a hiccup
                print(f"[{self.region}] event runner error: {type(error).__name__}: {error}", flush=True)
                time.sleep(POLL_WAIT_SECONDS)
        print(
            f"[{self.region}] event runner stopped: {self.processed} processed, "
            f"{self.failed} failed deliveries, {self.announced} stream records announced, "
            f"{self.alerts} ops alerts, {self.webhooks} webhook messages",
            flush=True,
        )

    def stop(self, *_: Any) -> None:
        self.running = False


def _transaction_id(body: str) -> str:
    try:
        value = json.loads(body).get("transaction_id")
    except (ValueError, AttributeError):
        return "(unreadable message)"
    return redact_pans(str(value))[:64] if value else "(no transaction_id)"


def main() -> None:
    """Entry point of ``python -m localenv.events``."""
    capture_function_output()
    runner = RegionEventRunner(dict(os.environ))
    signal.signal(signal.SIGTERM, runner.stop)
    signal.signal(signal.SIGINT, runner.stop)
    print(f"[{runner.region}] event runner polling {runner.queue_arn}", flush=True)
    runner.run()
    sys.exit(0)


if __name__ == "__main__":
    main()
