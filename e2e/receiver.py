"""A merchant's webhook receiver on loopback, as `make e2e` runs one: it verifies what it gets."""

from __future__ import annotations

import threading
from typing import Any

from payments_client import InvalidWebhook, verify_webhook


class WebhookReceiver:
    """Keeps each delivery whose signature verifies under ``secrets``; counts the others."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, HTTPServer

        self.secrets: list[str] = []
        self.events: list[dict[str, Any]] = []
        self.refused = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    owner.events.append(verify_webhook(self.headers, body, owner.secrets))
                    self.send_response(204)
                except InvalidWebhook:
                    owner.refused += 1
                    self.send_response(400)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self._server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/payments-hook"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
