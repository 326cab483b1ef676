"""Causes of failed AWS calls: named for the log, misconfiguration told apart from load."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, ReadTimeoutError

from chalicelib.errors import DependencyUnavailable
from chalicelib.failures import LOAD, MISCONFIGURATION, cause_of


def client_error(code: str, status: int) -> ClientError:
    # Only the fields botocore's parser always fills, as a trimmed response would have them.
    response: Any = {
        "Error": {"Code": code, "Message": "details"},
        "ResponseMetadata": {"RequestId": "req-1", "HTTPStatusCode": status},
    }
    return ClientError(
        response,
        "PutItem",
    )


def behind_503(error: Exception) -> DependencyUnavailable:
    try:
        raise DependencyUnavailable("payments table") from error
    except DependencyUnavailable as unavailable:
        return unavailable


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (client_error("AccessDeniedException", 400), MISCONFIGURATION),
        (client_error("ResourceNotFoundException", 400), MISCONFIGURATION),
        (client_error("ValidationException", 400), MISCONFIGURATION),
        (client_error("AWS.SimpleQueueService.NonExistentQueue", 400), MISCONFIGURATION),
        (client_error("SomethingNew", 403), MISCONFIGURATION),
        (NoCredentialsError(), MISCONFIGURATION),
        (client_error("ThrottlingException", 400), LOAD),
        # Multi-Region strong consistency: two regions wrote one item at once (HTTP 409).
        (client_error("ReplicatedWriteConflictException", 409), LOAD),
        (client_error("ProvisionedThroughputExceededException", 400), LOAD),
        (client_error("InternalServerError", 500), LOAD),
        (client_error("SomethingNew", 503), LOAD),
        (ReadTimeoutError(endpoint_url="http://x"), LOAD),
        (EndpointConnectionError(endpoint_url="http://x"), LOAD),
    ],
)
def test_a_failure_is_misconfiguration_or_load(error: Exception, kind: str) -> None:
    assert cause_of(behind_503(error)).kind == kind


def test_the_cause_names_dependency_operation_code_and_request_id_but_not_the_message() -> None:
    logged = cause_of(behind_503(client_error("AccessDeniedException", 400))).to_log()

    assert logged == {
        "dependency": "payments table",
        "operation": "PutItem",
        "error_code": "AccessDeniedException",
        "aws_request_id": "req-1",
        "http_status": 400,
        "failure_kind": MISCONFIGURATION,
    }
