"""Planted twins: each puts back one problem the edge-of-failure fixes removed, for the checker to find.

1. ``in_flight_marker``: a key held by an in-progress marker written before the work, which a
   request that dies leaves behind for its function's timeout (a retry meets 409);
2. ``every_5xx_says_nothing_stored``: a 503 after a stored payment tells the client it may go
   elsewhere, and it does;
3. ``drain_without_backoff``: a client with one endpoint spends its attempts at once on a drain;
4. ``throttle_moves_and_bodies_escape``: a 429 counts towards moving, and a body cut short escapes
   the client without its Idempotency-Key;
5. ``event_id_per_publication``: each publication of a payment gets a fresh event id.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import requests

from chalicelib import http
from chalicelib.errors import FieldError, PaymentError
from chalicelib.idempotency import KeyBinding
from chalicelib.schema import NOTHING_COMMITTED
from chaos.world import World
from payments_client import client as payments_client

MARKER_SECONDS = 30.0  # the function's timeout: what an INPROGRESS record lasted


class KeyInUse(PaymentError):
    """The twin's 409: the key's first request still holds it."""

    def __init__(self) -> None:
        super().__init__([FieldError("Idempotency-Key", "a request with this key is still in progress")])


class MarkedBindings:
    """Key bindings behind an in-progress marker, shared by both regions as a replicated record is."""

    def __init__(self, inner: Any, markers: dict[str, float]) -> None:
        self._inner = inner
        self._markers = markers

    def find(self, binding_id: str) -> KeyBinding | None:
        bound = self._inner.find(binding_id)
        if bound is not None:
            return bound
        marked = self._markers.get(binding_id)
        if marked is not None and time.monotonic() - marked < MARKER_SECONDS:
            raise KeyInUse()
        self._markers[binding_id] = time.monotonic()
        return None

    def bind(self, binding: KeyBinding) -> None:
        self._inner.bind(binding)
        self._markers.pop(binding.binding_id, None)


@contextlib.contextmanager
def in_flight_marker(world: World) -> Iterator[None]:
    markers: dict[str, float] = {}
    original = list(world.services)
    world.services[:] = [s._replace(key_bindings=MarkedBindings(s.key_bindings, markers)) for s in original]
    try:
        with mock.patch.dict(http.STATUS_BY_ERROR, {KeyInUse: 409}):
            yield
    finally:
        world.services[:] = original


@contextlib.contextmanager
def every_5xx_says_nothing_stored(world: World) -> Iterator[None]:
    with mock.patch.object(http, "OUTCOME_UNKNOWN", NOTHING_COMMITTED):
        yield


def _verdict_with(change: Callable[[int, Any, int], payments_client.Verdict | None]) -> Any:
    shipped = payments_client.verdict

    def verdict(status: int, headers: Any, *, endpoints: int) -> payments_client.Verdict:
        return change(status, headers, endpoints) or shipped(status, headers, endpoints=endpoints)

    return verdict


@contextlib.contextmanager
def drain_without_backoff(world: World) -> Iterator[None]:
    def change(status: int, headers: Any, endpoints: int) -> payments_client.Verdict | None:
        draining = headers.get(payments_client.REGION_DRAINING_HEADER)
        return payments_client.Verdict.MOVE_NOW if draining else None

    with mock.patch.object(payments_client, "verdict", _verdict_with(change)):
        yield


@contextlib.contextmanager
def throttle_moves_and_bodies_escape(world: World) -> Iterator[None]:
    def change(status: int, headers: Any, endpoints: int) -> payments_client.Verdict | None:
        return payments_client.Verdict.NOTHING_STORED if status == payments_client.THROTTLED_STATUS else None

    with (
        mock.patch.object(payments_client, "verdict", _verdict_with(change)),
        mock.patch.object(payments_client, "TRANSPORT_ERRORS", (requests.ConnectionError, requests.Timeout)),
    ):
        yield


@contextlib.contextmanager
def event_id_per_publication(world: World) -> Iterator[None]:
    from chalicelib import outbox

    with mock.patch.object(outbox, "event_id", lambda item: "evt_" + uuid.uuid4().hex):
        yield


TWINS: dict[str, Callable[[World], contextlib.AbstractContextManager[None]]] = {
    "in-flight-marker": in_flight_marker,
    "every-5xx-says-nothing-stored": every_5xx_says_nothing_stored,
    "drain-without-backoff": drain_without_backoff,
    "throttle-moves-and-bodies-escape": throttle_moves_and_bodies_escape,
    "event-id-per-publication": event_id_per_publication,
}
