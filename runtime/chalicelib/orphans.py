"""What a lost region stored and never announced: when the survivor sweeps for it, and how far it got.

Pure Python. The observer (:mod:`chalicelib.observer`) runs each minute in each region; once its peer
has been out of service for :data:`~chalicelib.failover_numbers.ORPHAN_ANNOUNCE_AFTER_SECONDS`, it
announces, from its own table, every payment and rejection the peer stored from
:data:`~chalicelib.failover_numbers.ORPHAN_LOOKBACK_SECONDS` before the peer went out, with the ids
those events always carry (:func:`chalicelib.outbox.event_id`), so a subscriber that had them
already drops them. One sweep per outage: the outage is named by the flag's ``changed_at``, and
the sweep's place in the table is kept between runs until it is done.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, NamedTuple

from chalicelib.failover_numbers import ORPHAN_ANNOUNCE_AFTER_SECONDS, ORPHAN_LOOKBACK_SECONDS
from chalicelib.regions import RegionFlag


class Sweep(NamedTuple):
    """How far the sweep for one outage of the peer has gone."""

    outage: str = ""  # the peer flag's changed_at when it went out ("" before any sweep)
    cursor: dict[str, Any] | None = None  # where the next run of the sweep starts in the table
    done: bool = False
    announced: int = 0

    def to_text(self) -> str:
        return json.dumps(self._asdict(), separators=(",", ":"))

    @classmethod
    def from_text(cls, text: str | None) -> Sweep:
        """A stored sweep; none, or one that cannot be read, is a sweep not begun."""
        try:
            value = json.loads(text or "")
            return cls(
                str(value["outage"]), value.get("cursor"), bool(value["done"]), int(value["announced"])
            )
        except (ValueError, KeyError, TypeError):
            return cls()


def out_since(flag: RegionFlag) -> float | None:
    """When the peer went out of service (epoch seconds), from its flag; None if in service or unknown."""
    if flag.in_service or not flag.changed_at:
        return None
    try:
        return datetime.strptime(flag.changed_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def sweep_to_run(peer: RegionFlag, stored: Sweep, now: float) -> tuple[Sweep, int] | None:
    """The sweep to continue now, and the earliest time (epoch ms) of what it announces; None if none.

    Due once the peer has been out for the bound; a sweep of an earlier outage starts over; a
    finished sweep of this outage is not run again.
    """
    since = out_since(peer)
    if since is None or now - since < ORPHAN_ANNOUNCE_AFTER_SECONDS:
        return None
    current = stored if stored.outage == peer.changed_at else Sweep(outage=peer.changed_at)
    if current.done:
        return None
    return current, int((since - ORPHAN_LOOKBACK_SECONDS) * 1000)
