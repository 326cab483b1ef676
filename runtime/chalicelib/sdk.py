"""The AWS SDK as the functions use it: one botocore session, clients made on first use.

Clients come from botocore directly (boto3 adds only import time here), built from API data
trimmed to the operations the functions call (``sdk_data``, ``make sdk-data``). botocore's
standard retry mode gives every call bounded retries with jittered backoff; what still fails is
one of :data:`AWS_FAILURES`, which the adapters (:mod:`chalicelib.adapters`) turn into
:class:`~chalicelib.errors.DependencyUnavailable`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.credentials import CredentialResolver, EnvProvider
from botocore.exceptions import BotoCoreError, ClientError
from botocore.loaders import Loader
from botocore.parsers import ResponseParserError

from chalicelib.failover_numbers import (
    PAYMENT_CALL_ATTEMPTS,
    PAYMENT_CALL_CONNECT_TIMEOUT_SECONDS,
    PAYMENT_CALL_READ_TIMEOUT_SECONDS,
)

# Every call of the functions, on the payment path and off it: bounded as failover_numbers says
# (total_max_attempts counts the first attempt; botocore's max_attempts would count retries only).
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": PAYMENT_CALL_ATTEMPTS},
    connect_timeout=PAYMENT_CALL_CONNECT_TIMEOUT_SECONDS,
    read_timeout=PAYMENT_CALL_READ_TIMEOUT_SECONDS,
)
# Everything a call can fail with once botocore's retries are spent; a garbled error response
# raises ResponseParserError, which is neither of the other two.
AWS_FAILURES = (ClientError, BotoCoreError, ResponseParserError)

# The API operations the functions call (the observer deletes its own old payments, and sweeps
# the table for what a lost peer left). Clients are built from API data holding only these, generated from the
# pinned botocore into SDK_DATA by `make sdk-data`: botocore's own data would make a cold
# start parse a 1.2 MB endpoints file and every operation of each service, and list the
# directories of some 400 services, for a few calls.
# The payments table's operations (its alarm counts their SystemErrors, stacks/monitoring.py).
PAYMENTS_TABLE_OPERATIONS = ("GetItem", "Query", "PutItem")
SDK_OPERATIONS: dict[str, tuple[str, ...]] = {
    "dynamodb": (*PAYMENTS_TABLE_OPERATIONS, "BatchGetItem", "DeleteItem", "Scan"),
    "sqs": ("SendMessage", "SendMessageBatch", "GetQueueAttributes"),
    "sns": ("Publish", "PublishBatch"),
    "ssm": ("GetParameter", "PutParameter"),
    # The canary finds the peer's REST API by name, and reads its own client's key.
    "apigateway": ("GetRestApis",),
    "secretsmanager": ("GetSecretValue",),
}
SDK_DATA = Path(__file__).with_name("sdk_data")
GENERATED_FROM = "generated-from"  # SDK_DATA/generated-from.json: {"botocore": version}
ENVIRONMENT_CREDENTIALS = (EnvProvider.ACCESS_KEY, EnvProvider.SECRET_KEY)

_session: Any = None


def make_client(service: str, region: str) -> Any:
    """A botocore client for ``service`` in ``region`` with the project's retry policy.

    All clients share one session, so service data files are read once per container.
    ``AWS_ENDPOINT_URL`` in the environment points it at a local AWS instead of the real one.
    """
    return _shared_session().create_client(service, region_name=region, config=CLIENT_CONFIG)


def sdk_session() -> Any:
    """A botocore session that builds its clients from ``SDK_DATA`` alone, where it can.

    Where the environment holds credentials (Lambda puts the execution role's there) the
    session reads only the environment. botocore's chain would answer the same, since it asks
    the environment first, but it would build its instance-metadata and container fetchers
    first, an HTTP session and SSL context each, on every cold start.
    """
    session = botocore.session.get_session()
    if sdk_data_readable_by(botocore.__version__):
        session.register_component(
            "data_loader", Loader(extra_search_paths=[str(SDK_DATA)], include_default_search_paths=False)
        )
    if all(os.environ.get(name) for name in ENVIRONMENT_CREDENTIALS):
        session.register_component("credential_provider", CredentialResolver([EnvProvider()]))
    return session


def sdk_data_readable_by(botocore_version: str) -> bool:
    """Whether a botocore of ``botocore_version`` may read ``SDK_DATA``.

    Newer botocore reads older API data (models and rule sets only ever gain features); an
    older one may not know what newer data uses. The Lambda package ships the botocore the data
    came from; anywhere an older one is installed, clients use that botocore's own data:
    slower to start, never wrong.
    """
    generated_from = json.loads((SDK_DATA / f"{GENERATED_FROM}.json").read_text())["botocore"]
    return _version(botocore_version) >= _version(generated_from)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:3] if part.isdigit())


def use_session(session: Any) -> None:
    """Make clients from ``session`` from now on (``None``: a fresh :func:`sdk_session`)."""
    global _session
    _session = session


def _shared_session() -> Any:
    if _session is None:
        use_session(sdk_session())
    return _session


ClientFactory = Callable[[], Any]


PROBE_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=1, read_timeout=1
)


def make_probe_client(service: str, region: str) -> Any:
    """A client for health probes: fails fast instead of retrying."""
    return _shared_session().create_client(service, region_name=region, config=PROBE_CONFIG)


class LazyClient:
    """A botocore client made the first time a call needs it, so a cold start pays only for the
    services the invocation touches. Every adapter holds its clients this way."""

    def __init__(self, factory: Callable[..., Any], *args: Any) -> None:
        self._factory = factory
        self._args = args
        self._client: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            self._client = self._factory(*self._args)
        return getattr(self._client, name)
