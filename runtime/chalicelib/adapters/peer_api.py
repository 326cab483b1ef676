"""Where the peer region's payment API is, for the canary: looked up in API Gateway, or given."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from chalicelib.errors import DependencyUnavailable
from chalicelib.sdk import AWS_FAILURES, ClientFactory, LazyClient


class ApiGatewayPeerApi:
    """The peer region's payment API, looked up by name once per container, and the caller's key.

    The API is read from the peer's API Gateway: if that does not answer, the peer is not taking
    payments either, and the canary counts the probe as failed. The key is the caller's own
    client key (``api_key``), the value a merchant would send.
    """

    def __init__(
        self,
        *,
        region: str,
        rest_api_name: str,
        stage: str,
        client: ClientFactory,
        api_key: Callable[[], str],
    ) -> None:
        self._region = region
        self._rest_api_name = rest_api_name
        self._stage = stage
        self._client = LazyClient(client)
        self._api_key = api_key
        self._url: str | None = None

    def locate(self) -> tuple[str, str]:
        if self._url is None:
            try:
                apis = self._client.get_rest_apis(limit=500)["items"]
            except AWS_FAILURES as error:
                raise DependencyUnavailable(f"API Gateway of {self._region}") from error
            api_ids = [a["id"] for a in apis if a.get("name") == self._rest_api_name]
            if not api_ids:
                raise DependencyUnavailable(f"payment API of {self._region}")
            self._url = f"https://{api_ids[0]}.execute-api.{self._region}.amazonaws.com/{self._stage}"
        return self._url, self._api_key()


class StaticPeerApi(NamedTuple):
    """A peer API at a known URL (the local environment knows both regions'), and the caller's key."""

    url: str
    api_key: Callable[[], str]

    def locate(self) -> tuple[str, str]:
        return self.url, self.api_key()
