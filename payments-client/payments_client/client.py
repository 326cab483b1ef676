"""The payment API client: idempotent retries and the choice of region (see the package docstring)."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import quote

import requests
from urllib3.exceptions import ConnectTimeoutError

API_KEY_HEADER = "x-api-key"
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
# What a region answers while it drains for a planned switchover (and what tells us to move).
REGION_DRAINING_HEADER = "X-Region-Draining"
HEALTH_PATH = "/health"
# On a 5xx: "none" when the API stored nothing (the payment may go to the other region at once);
# anything else, or no header at all (a gateway's own 502/504), means the outcome is unknown.
PAYMENT_OUTCOME_HEADER = "Payment-Outcome"
NOTHING_COMMITTED = "none"
# On every answer: the payments table's consistency mode. Under "strong" (multi-Region strong
# consistency) a payment is acknowledged only once the peer has it, and two regions' writes of one
# payment meet: a retry in the other region is safe at once, whatever the last attempt's outcome.
CONSISTENCY_HEADER = "Payment-Consistency"
STRONG_CONSISTENCY = "strong"
# The merchant's own rate limit: retried where it is, never a reason to change region.
THROTTLED_STATUS = 429
RETRYABLE_STATUSES = frozenset({THROTTLED_STATUS, 500, 502, 503, 504})
# A 409 is retried only when the API says when (``Retry-After``), as an API holding keys in progress
# once did; today's binds a key after its work and never says it. A 409 without it is a
# conflicting reuse of the transaction id.
IN_PROGRESS_STATUS = 409
# Every failure of the transport (a body cut short, a garbled one, too): retried with the same
# Idempotency-Key and, once the attempts are spent, raised with it in PaymentsUnavailable.
TRANSPORT_ERRORS: tuple[type[requests.RequestException], ...] = (requests.RequestException,)
# However often it has to leave the preferred region, it tries it again at least this often.
MAX_RETURN_AFTER_SECONDS = 3600.0


class HttpResponse(Protocol):
    """What the client reads of an HTTP response (``requests.Response`` has it)."""

    status_code: int
    headers: Mapping[str, str]
    text: str


class HttpSession(Protocol):
    """What the client needs of an HTTP session (``requests.Session`` has it)."""

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = ...,
        data: str | None = ...,
        timeout: float | None = ...,
    ) -> Any: ...


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one call tries, and when the client changes region.

    ``max_attempts`` attempts in all, ``timeout`` seconds each; between them a jittered wait of up
    to ``base_delay * 2**n`` seconds, capped at ``max_delay`` (a ``Retry-After`` longer than the
    wait is honoured up to the cap). ``move_after_failures`` failed attempts in a row in one region
    move the client to the other; its ``/health`` is checked at most every ``health_interval``
    seconds; it returns to the preferred region no sooner than ``return_after`` seconds after
    leaving it.

    Only attempts known to have stored nothing count towards a move: a connection that was never
    made, and a 5xx saying ``Payment-Outcome: none``. After an attempt whose outcome is unknown (a
    timeout or a connection lost after the request was sent, any other 5xx), it stays and
    retries where it was while that region's ``/health`` answers 200; once it does not, it moves,
    but no sooner than ``replication_window`` seconds after that attempt began, so that a payment
    the attempt did store has reached the other region, whose claim then answers the retry. The
    default covers the payments table's replication in the default mode (typically under a
    second; ``bench/results.md``). A deployment whose answers say ``Payment-Consistency: strong``
    has no such window, and the client then moves without waiting it out. A request in flight
    holds nothing in the API, so no retry waits on one.
    """

    max_attempts: int = 8
    timeout: float = 5.0
    base_delay: float = 0.2
    max_delay: float = 5.0
    move_after_failures: int = 2
    health_interval: float = 10.0
    health_timeout: float = 2.0
    return_after: float = 300.0
    replication_window: float = 2.0


@dataclass(frozen=True)
class ApiResponse:
    """The API's final answer to one call, after any retries."""

    status: int
    body: Any
    headers: Mapping[str, str]
    endpoint: str
    attempts: int
    idempotency_key: str | None = None

    @property
    def ok(self) -> bool:
        """A 2xx answer: the payment was accepted (202), created (201) or already there (200)."""
        return 200 <= self.status < 300


@dataclass(frozen=True)
class Move:
    """One change of region: when (the client's clock), from where, to where, and why."""

    at: float
    from_endpoint: str
    to_endpoint: str
    reason: str


class PaymentsUnavailable(Exception):
    """Every attempt of a call failed: the caller may retry later with the same Idempotency-Key."""

    def __init__(self, method: str, path: str, attempts: int, last_error: str, idempotency_key: str | None):
        super().__init__(f"{method} {path}: no answer after {attempts} attempts ({last_error})")
        self.attempts = attempts
        self.last_error = last_error
        self.idempotency_key = idempotency_key


@dataclass
class _Regions:
    """Which endpoint calls go to, and what it takes to change that (guarded by ``lock``)."""

    endpoints: tuple[str, ...]
    current: int = 0
    failures: int = 0
    returned_at: float | None = None
    # When each region was last left (it failed, drained or said it was out of service): going
    # back to it soon needs its /health; the preferred region's entry also times the return.
    left_at: dict[int, float] = field(default_factory=dict)
    return_after: float = 0.0
    checked_at: dict[int, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _json_default(value: Any) -> str:
    # Amounts travel as strings: a Decimal is written exactly, never through a float.
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


class PaymentsClient:
    """A merchant's client of the payment API: one key, a domain or the two regional endpoints.

    Thread-safe: threads share the choice of region; each call's attempts stay sequential.
    """

    def __init__(
        self,
        api_key: str,
        *,
        endpoints: Sequence[str] = (),
        domain: str | None = None,
        policy: RetryPolicy = RetryPolicy(),
        session: HttpSession | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        """``endpoints``: the regional base URLs (``https://{id}.execute-api.{region}.amazonaws.com/prod``),
        the preferred region first; or ``domain``: the name Route 53's failover record answers for."""
        if bool(endpoints) == bool(domain):
            raise ValueError("give either endpoints (one per region) or a domain, not both")
        urls = tuple(url.rstrip("/") for url in endpoints) or (f"https://{domain}",)
        self._api_key = api_key
        self._policy = policy
        self._session: HttpSession = session if session is not None else requests.Session()
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter
        self._regions = _Regions(endpoints=urls, return_after=policy.return_after)
        # Whether the deployment last said its payments table is strongly consistent (no
        # replication window to wait out before a retry elsewhere); until it says so, it is not.
        self._strong = False
        self.moves: list[Move] = []

    @property
    def endpoint(self) -> str:
        """Where the next call goes."""
        return self._regions.endpoints[self._regions.current]

    def validate(self, payment: Mapping[str, Any], *, idempotency_key: str | None = None) -> ApiResponse:
        """``POST /validate``: 202 when the payment is accepted and queued, 422 naming what is wrong."""
        return self._call("POST", "/validate", payment, idempotency_key or str(uuid.uuid4()))

    def process(self, payment: Mapping[str, Any], *, idempotency_key: str | None = None) -> ApiResponse:
        """``POST /process``: 201 created, 200 already stored (the same payment), 409 a different one."""
        return self._call("POST", "/process", payment, idempotency_key or str(uuid.uuid4()))

    def get_payment(self, transaction_id: str) -> ApiResponse:
        """``GET /payments/{transaction_id}``: 200 with the payment (and any rejections), or 404."""
        return self._call("GET", f"/payments/{quote(transaction_id, safe='')}")

    def customer_payments(
        self, customer_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> ApiResponse:
        """``GET /customers/{customer_id}/payments``: a page, newest first, and the next page's cursor."""
        query = "&".join(
            f"{k}={quote(str(v), safe='')}" for k, v in (("limit", limit), ("cursor", cursor)) if v
        )
        path = f"/customers/{quote(customer_id, safe='')}/payments" + (f"?{query}" if query else "")
        return self._call("GET", path)

    def _call(
        self, method: str, path: str, body: Any = None, idempotency_key: str | None = None
    ) -> ApiResponse:
        headers = {API_KEY_HEADER: self._api_key}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body, default=_json_default, separators=(",", ":"))
        if idempotency_key is not None:
            headers[IDEMPOTENCY_KEY_HEADER] = idempotency_key
        last_error = "no attempt made"
        # Where and when this call last sent an attempt whose outcome is unknown: until the
        # replication window since then has passed, no attempt of it goes to another region,
        # whatever moved the client (the found bug: a refusal after a lost answer moved at once).
        uncertain: tuple[int, float] | None = None
        for attempt in range(1, self._policy.max_attempts + 1):
            index = self._choose_region()
            if uncertain is not None and index != uncertain[0] and not self._strong:
                wait = uncertain[1] + self._policy.replication_window - self._clock()
                if wait > 0:
                    self._sleep(wait)
            endpoint = self._regions.endpoints[index]
            started = self._clock()
            try:
                response = self._session.request(
                    method, endpoint + path, headers=headers, data=data, timeout=self._policy.timeout
                )
            except TRANSPORT_ERRORS as error:
                # Every failure of the transport, a body cut short included, is retried with the
                # same Idempotency-Key, and raised with it once the attempts are spent.
                last_error = f"{type(error).__name__} from {endpoint}"
                if _never_sent(error):
                    self._failed(index, last_error)
                else:
                    uncertain = (index, started)
                    self._outcome_unknown(index, last_error)
                self._wait(attempt, None)
                continue
            status = int(response.status_code)
            self._learn_consistency(response.headers)
            retry_after = response.headers.get("Retry-After")
            said = verdict(status, response.headers, endpoints=len(self._regions.endpoints))
            if said is not Verdict.FINAL:
                last_error = f"HTTP {status} from {endpoint}"
                if said is Verdict.MOVE_NOW:
                    self._move_away(index, f"{endpoint} is draining")
                    continue
                if said is Verdict.NOTHING_STORED:
                    self._failed(index, last_error)
                elif said is Verdict.UNKNOWN:
                    uncertain = (index, started)
                    self._outcome_unknown(index, last_error)
                self._wait(attempt, retry_after)
                continue
            self._succeeded(index)
            return ApiResponse(
                status=status,
                body=_body(response),
                headers=dict(response.headers),
                endpoint=endpoint,
                attempts=attempt,
                idempotency_key=idempotency_key,
            )
        raise PaymentsUnavailable(method, path, self._policy.max_attempts, last_error, idempotency_key)

    def _wait(self, attempt: int, retry_after: str | None) -> None:
        if attempt >= self._policy.max_attempts:
            return
        delay = self._jitter() * min(self._policy.max_delay, self._policy.base_delay * 2 ** (attempt - 1))
        if retry_after is not None:
            try:
                delay = max(delay, min(float(retry_after), self._policy.max_delay))
            except ValueError:
                pass  # an HTTP date: the jittered wait stands
        self._sleep(delay)

    def _healthy(self, index: int) -> bool:
        try:
            response = self._session.request(
                "GET", self._regions.endpoints[index] + HEALTH_PATH, timeout=self._policy.health_timeout
            )
        except (requests.ConnectionError, requests.Timeout):
            return False
        self._learn_consistency(response.headers)
        return int(response.status_code) == 200

    def _learn_consistency(self, headers: Mapping[str, str]) -> None:
        """Remember what the deployment says of its consistency (a gateway's own answer says nothing)."""
        said = headers.get(CONSISTENCY_HEADER)
        if said is not None:
            self._strong = said == STRONG_CONSISTENCY

    def _choose_region(self) -> int:
        """The region for the next attempt: back to the preferred one, or away from a failing one."""
        regions = self._regions
        if len(regions.endpoints) < 2:
            return 0
        now = self._clock()
        with regions.lock:
            current = regions.current
            returning = (
                current != 0
                and 0 in regions.left_at
                and now - regions.left_at[0] >= regions.return_after
                and now - regions.checked_at.get(0, float("-inf")) >= self._policy.health_interval
            )
            checking = (
                not returning
                and now - regions.checked_at.get(current, float("-inf")) >= self._policy.health_interval
            )
            if returning:
                regions.checked_at[0] = now
            elif checking:
                regions.checked_at[current] = now
        if returning and self._healthy(0):
            with regions.lock:
                if regions.current == current:
                    self._switch(0, f"{regions.endpoints[0]} is healthy again")
                    regions.returned_at = now
        elif checking and not self._healthy(current):
            other = 1 - current
            if self._healthy(other):
                self._move_away(current, f"{regions.endpoints[current]}{HEALTH_PATH} is not 200")
        return regions.current

    def _failed(self, index: int, reason: str) -> None:
        regions = self._regions
        with regions.lock:
            if regions.current != index:
                return
            regions.failures += 1
            failures = regions.failures
            other = 1 - index
            recently_left = self._clock() - regions.left_at.get(other, float("-inf")) < regions.return_after
        if failures < self._policy.move_after_failures or len(regions.endpoints) < 2:
            return
        # Both failing: going back to the region it just left would only flap between them, so it
        # goes back only if that region's /health says it has recovered.
        if recently_left and not self._healthy(other):
            return
        self._move_away(index, f"{failures} failed attempts in a row ({reason})")

    def _outcome_unknown(self, index: int, reason: str) -> None:
        """After an attempt that may have stored the payment: stay while the region is healthy.

        A region whose ``/health`` fails is out: the client moves; the call's next attempt waits
        out the replication window since the uncertain attempt began (``_call``).
        """
        if len(self._regions.endpoints) < 2 or self._regions.current != index or self._healthy(index):
            return
        self._move_away(index, f"{self._regions.endpoints[index]}{HEALTH_PATH} is not 200 after {reason}")

    def _succeeded(self, index: int) -> None:
        with self._regions.lock:
            if self._regions.current == index:
                self._regions.failures = 0

    def _move_away(self, index: int, reason: str) -> None:
        regions = self._regions
        if len(regions.endpoints) < 2:
            return
        with regions.lock:
            if regions.current == index:
                regions.left_at[index] = self._clock()
                self._switch(1 - index, reason)

    def _switch(self, to: int, reason: str) -> None:
        """Change region (the caller holds the lock)."""
        regions = self._regions
        now = self._clock()
        # Leaving the preferred region soon after coming back: wait twice as long next time.
        if (
            regions.current == 0
            and regions.returned_at is not None
            and now - regions.returned_at < regions.return_after
        ):
            regions.return_after = min(regions.return_after * 2, MAX_RETURN_AFTER_SECONDS)
        self.moves.append(Move(now, regions.endpoints[regions.current], regions.endpoints[to], reason))
        regions.current, regions.failures = to, 0
        regions.checked_at[to] = now


class Verdict(StrEnum):
    """What one answer of the API tells the client to do next."""

    FINAL = "final"  # 2xx, or a 4xx about the request itself: returned to the caller
    MOVE_NOW = "move now"  # a planned drain, with another region to go to
    NOTHING_STORED = "nothing stored"  # a failure that stored nothing: counts towards moving
    UNKNOWN = "unknown"  # a failure that may have stored the payment: retried here while healthy
    WAIT_HERE = "wait here"  # the merchant's own throttle, a drain with nowhere else to go


def verdict(status: int, headers: Mapping[str, str], *, endpoints: int) -> Verdict:
    """What an answer of ``status`` with ``headers`` means to a client holding ``endpoints`` endpoints."""
    if status not in RETRYABLE_STATUSES and not (status == IN_PROGRESS_STATUS and "Retry-After" in headers):
        return Verdict.FINAL
    if headers.get(REGION_DRAINING_HEADER):
        return Verdict.MOVE_NOW if endpoints > 1 else Verdict.WAIT_HERE
    if status in (THROTTLED_STATUS, IN_PROGRESS_STATUS):
        return Verdict.WAIT_HERE
    return (
        Verdict.NOTHING_STORED
        if headers.get(PAYMENT_OUTCOME_HEADER) == NOTHING_COMMITTED
        else Verdict.UNKNOWN
    )


def _never_sent(error: requests.RequestException) -> bool:
    """Whether the request never reached the API (no connection was made): nothing was stored."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    if not isinstance(error, requests.ConnectionError) or not error.args:
        return False
    reason = getattr(error.args[0], "reason", error.args[0])  # urllib3's MaxRetryError wraps it
    return isinstance(reason, ConnectTimeoutError)  # NewConnectionError (refused, no DNS) is one


def _body(response: HttpResponse) -> Any:
    try:
        return json.loads(response.text) if response.text else None
    except ValueError:
        return {"raw": response.text}
