"""API clients on the local environment, kept as they are deployed: one value in both regions.

``payments-dr clients`` (:class:`operations.clients.ClientRegistry`) writes each client's value to a
secret in the primary, replicated to the secondary, and a key with it in each region's API Gateway
in the local AWS, which the local API checks as API Gateway would.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import boto3
import pytest
import requests
from botocore.config import Config

from chalicelib.schema import CANARY_CLIENT
from localenv.environment import LocalEnvironment
from localenv.network import free_port
from operations import regions
from operations.clients import ClientRegistry
from tests.integration.conftest import PRIMARY, SECONDARY, both_regions, eventually, target_of

pytestmark = pytest.mark.integration


def status_with(environment: LocalEnvironment, region: str, key: str) -> int:
    """What ``region``'s API answers a payment sent with ``key``."""
    body = {
        "transaction_id": f"cl-{uuid.uuid4().hex[:10]}",
        "customer_id": "c",
        "amount": "1.00",
        "currency": "USD",
    }
    response = requests.post(
        environment.api_url(region) + "/process", json=body, headers={"x-api-key": key}, timeout=10
    )
    return response.status_code


def accepted_everywhere(environment: LocalEnvironment, key: str) -> bool:
    return all(status_with(environment, region, key) == 201 for region in (PRIMARY, SECONDARY))


def refused_everywhere(environment: LocalEnvironment, key: str) -> bool:
    return all(status_with(environment, region, key) == 403 for region in (PRIMARY, SECONDARY))


def test_a_client_has_one_key_value_that_both_regions_accept(environment: LocalEnvironment) -> None:
    registry = environment.clients()

    report = registry.create("merchant-one")

    assert report.ok, report.render()
    assert report.value is not None and len(report.value) == 40
    assert eventually(lambda: accepted_everywhere(environment, report.value or ""))
    listing = registry.listing()["merchant-one"]
    for region in (PRIMARY, SECONDARY):
        view = listing[region]
        assert not isinstance(view, str) and view.holds_current_value and view.enabled == 1


def test_a_rotated_client_keeps_its_old_value_until_it_is_revoked_and_a_revoked_one_is_refused(
    environment: LocalEnvironment,
) -> None:
    registry = environment.clients()
    old = registry.create("merchant-two").value or ""

    new = registry.rotate("merchant-two")

    assert new.ok and new.value not in (None, old)
    assert eventually(
        lambda: accepted_everywhere(environment, old) and accepted_everywhere(environment, new.value or "")
    )
    assert registry.revoke("merchant-two", previous_only=True).ok
    assert eventually(lambda: refused_everywhere(environment, old))
    assert accepted_everywhere(environment, new.value or "")
    assert registry.revoke("merchant-two").ok
    assert eventually(lambda: refused_everywhere(environment, new.value or ""))
    assert "merchant-two" not in registry.listing()


def test_a_region_that_cannot_be_reached_is_reported_never_skipped(environment: LocalEnvironment) -> None:
    reachable = environment.clients()

    def unreachable_secondary(service: str, region: str) -> object:
        if region == SECONDARY:
            return boto3.client(
                service,
                region_name=region,
                endpoint_url=f"http://127.0.0.1:{free_port()}",  # nothing listens there
                aws_access_key_id="x",
                aws_secret_access_key="x",
                config=Config(retries={"total_max_attempts": 1}, connect_timeout=1),
            )
        return environment.client(service, region)

    registry = ClientRegistry(names=reachable.names, regions=reachable.regions, client=unreachable_secondary)

    report = registry.create("merchant-three")

    outcomes = {o.region: o for o in report.outcomes}
    assert not report.ok
    assert outcomes[PRIMARY].ok and not outcomes[SECONDARY].ok
    assert "EndpointConnectionError" in outcomes[SECONDARY].detail
    assert "INCOMPLETE" in report.render()
    # Run again where both answer: it completes what the unreachable region missed, same value.
    completed = reachable.create("merchant-three")
    assert completed.ok and completed.value == report.value
    assert eventually(lambda: accepted_everywhere(environment, report.value or ""))


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEnvironment]:
    """An environment of its own, whose orchestrators never act: the canary alarm is only watched."""
    with both_regions(
        tmp_path_factory.mktemp("localenv-clients"), orchestrators_off=frozenset({PRIMARY, SECONDARY})
    ) as environment:
        yield environment


def test_the_canary_is_a_client_and_a_key_its_peer_refuses_raises_its_alarm(
    observed: LocalEnvironment,
) -> None:
    target = target_of(observed)
    assert eventually(lambda: regions.canary_state(target, SECONDARY)[0] == "OK")
    apigateway = observed.client("apigateway", SECONDARY)
    name = observed.clients().names.client_api_key(CANARY_CLIENT)

    for key in apigateway.get_api_keys(nameQuery=name, includeValues=True)["items"]:
        apigateway.delete_api_key(apiKey=key["id"])  # the secondary no longer accepts the canary's key

    assert eventually(lambda: regions.canary_state(target, SECONDARY)[0] == "ALARM")
    assert regions.canary_state(target, PRIMARY)[0] == "OK"  # the primary still accepts it
    assert "403" in observed.log_of(PRIMARY, "events")
