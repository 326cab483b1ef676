"""How each Lambda function is sized and retried: memory, timeout, retries, reserved concurrency.

Only the stacks read these (the functions never need their own size), so they are not shipped in
the functions' package; the regional stack hands them to the constructs that build and permit
the functions.
"""

from __future__ import annotations

from typing import NamedTuple

from chalicelib.names import WEBHOOK_QUEUE, Handler

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
    # A batch's deliveries run side by side, each at most 5 s: a minute is ample. Its event source
    # caps its concurrency, so a slow merchant endpoint holds a few executions, not the account's.
    Handler.WEBHOOK_DELIVERER: FunctionSettings(
        memory_mb=256, timeout_seconds=WEBHOOK_QUEUE.function_timeout_seconds
    ),
    Handler.PAYMENT_CANARY: FunctionSettings(
        memory_mb=256,
        timeout_seconds=30,
        async_retries=0,
        reserved_concurrency=2,
        on_failure_destination=True,
    ),
}
