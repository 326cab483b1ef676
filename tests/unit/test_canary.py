"""The observer's canary: a real payment through the peer's API and its read, judged from outside."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.canary import CANARY_CUSTOMER, CANARY_PREFIX, probe

URL = "https://peer.example/prod"


class PeerApi:
    """The peer's API as HTTP sees it: a store of payments, or a failure we choose."""

    def __init__(self, process_status: int = 201, read_status: int = 200, lose_writes: bool = False) -> None:
        self.process_status, self.read_status, self.lose_writes = process_status, read_status, lose_writes
        self.stored: dict[str, Any] = {}
        self.answer_headers: dict[str, str] = {}
        self.calls: list[tuple[str, str, dict[str, str]]] = []

    def __call__(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, timeout: float
    ) -> tuple[int, dict[str, str], Any]:
        self.calls.append((method, url, headers))
        if method == "POST":
            payment = json.loads(body or b"{}")
            if self.process_status in (200, 201) and not self.lose_writes:
                self.stored[payment["transaction_id"]] = payment
            return self.process_status, dict(self.answer_headers), payment
        transaction_id = url.rsplit("/", 1)[1]
        found = self.stored.get(transaction_id)
        return (self.read_status, {}, found) if found else (404, {}, {"errors": []})


def test_a_payment_that_is_processed_and_read_back_passes_as_a_synthetic_customer() -> None:
    peer = PeerApi()

    result = probe("us-east-1", URL, "key-1", http=peer)

    assert result.success and result.failed_step is None
    [payment] = peer.stored.values()
    assert payment["customer_id"] == CANARY_CUSTOMER and payment["transaction_id"].startswith(CANARY_PREFIX)
    assert [(m, u.replace(URL, "")) for m, u, _ in peer.calls] == [
        ("POST", "/process"),
        ("GET", f"/payments/{payment['transaction_id']}"),
    ]
    assert all(h["x-api-key"] == "key-1" for _, _, h in peer.calls)


def test_a_gray_failure_fails_the_canary_though_health_would_pass() -> None:
    assert probe("us-east-1", URL, "k", http=PeerApi(process_status=503)).failed_step == "process"
    assert probe("us-east-1", URL, "k", http=PeerApi(process_status=0)).status == 0
    # Acknowledged but not readable back: the payment path is broken all the same.
    assert probe("us-east-1", URL, "k", http=PeerApi(lose_writes=True)).failed_step == "read"


def test_a_region_draining_for_a_switchover_is_not_a_failing_region() -> None:
    draining = PeerApi(process_status=503)
    draining.answer_headers = {"x-region-draining": "true", "retry-after": "1"}

    result = probe("us-east-1", URL, "k", http=draining)

    assert result.success and result.draining
    # Any other 503 is a failure: only the region's own drain header says otherwise.
    assert not probe("us-east-1", URL, "k", http=PeerApi(process_status=503)).success
