"""A webhook replay's rules, without AWS: the range a request may ask for, the job, which replay wins."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.webhook_replay import (
    MAX_REPLAY_MS,
    ReplayJob,
    is_replay,
    new_replay_id,
    superseded,
    validate_replay,
)

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC).timestamp()


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def test_a_range_is_from_its_first_moment_up_to_its_end_and_never_past_now() -> None:
    asked, errors = validate_replay(
        {"from": "2026-12-01T00:00:00Z", "to": "2026-12-02T00:00:00+01:00"}, now=NOW
    )
    assert errors == [] and asked is not None
    assert (asked.since, asked.until) == (ms("2026-12-01T00:00:00Z"), ms("2026-12-01T23:00:00Z"))

    # Events after now arrive as they happen; a range reaching past now stops at it.
    to_now, _ = validate_replay({"from": "2026-12-05T11:00:00Z", "to": "2027-01-01T00:00:00Z"}, now=NOW)
    left_out, _ = validate_replay({"from": "2026-12-05T11:00:00Z"}, now=NOW)
    assert to_now is not None and left_out is not None
    assert to_now.until == left_out.until == int(NOW * 1000)


def test_a_range_starting_after_now_is_refused() -> None:
    asked, errors = validate_replay({"from": "2026-12-06T00:00:00Z"}, now=NOW)
    assert asked is None and [e.field for e in errors] == ["from"]


@given(span=st.integers(min_value=1, max_value=2 * MAX_REPLAY_MS))
def test_a_range_is_at_most_the_longest_replay(span: int) -> None:
    until = int(NOW * 1000) - 1000
    body = {
        "from": datetime.fromtimestamp((until - span) / 1000, UTC).isoformat(),
        "to": datetime.fromtimestamp(until / 1000, UTC).isoformat(),
    }
    asked, errors = validate_replay(body, now=NOW)
    if span <= MAX_REPLAY_MS:
        assert asked is not None and asked.until - asked.since == span
    else:
        assert asked is None and [e.field for e in errors] == ["to"]


def test_a_later_replay_supersedes_an_earlier_one_and_never_the_reverse() -> None:
    earlier, later = new_replay_id(NOW), new_replay_id(NOW + 0.001)

    assert superseded(earlier, later)
    assert not superseded(later, earlier)
    assert not superseded(later, later)
    # An endpoint read before its replay was recorded (an older copy) stops no job.
    assert not superseded(earlier, "")


def test_a_job_goes_through_the_queue_and_back_unchanged() -> None:
    job = ReplayJob("merchant-a", "we_1", new_replay_id(NOW), 1, 2, {"shard": 1, "after": {"k": {"S": "v"}}})

    message = json.loads(job.to_json())
    assert is_replay(message) and ReplayJob.from_message(message) == job
    # A delivery and an announced event are not jobs.
    assert not is_replay({"endpoint_id": "we_1", "event_id": "evt_1"})
    assert not is_replay({"id": "evt_1", "event": "payment.processed", "client": "merchant-a"})
