"""The merchants' client: idempotent retries, Retry-After, and a region choice that neither splits nor flaps."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

from payments_client import PaymentsClient, PaymentsUnavailable, RetryPolicy

PRIMARY = "https://primary.example/prod"
SECONDARY = "https://secondary.example/prod"
PAYMENT = {"transaction_id": "order-1", "customer_id": "c-1", "amount": "49.95", "currency": "USD"}


def refused() -> requests.ConnectionError:
    """What requests raises when nothing listens at the endpoint: the request was never sent."""
    never_connected = NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
    return requests.ConnectionError(MaxRetryError(None, "/", never_connected))  # type: ignore[arg-type]


@dataclass
class Answer:
    status_code: int
    headers: dict[str, str] = field(default_factory=dict)
    text: str = "{}"


@dataclass
class Sent:
    method: str
    url: str
    headers: dict[str, str]
    data: str | None
    at: float


class FakeApi:
    """Both regions' APIs: each URL prefix answers from its own script (exceptions are raised)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.sent: list[Sent] = []
        self.scripts: dict[str, list[Any]] = {PRIMARY: [], SECONDARY: []}
        self.health: dict[str, int] = {PRIMARY: 200, SECONDARY: 200}
        self.in_flight = 0
        self.most_in_flight = 0

    def request(self, method: str, url: str, **kwargs: Any) -> Answer:
        base = PRIMARY if url.startswith(PRIMARY) else SECONDARY
        if url.endswith("/health"):
            return Answer(self.health[base])
        self.sent.append(
            Sent(method, url, dict(kwargs.get("headers") or {}), kwargs.get("data"), self.clock())
        )
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            script = self.scripts[base]
            answer = script.pop(0) if script else Answer(201, text=json.dumps(PAYMENT))
            if callable(answer):  # something happens to the region as this request arrives
                answer = answer()
            if isinstance(answer, Exception):
                raise answer
            return answer
        finally:
            self.in_flight -= 1

    def regions(self) -> list[str]:
        return [PRIMARY if s.url.startswith(PRIMARY) else SECONDARY for s in self.sent]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def api(clock: Clock) -> FakeApi:
    return FakeApi(clock)


def client_of(api: FakeApi, clock: Clock, **policy: Any) -> PaymentsClient:
    return PaymentsClient(
        "key-of-merchant-0001",
        endpoints=[PRIMARY, SECONDARY],
        policy=RetryPolicy(**{"health_interval": 1e9, **policy}),
        session=api,
        clock=clock,
        sleep=clock.sleep,
        jitter=lambda: 1.0,
    )


def test_every_retry_of_a_post_sends_the_same_idempotency_key_and_body(api: FakeApi, clock: Clock) -> None:
    api.scripts[PRIMARY] = [requests.Timeout(), Answer(503, {"Retry-After": "1"})]
    client = client_of(api, clock, move_after_failures=10)

    answer = client.process(PAYMENT)

    assert answer.status == 201 and answer.attempts == 3
    keys = {s.headers["Idempotency-Key"] for s in api.sent}
    assert len(keys) == 1 and answer.idempotency_key in keys
    assert {s.data for s in api.sent} == {json.dumps(PAYMENT, separators=(",", ":"))}
    assert all(s.headers["x-api-key"] == "key-of-merchant-0001" for s in api.sent)


def test_the_callers_idempotency_key_is_used_and_each_call_gets_its_own_otherwise(
    api: FakeApi, clock: Clock
) -> None:
    client = client_of(api, clock)

    client.process(PAYMENT, idempotency_key="merchant-key-1")
    client.process(PAYMENT)
    client.process(PAYMENT)

    keys = [s.headers["Idempotency-Key"] for s in api.sent]
    assert keys[0] == "merchant-key-1" and len(set(keys)) == 3


def test_retry_after_is_honoured_up_to_the_cap_and_waits_are_capped_and_growing(
    api: FakeApi, clock: Clock
) -> None:
    api.scripts[PRIMARY] = [
        Answer(429, {"Retry-After": "3"}),
        Answer(429, {"Retry-After": "60"}),
        Answer(503),
        Answer(503),
        Answer(503),
    ]
    client = client_of(api, clock, move_after_failures=10, base_delay=0.5, max_delay=4.0)

    assert client.validate(PAYMENT).status == 201

    # 3 s as asked; 60 s capped at 4 s; then 0.5 * 2**n, capped at 4 s.
    assert clock.slept == [3.0, 4.0, 2.0, 4.0, 4.0]


def test_a_conflict_is_returned_at_once_and_an_in_progress_409_is_retried(api: FakeApi, clock: Clock) -> None:
    api.scripts[PRIMARY] = [Answer(409, {"Retry-After": "1"}), Answer(409, text='{"errors": []}')]
    client = client_of(api, clock)

    answer = client.process(PAYMENT)

    assert answer.status == 409 and answer.attempts == 2
    assert api.regions() == [PRIMARY, PRIMARY]  # an in-progress 409 is not a failing region


def test_a_call_that_never_gets_an_answer_raises_with_its_key_for_a_later_retry(
    api: FakeApi, clock: Clock
) -> None:
    api.scripts[PRIMARY] = [refused()] * 3
    api.scripts[SECONDARY] = [refused()] * 3
    client = client_of(api, clock, max_attempts=4)

    with pytest.raises(PaymentsUnavailable) as failed:
        client.process(PAYMENT, idempotency_key="k-9")

    assert failed.value.attempts == 4 and failed.value.idempotency_key == "k-9"


def test_it_moves_to_the_peer_when_the_region_stops_answering(api: FakeApi, clock: Clock) -> None:
    api.scripts[PRIMARY] = [refused(), refused()]
    client = client_of(api, clock, move_after_failures=2)

    answer = client.process(PAYMENT)

    assert answer.status == 201 and answer.endpoint == SECONDARY
    assert api.regions() == [PRIMARY, PRIMARY, SECONDARY]
    [move] = client.moves
    assert (move.from_endpoint, move.to_endpoint) == (PRIMARY, SECONDARY)
    assert "failed attempts" in move.reason


def test_it_moves_at_once_when_the_region_says_it_is_draining(api: FakeApi, clock: Clock) -> None:
    api.scripts[PRIMARY] = [Answer(503, {"Retry-After": "1", "X-Region-Draining": "true"})]
    client = client_of(api, clock)

    answer = client.process(PAYMENT)

    assert answer.endpoint == SECONDARY and clock.slept == []
    assert "draining" in client.moves[0].reason


def test_it_moves_when_the_regions_health_says_it_is_out_of_service(api: FakeApi, clock: Clock) -> None:
    api.health[PRIMARY] = 503
    client = client_of(api, clock, health_interval=10.0)

    answer = client.process(PAYMENT)

    assert answer.endpoint == SECONDARY and api.regions() == [SECONDARY]
    assert "/health" in client.moves[0].reason


def test_one_call_is_never_in_flight_in_two_regions_and_its_attempts_follow_one_another(
    api: FakeApi, clock: Clock
) -> None:
    api.scripts[PRIMARY] = [requests.Timeout(), requests.Timeout()]
    client = client_of(api, clock)

    client.process(PAYMENT)

    assert api.most_in_flight == 1
    assert [s.at for s in api.sent] == sorted(s.at for s in api.sent)


def test_it_does_not_flap_back_before_return_after_and_only_to_a_healthy_region(
    api: FakeApi, clock: Clock
) -> None:
    api.scripts[PRIMARY] = [refused(), refused()]
    client = client_of(api, clock, return_after=300.0, health_interval=5.0)
    client.process(PAYMENT)  # moves to the secondary

    clock.now += 100
    client.process(PAYMENT)  # too soon: stays, though the primary is healthy again
    api.health[PRIMARY] = 503
    clock.now += 300
    client.process(PAYMENT)  # late enough, but the primary's /health is not 200: stays
    api.health[PRIMARY] = 200
    clock.now += 10
    client.process(PAYMENT)  # back to the preferred region

    assert api.regions()[-3:] == [SECONDARY, SECONDARY, PRIMARY]
    assert [m.to_endpoint for m in client.moves] == [SECONDARY, PRIMARY]


def test_leaving_again_soon_after_returning_doubles_the_wait_before_the_next_return(
    api: FakeApi, clock: Clock
) -> None:
    client = client_of(api, clock, return_after=300.0, health_interval=5.0)
    api.scripts[PRIMARY] = [refused(), refused()]
    client.process(PAYMENT)
    clock.now += 301
    client.process(PAYMENT)  # returned
    api.scripts[PRIMARY] = [refused(), refused()]
    client.process(PAYMENT)  # left again at once
    clock.now += 301

    client.process(PAYMENT)

    assert client.endpoint == SECONDARY  # now it waits 600 s
    clock.now += 300
    client.process(PAYMENT)
    assert client.endpoint == PRIMARY


def test_with_a_domain_it_only_retries(clock: Clock) -> None:
    sent: list[str] = []

    class Session:
        def request(self, method: str, url: str, **_: Any) -> Answer:
            sent.append(url)
            return Answer(503) if len(sent) == 1 else Answer(202, text="{}")

    client = PaymentsClient(
        "key-of-merchant-0001", domain="pay.example.com", session=Session(), clock=clock, sleep=clock.sleep
    )

    assert client.validate(PAYMENT).status == 202
    assert sent == ["https://pay.example.com/validate"] * 2 and client.moves == []


def test_amounts_given_as_decimals_are_sent_as_exact_strings(api: FakeApi, clock: Clock) -> None:
    from decimal import Decimal

    client_of(api, clock).process({**PAYMENT, "amount": Decimal("0.10")})

    assert json.loads(api.sent[0].data or "")["amount"] == "0.10"


def test_with_both_regions_failing_it_does_not_flap_between_them(api: FakeApi, clock: Clock) -> None:
    api.scripts[PRIMARY] = [refused()] * 20
    api.scripts[SECONDARY] = [refused()] * 20
    api.health[PRIMARY] = 503
    client = client_of(api, clock, max_attempts=10, return_after=300.0)

    with pytest.raises(PaymentsUnavailable):
        client.process(PAYMENT)

    assert [m.to_endpoint for m in client.moves] == [SECONDARY]  # one move, then it stays


def test_it_goes_back_at_once_to_a_region_it_left_when_that_one_has_recovered(
    api: FakeApi, clock: Clock
) -> None:
    api.scripts[PRIMARY] = [refused()] * 2
    client = client_of(api, clock, return_after=300.0)
    client.process(PAYMENT)  # on the secondary now; the primary has recovered
    api.scripts[SECONDARY] = [refused()] * 2

    answer = client.process(PAYMENT)

    assert answer.endpoint == PRIMARY and [m.to_endpoint for m in client.moves] == [SECONDARY, PRIMARY]


def test_the_merchants_own_throttle_is_retried_where_it_is_and_never_moves_it(
    api: FakeApi, clock: Clock
) -> None:
    api.scripts[PRIMARY] = [Answer(429, {"Retry-After": "1"})] * 4
    client = client_of(api, clock, move_after_failures=2)

    answer = client.process(PAYMENT)

    assert answer.status == 201 and api.regions() == [PRIMARY] * 5
    assert client.moves == [] and all(waited >= 1.0 for waited in clock.slept)


def test_with_one_endpoint_a_drain_is_waited_out_instead_of_failing(clock: Clock) -> None:
    api = FakeApi(clock)
    draining = Answer(503, {"Retry-After": "2", "X-Region-Draining": "true", "Payment-Outcome": "none"})
    api.scripts[PRIMARY] = [draining] * 3
    client = PaymentsClient(
        "key-of-merchant-0001",
        endpoints=[PRIMARY],
        policy=RetryPolicy(base_delay=0.5, max_delay=4.0),
        session=api,
        clock=clock,
        sleep=clock.sleep,
        jitter=lambda: 1.0,
    )

    answer = client.process(PAYMENT)

    assert answer.status == 201 and answer.attempts == 4
    assert clock.slept == [2.0, 2.0, 2.0]  # Retry-After, and the backoff once it grows past it


@pytest.mark.parametrize(
    "cut_short", [requests.exceptions.ChunkedEncodingError(), requests.exceptions.ContentDecodingError()]
)
def test_an_answer_cut_short_is_retried_with_the_same_key_and_raised_with_it(
    api: FakeApi, clock: Clock, cut_short: requests.RequestException
) -> None:
    api.scripts[PRIMARY] = [cut_short] * 3
    client = client_of(api, clock, max_attempts=3)

    with pytest.raises(PaymentsUnavailable) as failed:
        client.process(PAYMENT, idempotency_key="k-cut")

    assert failed.value.idempotency_key == "k-cut" and failed.value.attempts == 3
    assert {s.headers["Idempotency-Key"] for s in api.sent} == {"k-cut"}


def test_after_an_unknown_outcome_it_stays_while_the_region_is_healthy(api: FakeApi, clock: Clock) -> None:
    # 503s that do not say nothing was stored, and a read timeout: the payment may be stored here.
    api.scripts[PRIMARY] = [Answer(503), requests.ReadTimeout(), Answer(503, {"Payment-Outcome": "unknown"})]
    client = client_of(api, clock, move_after_failures=1)

    answer = client.process(PAYMENT)

    assert answer.status == 201 and api.regions() == [PRIMARY] * 4 and client.moves == []


def test_after_an_unknown_outcome_it_moves_once_the_region_is_out_but_not_within_the_replication_window(
    api: FakeApi, clock: Clock
) -> None:
    def times_out_and_goes_dark() -> Exception:
        api.health[PRIMARY] = 503  # the region is lost while the request is in flight
        return requests.ReadTimeout()

    api.scripts[PRIMARY] = [times_out_and_goes_dark]
    client = client_of(api, clock, replication_window=2.0, base_delay=0.1)
    began = clock.now

    answer = client.process(PAYMENT)

    assert answer.endpoint == SECONDARY and api.regions() == [PRIMARY, SECONDARY]
    assert api.sent[1].at - began >= 2.0
    assert "is not 200 after ReadTimeout" in client.moves[0].reason


def test_a_refusal_after_an_unknown_outcome_moves_no_sooner_than_the_replication_window(
    api: FakeApi, clock: Clock
) -> None:
    # Found by the checker (make chaos): the answer is lost, then the region goes dark and refuses
    # connections; two refusals move the client, which must still wait for the first attempt's
    # payment to reach the peer, whose claim then answers instead of making a second payment.
    def lost_answer_then_dark() -> Exception:
        api.scripts[PRIMARY] = [refused(), refused(), refused()]
        return requests.ConnectionError("Connection aborted")

    api.scripts[PRIMARY] = [lost_answer_then_dark]
    client = client_of(api, clock, replication_window=2.0, base_delay=0.01, move_after_failures=2)
    began = clock.now

    answer = client.process(PAYMENT)

    assert answer.endpoint == SECONDARY and api.regions() == [PRIMARY, PRIMARY, PRIMARY, SECONDARY]
    assert api.sent[-1].at - began >= 2.0


@pytest.mark.parametrize(("consistency", "waits"), [("strong", False), ("eventual", True)])
def test_a_strongly_consistent_deployment_has_no_replication_window_to_wait_out(
    api: FakeApi, clock: Clock, consistency: str, waits: bool
) -> None:
    # Under multi-Region strong consistency a claim is acknowledged only once the peer has it, so
    # the retry of an attempt whose answer was lost may go to the peer at once; the deployment
    # says which mode it runs in on every answer.
    def times_out_and_goes_dark() -> Exception:
        api.health[PRIMARY] = 503
        return requests.ReadTimeout()

    said = {"Payment-Consistency": consistency}
    api.scripts[PRIMARY] = [Answer(201, said, json.dumps(PAYMENT)), times_out_and_goes_dark]
    client = client_of(api, clock, replication_window=2.0, base_delay=0.1)
    client.process(PAYMENT)
    began = clock.now

    answer = client.process({**PAYMENT, "transaction_id": "order-2"})

    assert answer.endpoint == SECONDARY and api.regions() == [PRIMARY, PRIMARY, SECONDARY]
    assert (api.sent[-1].at - began >= 2.0) is waits


def test_a_5xx_that_stored_nothing_counts_towards_moving(api: FakeApi, clock: Clock) -> None:
    api.scripts[PRIMARY] = [Answer(503, {"Payment-Outcome": "none"})] * 2
    client = client_of(api, clock, move_after_failures=2)

    answer = client.process(PAYMENT)

    assert answer.endpoint == SECONDARY and api.regions() == [PRIMARY, PRIMARY, SECONDARY]
