"""The custom metrics the functions emit (embedded metric format) and the alarms and bench read."""

from __future__ import annotations

METRICS_NAMESPACE = "PaymentProcessing"
# The dimension Powertools gives every metric: the service's name (names.SERVICE_NAME).
SERVICE_DIMENSION = "service"
# The canary's metrics carry the region they probed, beside Powertools' service dimension.
CANARY_TARGET_DIMENSION = "TargetRegion"
# Each webhook endpoint's own delivery metrics carry its id.
WEBHOOK_ENDPOINT_DIMENSION = "WebhookEndpoint"


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
    # What the observer announced of a lost peer's payments and rejections (chalicelib.orphans).
    ORPHANS_ANNOUNCED = "OrphansAnnounced"
    CANARY_SUCCESS = "CanarySuccess"
    # Webhook deliveries (dimension WebhookEndpoint as well as the service): answered 2xx, failed
    # (retried or given up), and how old the event of a delivery still pending is (seconds).
    WEBHOOK_DELIVERED = "WebhookDelivered"
    WEBHOOK_FAILED = "WebhookFailed"
    WEBHOOK_UNDELIVERED_AGE = "WebhookUndeliveredAge"
    WEBHOOK_GIVEN_UP = "WebhookGivenUp"
    CANARY_LATENCY = "CanaryLatency"
