"""The payment service's five functions: thin Chalice handlers, each over one use-case module of ``chalicelib``."""

from __future__ import annotations

import gc

# Everything this module imports and defines lives as long as the container: the collector is
# paused until the end of the module, which freezes it all (see chalicelib.heap).
gc.disable()

import os
from collections.abc import Callable
from typing import Any, cast

from chalice.app import Chalice, CloudWatchEvent, DynamoDBEvent, Rate, Request, Response, SNSEvent, SQSEvent

from chalicelib import heap, local_api_keys, notifier, observer, orchestrator, payments_api, processor
from chalicelib.failover_numbers import CANARY
from chalicelib.http import answers_errors_as_json, json_response, read_json_body, stored_response
from chalicelib.idempotency import checked_key
from chalicelib.names import (
    APP_NAME,
    DEFAULT_ENVIRONMENT_SUFFIX,
    HEALTH_PATH,
    PAYMENT_NOTIFIER,
    PAYMENT_QUEUE,
    WEBHOOK_QUEUE,
    EnvVar,
    Handler,
    ResourceNames,
)
from chalicelib.observability import CLIENT_LOG_KEY, flush_metrics, logger
from chalicelib.schema import CONSISTENCY_HEADER, IdempotencyKeys
from chalicelib.services import get_services

if os.environ.get("AWS_CHALICE_CLI_MODE"):  # the chalice command line (`chalice local`), never Lambda
    from chalicelib import local_stage

    local_stage.prepare_chalice_local()

app = Chalice(app_name=APP_NAME)
# Event sources are bound by name at package time; the CDK stack points them at its own
# queue and topic, so these names only matter for `chalice deploy` and `chalice local`.
_names = ResourceNames(os.environ.get(EnvVar.ENVIRONMENT_SUFFIX, DEFAULT_ENVIRONMENT_SUFFIX))
# An empty list turns off Chalice's own content-type check: POST routes answer a wrong type in the
# API's error format, and GET routes have no body whose type could matter.
ANY_CONTENT_TYPE: list[str] = []


@app.middleware("all")
def flush_invocation_metrics(event: Any, get_response: Any) -> Any:
    """Write each invocation's metrics as one embedded-format line, however it ends."""
    try:
        return get_response(event)
    finally:
        flush_metrics()


@app.middleware("http")
def check_api_key_without_gateway(request: Request, get_response: Callable[[Request], Response]) -> Response:
    """Refuse payment routes without an API key where no API Gateway does it (``make run``)."""
    settings = get_services().settings
    if settings.local_api_gateway and not local_api_keys.admit(
        routes=app.routes,
        method=request.method,
        context=request.context,
        headers=request.headers,
        allowed=local_api_keys.key_ring(settings.region, settings.names.client_api_key_prefix)(),
    ):
        return json_response(local_api_keys.FORBIDDEN_BODY, 403)
    return get_response(request)


@app.middleware("http")
def correlate_request(request: Request, get_response: Callable[[Request], Response]) -> Response:
    """Tag every log line of a request with its correlation id and return the id to the client."""
    correlation_id = payments_api.correlation_id_for(
        request.headers.get("x-correlation-id"), (request.context or {}).get("requestId")
    )
    logger.set_correlation_id(correlation_id)
    try:
        response = get_response(request)
    finally:
        # The client a request was identified as (payments_api.identify_client) is its own alone.
        logger.remove_keys([CLIENT_LOG_KEY])
    response.headers["X-Correlation-Id"] = correlation_id
    response.headers[CONSISTENCY_HEADER] = get_services().settings.consistency
    return response


def _request() -> Request:
    # Chalice sets it before any route runs; None only outside a request.
    request = app.current_request
    assert request is not None
    return request


def _json_document() -> Any:
    request = _request()
    # Request.raw_body is bytes: Chalice encodes a str body itself, whatever its annotation says.
    return read_json_body(request.headers, cast(bytes, request.raw_body))


def _client() -> str:
    """The client the request comes from (API Gateway names the key it admitted the request with)."""
    identity = (_request().context or {}).get("identity") or {}
    return payments_api.identify_client(identity.get("apiKeyId"), get_services())


def _client_request() -> payments_api.ClientRequest:
    request = _request()
    return payments_api.ClientRequest(
        client=_client(),
        idempotency_key=checked_key(request.headers.get(IdempotencyKeys.HEADER)),
        correlation_id=logger.get_correlation_id(),
    )


@app.route("/validate", methods=["POST"], content_types=ANY_CONTENT_TYPE, api_key_required=True)
@answers_errors_as_json
def post_validate() -> Response:
    """Validate a payment and queue it for processing."""
    return stored_response(payments_api.accept_payment(_json_document(), get_services(), _client_request()))


@app.route("/process", methods=["POST"], content_types=ANY_CONTENT_TYPE, api_key_required=True)
@answers_errors_as_json
def post_process() -> Response:
    """Process a payment now; a repeat answers 200 with the stored record."""
    return stored_response(
        payments_api.process_payment_now(_json_document(), get_services(), _client_request())
    )


@app.route(
    "/payments/{transaction_id}", methods=["GET"], api_key_required=True, content_types=ANY_CONTENT_TYPE
)
@answers_errors_as_json
def get_payment_by_id(transaction_id: str) -> Response:
    """One of the caller's processed payments."""
    return json_response(payments_api.find_payment(_client(), transaction_id, get_services()))


@app.route(
    "/customers/{customer_id}/payments",
    methods=["GET"],
    api_key_required=True,
    content_types=ANY_CONTENT_TYPE,
)
@answers_errors_as_json
def get_customer_payments(customer_id: str) -> Response:
    """The caller's payments of one customer, newest first, one page at a time."""
    query = dict(_request().query_params or {})
    return json_response(payments_api.customer_history(_client(), customer_id, query, get_services()))


# The webhook modules (their address rules, signing, the deliverer) are imported by the handlers that
# use them, on first use: every other function's cold start would otherwise pay for them.
@app.route("/webhook-endpoints", methods=["POST"], content_types=ANY_CONTENT_TYPE, api_key_required=True)
@answers_errors_as_json
def post_webhook_endpoint() -> Response:
    """Register an endpoint for the caller's events; its signing secret is in this answer only."""
    from chalicelib import webhook_endpoints

    return json_response(webhook_endpoints.register(get_services(), _client(), _json_document()), 201)


@app.route("/webhook-endpoints", methods=["GET"], api_key_required=True, content_types=ANY_CONTENT_TYPE)
@answers_errors_as_json
def get_webhook_endpoints() -> Response:
    """The caller's endpoints, without their secrets."""
    from chalicelib import webhook_endpoints

    return json_response(webhook_endpoints.endpoints(get_services(), _client()))


@app.route(
    "/webhook-endpoints/{endpoint_id}",
    methods=["DELETE"],
    api_key_required=True,
    content_types=ANY_CONTENT_TYPE,
)
@answers_errors_as_json
def delete_webhook_endpoint(endpoint_id: str) -> Response:
    """Remove one of the caller's endpoints."""
    from chalicelib import webhook_endpoints

    webhook_endpoints.delete(get_services(), _client(), endpoint_id)
    return Response(body="", status_code=204)


@app.route(
    "/webhook-endpoints/{endpoint_id}/rotate-secret",
    methods=["POST"],
    api_key_required=True,
    content_types=ANY_CONTENT_TYPE,
)
@answers_errors_as_json
def rotate_webhook_secret(endpoint_id: str) -> Response:
    """A new signing secret for one of the caller's endpoints; the former one signs beside it a while."""
    from chalicelib import webhook_endpoints

    return json_response(webhook_endpoints.rotate_secret(get_services(), _client(), endpoint_id))


@app.route(
    "/webhook-endpoints/{endpoint_id}/replay",
    methods=["POST"],
    api_key_required=True,
    content_types=ANY_CONTENT_TYPE,
)
@answers_errors_as_json
def replay_webhook_events(endpoint_id: str) -> Response:
    """Send the caller's events of a time range to one of its endpoints again, each with its own id."""
    from chalicelib import webhook_endpoints

    return json_response(
        webhook_endpoints.replay(get_services(), _client(), endpoint_id, _json_document()), 202
    )


@app.schedule(Rate(CANARY.rate_minutes, unit=Rate.MINUTES), name=Handler.PAYMENT_CANARY)
def probe_peer_region(event: CloudWatchEvent) -> dict[str, Any]:
    """The observer: a synthetic payment through the peer region's API, as metrics here; and once
    the peer is lost, the announcements of what it stored and never made."""
    services = get_services()
    result = observer.run_canary(services).to_json()
    observer.announce_what_a_lost_peer_left(services)
    return result


@app.route(HEALTH_PATH, methods=["GET"], content_types=ANY_CONTENT_TYPE)
def get_health() -> Response:
    """Health of this region for Route 53 health checks (no authentication)."""
    report = payments_api.check_health(get_services())
    return json_response(report.to_json(), 200 if report.healthy else 503)


@app.on_sqs_message(
    queue=_names.payment_queue, batch_size=PAYMENT_QUEUE.processor_batch_size, name=Handler.PAYMENT_PROCESSOR
)
def process_payment_messages(event: SQSEvent) -> dict[str, Any]:
    """Payment processor: process a batch from the payment queue, reporting failures per message."""
    return processor.process_message_batch(event.to_dict(), get_services())


@app.on_sqs_message(
    queue=_names.webhook_queue, batch_size=WEBHOOK_QUEUE.batch_size, name=Handler.WEBHOOK_DELIVERER
)
def deliver_webhooks(event: SQSEvent) -> dict[str, Any]:
    """Webhook deliverer: announced events become deliveries to their client's endpoints, each
    attempted when due and retried for days; failures reported per message."""
    from chalicelib import deliverer

    return deliverer.deliver_batch(event.to_dict(), get_services())


@app.on_dynamodb_record(
    # Placeholder for `chalice package`: the CDK stack points the event source at its table's stream.
    stream_arn=f"arn:aws:dynamodb:us-east-1:000000000000:table/{_names.payments_table}/stream/placeholder",
    batch_size=PAYMENT_NOTIFIER.batch_size,
    starting_position="TRIM_HORIZON",
    name=Handler.PAYMENT_NOTIFIER,
)
def announce_processed_payments(event: DynamoDBEvent) -> dict[str, Any]:
    """Payment notifier: publish each payment this region stored, from the table's stream."""
    return notifier.announce_processed_payments(event.to_dict(), get_services())


@app.on_sns_message(topic=_names.ops_alert_topic, name=Handler.FAILOVER_ORCHESTRATOR)
def orchestrate_failover(event: SNSEvent) -> None:
    """Failover orchestrator: act on CloudWatch alarms published to the ops-alert topic."""
    orchestrator.handle_ops_alert(event.message, get_services())


# Last: what this module built is frozen, and the collector runs again.
heap.freeze_long_lived()
