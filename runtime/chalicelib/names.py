"""What each of an environment's resources is called, and how its events reach the functions.

The runtime reads names through :class:`chalicelib.settings.Settings`, the CDK stacks and the
local environment import the definitions below, so a table, queue or function name exists in
exactly one place and cannot drift between the deployed system and a laptop. The formats of what
those resources hold are in :mod:`chalicelib.schema`, the metrics in :mod:`chalicelib.metrics`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from chalicelib.failover_numbers import canary_alarm_digest
from chalicelib.schema import PAYMENTS_TABLE_PREFIX

SERVICE_NAME = "payments"
APP_NAME = "payment-api"

DEFAULT_ENVIRONMENT_SUFFIX = "dev"
DEFAULT_PRIMARY_REGION = "us-east-1"
DEFAULT_SECONDARY_REGION = "us-east-2"
# The third region of the default regions' set (US East and West), a strongly consistent table's witness.
DEFAULT_WITNESS_REGION = "us-west-2"


class Topology(StrEnum):
    """Which regions take payments, chosen when the stacks are created.

    ``active-passive``: the secondary stands warm but idle; Route 53's failover record sends every
    client to the primary while it is healthy. ``active-active``: both regions take payments;
    Route 53's latency records send each client to its nearest healthy region. Two regions may
    take writes for the same ids only under multi-Region strong consistency, so active-active
    needs it.
    """

    ACTIVE_PASSIVE = "active-passive"
    ACTIVE_ACTIVE = "active-active"


DEFAULT_TOPOLOGY = Topology.ACTIVE_PASSIVE


def topology_refusal(topology: Topology, *, strong_consistency: bool) -> str | None:
    """Why ``topology`` cannot run with this payments table, or None when it can.

    Shared by synthesis and the local environment, so both refuse the same thing in the same words.
    """
    if topology is Topology.ACTIVE_ACTIVE and not strong_consistency:
        return (
            "topology active-active needs multi-Region strong consistency: two regions may take "
            "writes for the same transaction ids only when each write is checked against every "
            "region's latest version (the eventually consistent global table is refused)"
        )
    return None


API_STAGE = "prod"
# The route Route 53 health checks call; never traced (see stacks.monitoring).
HEALTH_PATH = "/health"


class EnvVar:
    """Environment variable names the Lambda functions read (set by CDK and the local runner)."""

    ENVIRONMENT_SUFFIX = "ENVIRONMENT_SUFFIX"
    PAYMENTS_TABLE = "PAYMENTS_TABLE_NAME"
    PAYMENT_QUEUE_URL = "PAYMENT_QUEUE_URL"
    TRANSACTION_TOPIC_ARN = "TRANSACTION_TOPIC_ARN"
    OPS_ALERT_TOPIC_ARN = "OPS_ALERT_TOPIC_ARN"
    IDEMPOTENCY_TABLE = "IDEMPOTENCY_TABLE_NAME"
    PEER_REGION = "PEER_REGION"
    CLIENTS_TABLE = "CLIENTS_TABLE_NAME"
    WEBHOOK_ENDPOINTS_TABLE = "WEBHOOK_ENDPOINTS_TABLE_NAME"
    WEBHOOK_QUEUE_URL = "WEBHOOK_QUEUE_URL"
    WEBHOOK_DLQ_URL = "WEBHOOK_DLQ_URL"
    # Set by the local environment only: webhooks may go to loopback receivers over plain http,
    # and no name but localhost is resolved.
    LOCAL_STAGE = "PAYMENTS_LOCAL_STAGE"
    # Set by the webhook drill only: webhook retries wait this many times less (an hour in seconds).
    LOCAL_TIME_SCALE = "PAYMENTS_LOCAL_TIME_SCALE"
    # Set by the local environment only: how long a function keeps the in-service flag it read.
    FLAG_CACHE_SECONDS = "FLAG_CACHE_SECONDS"
    # Set by the local environment only: the app checks API keys itself, against the client keys
    # of its region's API Gateway in the local AWS (no API Gateway stands in front of it).
    LOCAL_API_GATEWAY = "LOCAL_API_GATEWAY"
    # Set by the local environment only: where the canary finds the peer's API (deployed, it
    # looks the peer's REST API up in the peer region by name).
    PEER_API_URL = "PEER_API_URL"
    # "strong" when the payments table is multi-Region strongly consistent; the API says so to
    # its clients (schema.CONSISTENCY_HEADER), for whom a retry in either region is then safe.
    PAYMENTS_CONSISTENCY = "PAYMENTS_CONSISTENCY"
    REGION = "AWS_REGION"
    DEFAULT_REGION = "AWS_DEFAULT_REGION"


class QueueSettings(NamedTuple):
    """Delivery settings of the payment queue and its dead-letter queue."""

    visibility_timeout_seconds: int = 300
    max_receive_count: int = 3
    dlq_retention_days: int = 14
    processor_batch_size: int = 10
    # Lambda's SQS pollers invoke the processor at most this many times at once; without a cap,
    # throttled invocations spend receives and dead-letter payments that never ran.
    processor_max_concurrency: int = 20
    # Lambda waits up to this long to fill a batch: under load one invocation (and one receive and
    # one delete) serves ten payments instead of one, for at most a second more before processing.
    processor_batching_window_seconds: int = 1


PAYMENT_QUEUE = QueueSettings()


class NotifierSettings(NamedTuple):
    """How the notifier reads the payments table's stream (the outbox of notifications)."""

    batch_size: int = 100
    # A record that still cannot be published after this many attempts goes to the notification
    # dead-letter queue (as a pointer to the stream position) instead of blocking its shard.
    max_retry_attempts: int = 10
    max_record_age_seconds: int = 24 * 3600
    # As the processor's: fewer, fuller invocations under load, announcements at most a second later.
    batching_window_seconds: int = 1


PAYMENT_NOTIFIER = NotifierSettings()


class WebhookQueueSettings(NamedTuple):
    """The webhook deliveries queue: every announced event, then each delivery and its retries.

    A batch's deliveries run side by side, each waiting at most ``webhooks.DELIVERY_TIMEOUT_SECONDS``
    for its endpoint, so a batch ends well within the function's timeout. A message its function
    failed on (the endpoints table unreadable, not an endpoint's answer) is received again; after
    ``max_receive_count`` it waits in the dead-letter queue with the deliveries whose schedule ran out.
    """

    batch_size: int = 10
    function_timeout_seconds: int = 60
    visibility_timeout_seconds: int = 360
    max_receive_count: int = 5
    dlq_retention_days: int = 14
    # Deliveries in flight at once: a slow merchant endpoint holds a few executions, not the account's.
    max_concurrency: int = 5
    # Lambda waits up to a second to fill a batch: under load one invocation serves ten deliveries.
    batching_window_seconds: int = 1


WEBHOOK_QUEUE = WebhookQueueSettings()


class ResourceNames(NamedTuple):
    """Physical names of one environment's resources (identical in both regions)."""

    environment_suffix: str

    @property
    def payments_table(self) -> str:
        return f"{PAYMENTS_TABLE_PREFIX}{self.environment_suffix}"

    @property
    def payment_queue(self) -> str:
        return f"payment-queue-{self.environment_suffix}"

    @property
    def payment_dlq(self) -> str:
        return f"payment-dlq-{self.environment_suffix}"

    @property
    def notification_dlq(self) -> str:
        """Stream positions whose notifications could not be published."""
        return f"payment-notification-dlq-{self.environment_suffix}"

    @property
    def data_key_alias(self) -> str:
        """The customer-managed KMS key of payment data in each region."""
        return f"alias/payments-{self.environment_suffix}"

    @property
    def in_service_parameter(self) -> str:
        """The SSM parameter holding a region's in-service flag (same name in each region)."""
        return f"/payments/{self.environment_suffix}/in-service"

    @property
    def orphan_sweep_parameter(self) -> str:
        """Where a region's observer keeps how far it has announced what a lost peer left (chalicelib.orphans)."""
        return f"/payments/{self.environment_suffix}/orphan-sweep"

    @property
    def replication_marker_key(self) -> str:
        """The payments-table key failback writes in one region and waits for in the other.

        It starts with underscores, which no transaction id may, so no API route can read it.
        """
        return "__replication-marker__"

    @property
    def idempotency_table(self) -> str:
        return f"payment-idempotency-{self.environment_suffix}"

    @property
    def clients_table(self) -> str:
        """The region's client directory (a regional table: each region's key ids are its own)."""
        return f"payment-clients-{self.environment_suffix}"

    @property
    def webhook_endpoints_table(self) -> str:
        """Merchants' webhook endpoints: a global table, as the payments table is."""
        return f"payment-webhook-endpoints-{self.environment_suffix}"

    @property
    def ops_alert_topic(self) -> str:
        return f"ops-alerts-{self.environment_suffix}"

    @property
    def transaction_topic(self) -> str:
        return f"transactions-{self.environment_suffix}"

    @property
    def rest_api(self) -> str:
        return f"payment-api-{self.environment_suffix}"

    def client_secret(self, client: str) -> str:
        """The secret holding ``client``'s API key value, replicated to the peer region."""
        return f"{self.client_secret_prefix}{client}"

    @property
    def client_secret_prefix(self) -> str:
        return f"payments/{self.environment_suffix}/clients/"

    def client_api_key(self, client: str) -> str:
        """The name of ``client``'s API keys in each region (one per value it holds: a rotation adds one)."""
        return f"{self.client_api_key_prefix}{client}"

    @property
    def client_api_key_prefix(self) -> str:
        return f"payment-client-{self.environment_suffix}-"

    def client_usage_plan(self, client: str) -> str:
        """``client``'s usage plan in each region: its own throttle, its keys, the payment API's stage."""
        return self.client_api_key(client)

    @property
    def web_acl(self) -> str:
        return f"payment-api-acl-{self.environment_suffix}"

    def dashboard(self, region: str) -> str:
        """The region's CloudWatch dashboard: dashboard names are global to the account."""
        return f"payment-dr-{self.environment_suffix}-{region}"

    @property
    def validator_function(self) -> str:
        """The API handler: serves /validate and the other routes."""
        return f"payment-validator-{self.environment_suffix}"

    @property
    def processor_function(self) -> str:
        return f"payment-processor-{self.environment_suffix}"

    @property
    def notifier_function(self) -> str:
        return f"payment-notifier-{self.environment_suffix}"

    @property
    def orchestrator_function(self) -> str:
        return f"failover-orchestrator-{self.environment_suffix}"

    @property
    def api_5xx_alarm(self) -> str:
        return f"payment-api-5xx-{self.environment_suffix}"

    @property
    def lambda_errors_alarm(self) -> str:
        return f"payment-lambda-errors-{self.environment_suffix}"

    @property
    def dynamodb_throttles_alarm(self) -> str:
        return f"payment-dynamodb-throttles-{self.environment_suffix}"

    @property
    def dlq_messages_alarm(self) -> str:
        return f"payment-dlq-messages-{self.environment_suffix}"

    @property
    def notification_dlq_alarm(self) -> str:
        return f"payment-notification-dlq-{self.environment_suffix}"

    @property
    def announce_failed_alarm(self) -> str:
        return f"payment-announce-failed-{self.environment_suffix}"

    @property
    def control_failures_queue(self) -> str:
        """Asynchronous invocations of the orchestrator and the canary that failed every attempt."""
        return f"payment-control-failures-{self.environment_suffix}"

    @property
    def control_failures_alarm(self) -> str:
        return f"payment-control-failures-{self.environment_suffix}"

    @property
    def misconfiguration_alarm(self) -> str:
        return f"payment-dependency-misconfigured-{self.environment_suffix}"

    @property
    def replication_latency_alarm(self) -> str:
        return f"payment-replication-latency-{self.environment_suffix}"

    @property
    def health_sampling_rule(self) -> str:
        # X-Ray limits rule names to 32 characters.
        return f"payments-health-{self.environment_suffix}"[:32]

    @property
    def canary_function(self) -> str:
        return f"payment-canary-{self.environment_suffix}"

    @property
    def webhook_function(self) -> str:
        return f"payment-webhooks-{self.environment_suffix}"

    @property
    def webhook_queue(self) -> str:
        """Announced events and the deliveries they become (subscribed to the transactions topic)."""
        return f"payment-webhook-deliveries-{self.environment_suffix}"

    @property
    def webhook_dlq(self) -> str:
        """Deliveries whose 3 days of retries ran out, replayable by the merchant or the operator."""
        return f"payment-webhook-dead-letters-{self.environment_suffix}"

    @property
    def webhook_dlq_alarm(self) -> str:
        return f"payment-webhook-dead-letters-{self.environment_suffix}"

    @property
    def webhook_backlog_alarm(self) -> str:
        return f"payment-webhook-backlog-{self.environment_suffix}"

    def canary_alarm(self, target_region: str) -> str:
        """The alarm on the canary against ``target_region``; it lives in the peer (observer) region.

        Its name ends with the digest of its definition (:func:`canary_alarm_digest`).
        """
        return f"payment-canary-{target_region}-{self.environment_suffix}-{canary_alarm_digest()}"

    @property
    def health_check_alarm(self) -> str:
        return f"payment-health-check-{self.environment_suffix}"


class Handler:
    """Chalice handler names; Chalice names each Lambda function after its handler."""

    API = "api_handler"
    PAYMENT_PROCESSOR = "process_payment_messages"
    PAYMENT_NOTIFIER = "announce_processed_payments"
    FAILOVER_ORCHESTRATOR = "orchestrate_failover"
    PAYMENT_CANARY = "probe_peer_region"
    WEBHOOK_DELIVERER = "deliver_webhooks"
