"""``payments_client.verify_webhook``: what a merchant's receiver accepts, checked with the library's own signatures."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from payments_client import InvalidWebhook, verify_webhook

OLD, NEW = ("whsec_" + base64.b64encode(bytes([n]) * 24).decode() for n in (1, 2))
BODY = json.dumps({"id": "evt_1", "event": "payment.processed", "client": "m", "payment": {"amount": "1.00"}})


def headers(*secrets: str, at: datetime | None = None, signature: str | None = None) -> dict[str, str]:
    when = at or datetime.now(UTC)
    return {
        "Webhook-Id": "evt_1",
        "Webhook-Timestamp": str(int(when.timestamp())),
        "Webhook-Signature": signature or " ".join(Webhook(s).sign("evt_1", when, BODY) for s in secrets),
    }


def test_a_delivery_signed_with_the_endpoints_secret_gives_its_event() -> None:
    assert verify_webhook(headers(NEW), BODY.encode(), NEW)["id"] == "evt_1"


def test_during_a_rotation_either_secret_verifies_a_delivery_signed_with_both() -> None:
    both = headers(OLD, NEW)

    assert verify_webhook(both, BODY, [OLD])["event"] == "payment.processed"
    assert verify_webhook(both, BODY, [NEW])["event"] == "payment.processed"
    assert verify_webhook(headers(NEW), BODY, [OLD, NEW])["id"] == "evt_1"


@pytest.mark.parametrize(
    ("case", "body"),
    [
        ("signed with a secret the receiver no longer holds", BODY),
        ("the body changed on the way", BODY.replace("1.00", "9.00")),
        ("replayed six minutes later", BODY),
        ("dated six minutes ahead", BODY),
        ("not a signature", BODY),
        ("no signature at all", BODY),
    ],
)
def test_anything_the_service_did_not_sign_just_now_is_refused(case: str, body: str) -> None:
    # Built when the test runs: a timestamp made at collection would age before it is checked.
    now = datetime.now(UTC)
    given = {
        "signed with a secret the receiver no longer holds": lambda: headers(OLD),
        "the body changed on the way": lambda: headers(NEW),
        "replayed six minutes later": lambda: headers(NEW, at=now - timedelta(minutes=6)),
        "dated six minutes ahead": lambda: headers(NEW, at=now + timedelta(minutes=6)),
        "not a signature": lambda: headers(signature="not a signature"),
        "no signature at all": lambda: {"webhook-id": "evt_1"},
    }[case]()

    with pytest.raises(InvalidWebhook):
        verify_webhook(given, body, [NEW])


def test_no_secret_verifies_nothing() -> None:
    with pytest.raises(InvalidWebhook, match="no signing secret"):
        verify_webhook(headers(NEW), BODY, [])
