"""What the operator's commands act on in these tests: moto's server, as an operator."""

from __future__ import annotations

import pytest

from localenv.provision import local_credentials
from operations.targets import Target
from tests.conftest import PEER_REGION, REGION, SUFFIX


@pytest.fixture
def operator(local_aws: str) -> Target:
    """Both regions of the tests' environment on the local AWS, with the operator's credentials."""
    return Target(
        environment_suffix=SUFFIX,
        primary_region=REGION,
        secondary_region=PEER_REGION,
        endpoint_url=local_aws,
        credentials=local_credentials(operator=True),
    )
