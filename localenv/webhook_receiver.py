"""A merchant's webhook receiver on loopback, as `make run`, the drill, `make e2e` and the tests run one.

It answers each delivery 503 while it is down (``down_until``, on the monotonic clock), else with
the next of the statuses it was given and then 204. Given the endpoint's ``secrets``, it verifies
each delivery it would accept with ``payments_client.verify_webhook`` (the merchants' own check)
and answers 400 to one that does not verify. Every arrival is recorded.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, NamedTuple, Self

from payments_client import InvalidWebhook, verify_webhook


class Arrival(NamedTuple):
    """One delivery as the receiver got it, and what it answered."""

    at: float
    path: str
    headers: dict[str, str]
    body: str
    status: int


class LoopbackReceiver:
    """Listens on 127.0.0.1 (a free port) until :meth:`close`."""

    def __init__(self, *statuses: int, location: str = "", path: str = "/hooks") -> None:
        self.secrets: list[str] = []
        self.down_until = 0.0
        self.arrivals: list[Arrival] = []
        self.events: list[dict[str, Any]] = []
        self.unverified = 0
        answers, owner = list(statuses), self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = 503 if time.monotonic() < owner.down_until else (answers.pop(0) if answers else 204)
                if 200 <= status < 300 and owner.secrets:
                    try:
                        owner.events.append(verify_webhook(self.headers, body, owner.secrets))
                    except InvalidWebhook:
                        owner.unverified += 1
                        status = 400
                owner.arrivals.append(
                    Arrival(time.monotonic(), self.path, dict(self.headers.items()), body.decode(), status)
                )
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self._server = HTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"
        self.url = self.base_url + path
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
