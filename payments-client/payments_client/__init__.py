"""The Python client merchants use to call the payment API: one key, both regions, safe retries.

    from payments_client import PaymentsClient

    client = PaymentsClient(
        api_key=os.environ["PAYMENTS_API_KEY"],
        endpoints=["https://abc.execute-api.us-east-1.amazonaws.com/prod",
                   "https://def.execute-api.us-east-2.amazonaws.com/prod"],
    )
    answer = client.process({"transaction_id": "order-1", "customer_id": "c-1",
                             "amount": "49.95", "currency": "USD"})
    if answer.status in (200, 201):
        ...

What it does:
- Every POST carries an ``Idempotency-Key`` (the caller's, or a UUID it generates), and every
  retry of that call sends the same key and the same body.
- It retries every transport error (a body cut short too), timeouts, 429, 500, 502, 503 and 504,
  with capped, jittered exponential backoff; a ``Retry-After`` the API sends is
  honoured (never waited on beyond the cap). A 429 is your own rate limit: retried where it is,
  never a reason to change region.
- With two regional endpoints (the first is the preferred one) it moves to the other region
  when the current one says it is out of service (a 503 with ``X-Region-Draining``, or its
  ``/health`` answering 503 when checked, at most every ``health_interval`` seconds) or stops
  answering: ``move_after_failures`` failed attempts in a row of those known to have stored
  nothing (a connection never made, a 5xx with ``Payment-Outcome: none``). After an attempt
  whose outcome is unknown (a timeout, a connection lost after sending, any other 5xx) it retries
  where it was while that region's ``/health`` answers 200, and moves only once it does not; no
  attempt of that call goes to the other region sooner than ``replication_window`` seconds after
  that attempt began, whatever moved the client. It does not flap: it returns to
  the preferred region only after ``return_after`` seconds and only while that region's
  ``/health`` answers 200, and each time it has to leave again soon after returning, it waits
  twice as long before the next return. One call's attempts are made one after another, so one
  payment is never in flight in two regions at once. With a domain (Route 53's failover record),
  DNS moves it and it only retries; a draining region is then waited out (``Retry-After``).
- It raises :class:`PaymentsUnavailable` only when every attempt of a call failed; any other
  answer (2xx, and 4xx such as 409, 422) is returned as an :class:`ApiResponse`.

What it guarantees, by the payments table's mode:
- **Default (eventually consistent global tables).** A payment you were told succeeded (200/201
  from ``/process``, 202 from ``/validate``) is stored exactly once in the region that answered,
  and a retry of the same call in the same region never makes a second payment. A retry that
  moves to the peer region within the replication window (typically under a second) *after an
  attempt whose outcome is unknown* (a timeout, a dropped connection after the request was sent)
  could make a second payment of the same ``transaction_id`` in the peer, which is why the
  client moves after such an attempt only once the region is out and the replication window has
  passed (the peer's claim then answers with the first payment). A connection that was refused,
  or a 5xx saying ``Payment-Outcome: none``, stored nothing.
- **Strong (multi-Region strong consistency).** The claim on a ``transaction_id`` holds across
  regions: any retry, in either region, returns the one payment (200) or a 409; an acknowledged
  payment is in both regions before the answer reaches you. The deployment says so on every
  answer (``Payment-Consistency: strong``), and the client then has no replication window to
  wait out: after an attempt of unknown outcome it moves as soon as the region is out.

Webhooks: :func:`verify_webhook` checks a delivery's Standard Webhooks signature with the
endpoint's secret (or its secrets, while one is rotated) and returns the event; deduplicate on its
``id``, the ``webhook-id`` header, which every retry and replay of one event carries.
"""

from payments_client.client import ApiResponse, Move, PaymentsClient, PaymentsUnavailable, RetryPolicy
from payments_client.webhooks import InvalidWebhook, verify_webhook

__all__ = [
    "ApiResponse",
    "InvalidWebhook",
    "Move",
    "PaymentsClient",
    "PaymentsUnavailable",
    "RetryPolicy",
    "verify_webhook",
]
