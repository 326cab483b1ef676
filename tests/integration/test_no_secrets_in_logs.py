"""Card numbers, API keys and idempotency keys sent anywhere in a request never reach a log line.

The whole pipeline runs (API, queue, processor, stream, notifier, both regions' replication)
with card-like data in every place a client can put it; then every line every process wrote is
scanned, and so is every response body.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import requests

from chalicelib.cards import contains_pan
from localenv.environment import LocalEnvironment
from tests.integration.conftest import PRIMARY, SECONDARY, eventually

pytestmark = pytest.mark.integration

PANS = ["4111111111111111", "5500 0000 0000 0004", "3782-822463-10005", "6011000990139424"]
SECRET_HEADERS = {"Idempotency-Key": "idem-secret-7f3a9c"}


def test_no_card_number_or_secret_in_any_log_line_or_response(environment: LocalEnvironment) -> None:
    api = environment.api_url(PRIMARY)
    headers = {"Content-Type": "application/json", "x-api-key": environment.api_key}
    good = {"transaction_id": "scan-ok-1", "customer_id": "cust-scan", "amount": "10.00", "currency": "USD"}
    bodies = [
        {**good, "description": f"card {PANS[0]}"},
        {**good, "metadata": {"card": PANS[1]}},
        {**good, "transaction_id": PANS[3]},
        {**good, PANS[2]: "x"},
        {**good, "amount": PANS[0]},
        f'{{"transaction_id": "t", "amount": {PANS[0]}, "currency": "USD", "customer_id": "c"',
        f"not json {PANS[1]}",
    ]
    responses = []
    for body in bodies:
        data = body if isinstance(body, str) else json.dumps(body)
        for path in ("/validate", "/process"):
            responses.append(requests.post(api + path, data=data, headers=headers, timeout=10))
    responses.append(
        requests.post(
            api + "/validate",
            data=json.dumps(good),
            timeout=10,
            headers={**headers, **SECRET_HEADERS, "X-Correlation-Id": PANS[3]},
        )
    )
    responses.append(requests.get(api + f"/payments/{PANS[0]}", headers=headers, timeout=10))
    responses.append(requests.get(api + f"/customers/{PANS[3]}/payments", headers=headers, timeout=10))
    # The accepted payment travels on through the queue, the processor, the stream and replication.
    eventually(
        lambda: (
            "scan-ok-1" in environment.log_of(SECONDARY, "events")
            or "scan-ok-1" in environment.log_of(PRIMARY, "events")
        )
    )
    time.sleep(2)

    assert all(r.status_code < 500 for r in responses)
    assert [r.status_code for r in responses[:2]] == [422, 422]
    for response in responses:
        assert not contains_pan(response.text), response.text
    lines = [
        line
        for path in sorted(Path(environment.log_dir or ".").glob("*.log"))
        for line in path.read_text().splitlines()
    ]
    assert len(lines) > 20
    assert [line for line in lines if leaks_a_secret(line, environment.api_key)] == []


def leaks_a_secret(line: str, api_key: str) -> bool:
    """Whether ``line`` holds one of the card numbers sent (with or without separators) or a key."""
    digits_only = re.sub(r"[ -]", "", line)
    return (
        any(re.sub(r"[ -]", "", pan) in digits_only for pan in PANS)
        or api_key in line
        or SECRET_HEADERS["Idempotency-Key"] in line
    )
