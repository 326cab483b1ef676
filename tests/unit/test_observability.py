"""Logs never carry a card number, even when one is passed to a log call by mistake."""

from __future__ import annotations

from chalicelib.observability import logger
from tests.conftest import CapturedLogs


def test_a_card_number_logged_by_mistake_is_redacted(payment_logs: CapturedLogs) -> None:
    logger.info("customer sent 4111 1111 1111 1111", extra={"detail": {"pan": "5555555555554444"}})

    [line] = payment_logs.lines()
    assert "4111" not in line and "5555555555554444" not in line
    assert "[REDACTED-PAN]" in line
