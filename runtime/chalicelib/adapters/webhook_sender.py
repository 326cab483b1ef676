"""Sending one webhook delivery: to an address checked just before, never following a redirect.

The endpoint's host is resolved and every address it answers with checked
(:func:`chalicelib.webhooks.checked_addresses`) before any connection is opened; the connection
then goes to one of those addresses, so a name that changes its answer between the check and the
connection cannot send the delivery elsewhere. Over https the certificate is still verified for
the host's name (TLS SNI and hostname check), as a client connecting by name would.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.webhooks import Resolver

# urllib3 and the webhook rules are imported by the calls that need them: every function builds
# this adapter with its services, and only the deliverer sends (cold starts stay as they were).

# What is read of an answer: its status decides, the body is not needed.
MAX_ANSWER_BYTES = 4096
USER_AGENT = "payments-webhooks/1"

# Opens a connection pool to (scheme, address, port, host name): urllib3's, or a test's recorder.
PoolFactory = Callable[[str, str, int, str], Any]


def system_resolver(host: str) -> list[str]:
    """Every address the system's resolver answers ``host`` with (IPv4 and IPv6)."""
    import socket

    return [str(info[4][0]) for info in socket.getaddrinfo(host, 443, proto=socket.IPPROTO_TCP)]


def webhook_resolver(*, local_stage: bool) -> Resolver:
    """The system's resolver; in the local stage, loopback names only (no DNS query at all)."""
    if not local_stage:
        return system_resolver

    def loopback_only(host: str) -> list[str]:
        from chalicelib.webhooks import loopback_resolver

        return loopback_resolver(host)

    return loopback_only


def urllib3_pool(scheme: str, address: str, port: int, host: str) -> Any:
    """A one-use pool to ``address`` that speaks to ``host`` (SNI and certificate check over https)."""
    import urllib3

    from chalicelib.webhooks import DELIVERY_TIMEOUT_SECONDS

    timeout = urllib3.Timeout(connect=DELIVERY_TIMEOUT_SECONDS, read=DELIVERY_TIMEOUT_SECONDS)
    if scheme == "https":
        return urllib3.HTTPSConnectionPool(
            address,
            port,
            server_hostname=host,
            assert_hostname=host,
            cert_reqs="CERT_REQUIRED",
            timeout=timeout,
            retries=False,
            maxsize=1,
        )
    return urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False, maxsize=1)


class HttpWebhookSender:
    """POSTs a signed delivery; the answer's status, or None when there was none."""

    def __init__(self, *, resolve: Resolver, allow_loopback: bool, pool: PoolFactory = urllib3_pool) -> None:
        self._resolve = resolve
        self._allow_loopback = allow_loopback
        self._pool = pool

    def send(self, url: str, headers: Mapping[str, str], body: str) -> int | None:
        """Deliver ``body`` to ``url``; raises :class:`~chalicelib.webhooks.AddressRefused` before
        connecting when the host now resolves to an address a webhook may not reach."""
        from urllib.parse import urlsplit

        import urllib3

        from chalicelib.webhooks import checked_addresses

        parts = urlsplit(url)
        host = parts.hostname or ""
        addresses = checked_addresses(host, self._resolve, allow_loopback=self._allow_loopback)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        target = parts.path or "/"
        if parts.query:
            target += f"?{parts.query}"
        pool = self._pool(parts.scheme, addresses[0], port, host)
        try:
            response = pool.urlopen(
                "POST",
                target,
                body=body.encode(),
                headers={
                    **headers,
                    "Host": parts.netloc.rsplit("@", 1)[-1],
                    "Content-Type": "application/json",
                    "User-Agent": USER_AGENT,
                },
                redirect=False,
                retries=False,
                preload_content=False,
            )
            try:
                response.read(MAX_ANSWER_BYTES)
            finally:
                response.release_conn()
            return int(response.status)
        except urllib3.exceptions.HTTPError:
            return None
        finally:
            pool.close()
