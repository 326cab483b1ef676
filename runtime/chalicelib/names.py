"""The one place where resource names, keys and queue settings are defined.

The runtime reads names through :class:`chalicelib.settings.Settings`, the CDK stacks and the
local environment import the definitions below, so a table, index or queue setting exists in
exactly one place and cannot drift between the deployed system and a laptop.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from chalicelib.failover_numbers import CANARY, CanarySettings

SERVICE_NAME = "payments"
APP_NAME = "payment-api"
METRICS_NAMESPACE = "PaymentProcessing"
# Message attribute that carries a payment's correlation id from the API to the processor.
CORRELATION_ID_ATTRIBUTE = "correlation_id"

DEFAULT_ENVIRONMENT_SUFFIX = "dev"
DEFAULT_PRIMARY_REGION = "us-east-1"
DEFAULT_SECONDARY_REGION = "us-east-2"
API_STAGE = "prod"
# The route Route 53 health checks call; never traced (see stacks.monitoring).
HEALTH_PATH = "/health"


class Metric:
    """Names of the custom metrics the functions emit."""

    VALIDATED = "PaymentValidated"
    REJECTED = "PaymentRejected"
    FRAUD_FLAGGED = "PaymentFraudFlagged"
    PROCESSED = "PaymentProcessed"
    DUPLICATE = "PaymentDuplicate"
    # Queued payments that can never be processed: recorded and announced, never retried.
    REJECTED_IN_PROCESSING = "PaymentRejectedInProcessing"
    PROCESSING_FAILED = "PaymentProcessingFailed"
    ANNOUNCED = "PaymentAnnounced"
    ANNOUNCE_FAILED = "PaymentAnnounceFailed"
    FAILOVER_SIGNAL = "FailoverSignal"
    FAILOVER_EXECUTED = "FailoverExecuted"
    FAILOVER_REFUSED = "FailoverRefused"
    # A call to AWS that failed for good, by cause: a broken deployment, or a busy or failing service.
    DEPENDENCY_MISCONFIGURED = "DependencyMisconfigured"
    DEPENDENCY_OVERLOADED = "DependencyOverloaded"
    # Payments refused by a region draining for a planned switchover (clients retry).
    REFUSED_WHILE_DRAINING = "PaymentRefusedWhileDraining"
    # Requests whose API key belongs to no client (a key made outside `payments-dr clients`).
    UNKNOWN_CLIENT = "RequestOfUnknownClient"
    # The observer's canary against the peer region (dimension TargetRegion): 1 passed, 0 failed.
    CANARY_SUCCESS = "CanarySuccess"
    CANARY_LATENCY = "CanaryLatency"


# The canary's metrics carry the region they probed, beside Powertools' service dimension.
CANARY_TARGET_DIMENSION = "TargetRegion"
# What a region draining for a switchover answers its refusals with (chalicelib.http), so the
# peer's canary does not read a planned drain as a failure (chalicelib.canary).
REGION_DRAINING_HEADER = "X-Region-Draining"


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
    # Set by the local environment only: how long a function keeps the in-service flag it read.
    FLAG_CACHE_SECONDS = "FLAG_CACHE_SECONDS"
    # Set by the local environment only: the app checks API keys itself, against the client keys
    # of its region's API Gateway in the local AWS (no API Gateway stands in front of it).
    LOCAL_API_GATEWAY = "LOCAL_API_GATEWAY"
    # Set by the local environment only: where the canary finds the peer's API (deployed, it
    # looks the peer's REST API up in the peer region by name).
    PEER_API_URL = "PEER_API_URL"
    REGION = "AWS_REGION"
    DEFAULT_REGION = "AWS_DEFAULT_REGION"


class PaymentsTableSchema:
    """Key schema of the payments table and its customer index."""

    PARTITION_KEY = "transaction_id"
    SORT_KEY = "timestamp"
    CUSTOMER_INDEX = "customer-index"
    CUSTOMER_INDEX_PARTITION_KEY = "customer_id"
    CUSTOMER_INDEX_SORT_KEY = "timestamp"
    STREAM_VIEW_TYPE = "NEW_AND_OLD_IMAGES"
    # The claim item that makes processing idempotent sits beside the payment record under the
    # same partition key; no real payment is ever stamped at epoch 0.
    CLAIM_SORT_KEY = 0


class ClientsTableSchema:
    """The client directory of one region: which client each of the region's API key ids belongs to.

    API Gateway hands the function the id of the key a request carried; ids differ between the
    regions and between a client's rotated keys, and the client (its name) is what owns payments.
    """

    PARTITION_KEY = "api_key_id"
    CLIENT_ATTRIBUTE = "client"


# What owns every payment, rejection and Idempotency-Key record: the client, by name. Stored keys
# join the client and the client's own id with this character, which neither may contain.
CLIENT_SCOPE_SEPARATOR = "#"
# The message attribute (payment queue, transactions topic) naming the client a payment belongs to.
CLIENT_MESSAGE_ATTRIBUTE = "client"


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


class IdempotencyKeys:
    """The ``Idempotency-Key`` request header, as payment APIs define it."""

    HEADER = "Idempotency-Key"
    # Keys live a day, as Stripe's do: long enough for any client retry loop.
    TTL_SECONDS = 24 * 3600
    MAX_LENGTH = 255
    PARTITION_KEY = "id"
    EXPIRY_ATTRIBUTE = "expiration"


# Every environment's payments table is named ``payments-{suffix}`` (ResourceNames.payments_table).
PAYMENTS_TABLE_PREFIX = "payments-"


def is_payments_table(table_name: str) -> bool:
    """Whether ``table_name`` is some environment's payments table (the local AWS applies its rules)."""
    return table_name.startswith(PAYMENTS_TABLE_PREFIX)


# The client the observer's canary calls the peer's API as: a client like any other, with its own
# key (created with the stacks) and throttle.
CANARY_CLIENT = "canary"
# Clients whose payments are synthetic: never announced on transactions, and removed by the canary.
SYNTHETIC_CLIENTS = frozenset({CANARY_CLIENT})
# A client name: what its keys, usage plan and secret are named after.
CLIENT_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,39}$"
# The field of a client's secret (JSON) that holds its current API key value.
API_KEY_SECRET_FIELD = "api_key"


class ClientThrottle(NamedTuple):
    """A client's usage-plan throttle: steady requests per second and burst."""

    rate_limit: float
    burst_limit: int


# The canary makes two requests a minute; merchants get what `payments-dr clients create` gives.
CANARY_THROTTLE = ClientThrottle(rate_limit=5, burst_limit=10)
DEFAULT_CLIENT_THROTTLE = ClientThrottle(rate_limit=100, burst_limit=200)


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

    def canary_alarm(self, target_region: str) -> str:
        """The alarm on the canary against ``target_region``; it lives in the peer (observer) region.

        Its name ends with the digest of its definition (:func:`canary_alarm_digest`).
        """
        return f"payment-canary-{target_region}-{self.environment_suffix}-{canary_alarm_digest()}"

    @property
    def health_check_alarm(self) -> str:
        return f"payment-health-check-{self.environment_suffix}"

    @property
    def critical_alarms(self) -> frozenset[str]:
        """Alarms whose ALARM state means the region is impaired: the orchestrator takes it out.

        Only signals no client can raise by what it sends: 5XX answers, function errors and
        throttled table requests. The dead-letter queue alarm is not one of them: what reaches it
        is a message infrastructure failed to process, which pages people (on the same topic)
        but says nothing about whether the region can take payments, and it must never move
        traffic. Nor is replication latency (see ``PaymentMonitoring``).
        """
        return frozenset({self.api_5xx_alarm, self.lambda_errors_alarm, self.dynamodb_throttles_alarm})

    @property
    def paging_alarms(self) -> frozenset[str]:
        """Alarms that page operators without moving traffic."""
        return frozenset(
            {
                self.dlq_messages_alarm,
                self.replication_latency_alarm,
                self.misconfiguration_alarm,
                self.control_failures_alarm,
            }
        )


class Handler:
    """Chalice handler names; Chalice names each Lambda function after its handler."""

    API = "api_handler"
    PAYMENT_PROCESSOR = "process_payment_messages"
    PAYMENT_NOTIFIER = "announce_processed_payments"
    FAILOVER_ORCHESTRATOR = "orchestrate_failover"
    PAYMENT_CANARY = "probe_peer_region"


# Graviton: about 20 % less per GB-second than x86_64, and the package is pure Python, so it
# runs unchanged on either.
LAMBDA_ARCHITECTURE = "arm64"


class FunctionSettings(NamedTuple):
    """Size, retry and concurrency settings of one Lambda function.

    ``reserved_concurrency``: executions kept for this function alone, so a surge that takes the
    account's concurrency cannot throttle it (None: it shares the account's pool).
    ``on_failure_destination``: an asynchronous invocation that fails every attempt is sent to the
    control-failures queue, whose alarm pages, instead of being dropped.
    """

    memory_mb: int
    timeout_seconds: int
    async_retries: int = 2
    reserved_concurrency: int | None = None
    on_failure_destination: bool = False


FUNCTIONS: dict[str, FunctionSettings] = {
    # The API handler serves /validate (the validator) and the other routes.
    Handler.API: FunctionSettings(memory_mb=512, timeout_seconds=30),
    Handler.PAYMENT_PROCESSOR: FunctionSettings(memory_mb=1024, timeout_seconds=60),
    Handler.PAYMENT_NOTIFIER: FunctionSettings(memory_mb=256, timeout_seconds=60),
    # The control plane: a CloudWatch alarm notifies once, on its change of state, so a dropped
    # notification is a failover that never happens; and it must run when the payment path has
    # taken every execution the account has. A few alarms at once at most: 5 executions.
    Handler.FAILOVER_ORCHESTRATOR: FunctionSettings(
        memory_mb=256, timeout_seconds=60, reserved_concurrency=5, on_failure_destination=True
    ),
    # Two HTTP steps of at most 5 s each, once a minute; a missed run is a missing data point, and
    # one that fails (not a failed probe: the function itself) pages.
    Handler.PAYMENT_CANARY: FunctionSettings(
        memory_mb=256,
        timeout_seconds=30,
        async_retries=0,
        reserved_concurrency=2,
        on_failure_destination=True,
    ),
}


def canary_alarm_digest(canary: CanarySettings | None = None) -> str:
    """Eight hex digits that change whenever the canary alarm's definition does.

    Route 53 copies an alarm's settings when a health check on it is created and never follows
    later changes: the digest in the alarm's name (and the health check's id) makes a changed
    definition a new alarm and a new health check, never a stale copy.
    """
    rule = canary or CANARY
    definition = (
        METRICS_NAMESPACE,
        Metric.CANARY_SUCCESS,
        CANARY_TARGET_DIMENSION,
        rule.statistic,
        rule.period_seconds,
        rule.evaluation_periods,
        rule.datapoints_to_alarm,
        rule.threshold,
        rule.comparison,
        rule.treat_missing_data,
    )
    return hashlib.sha256(repr(definition).encode()).hexdigest()[:8]
