"""What failed when an AWS dependency did not answer: named for the log, classified for the metric.

Pure Python over botocore's exception shapes (duck-typed, so nothing here imports botocore). A
503 must say what failed, and a broken deploy (a missing permission, a table that is not there)
must page as one instead of looking like load: :func:`cause_of` finds the AWS error behind a
:class:`~chalicelib.errors.DependencyUnavailable` and :attr:`FailureCause.kind` tells the two apart.
"""

from __future__ import annotations

from typing import Any, NamedTuple

MISCONFIGURATION = "misconfiguration"
LOAD = "load"

# Errors no retry will cure: the deployment or the account is wrong.
MISCONFIGURATION_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AuthorizationError",
        "AuthorizationErrorException",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "MissingAuthenticationToken",
        "ExpiredToken",
        "ExpiredTokenException",
        "ResourceNotFoundException",
        "ParameterNotFound",
        "NotFound",
        "NotFoundException",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
        "NonExistentQueue",
        "ValidationException",
        "ValidationError",
        "InvalidParameter",
        "InvalidParameterValue",
        "InvalidParameterException",
        "SerializationException",
        "KMSAccessDeniedException",
        "KMSDisabledException",
        "KMSInvalidStateException",
        "KMSNotFoundException",
        "KMS.AccessDeniedException",
        "KMS.DisabledException",
        "KMS.NotFoundException",
        "KMS.InvalidStateException",
        # Raised by botocore itself before any request: no credentials, no region, bad parameters.
        "NoCredentialsError",
        "PartialCredentialsError",
        "NoRegionError",
        "ParamValidationError",
        "UnknownServiceError",
        "DataNotFoundError",
    }
)
# Errors of a busy or failing service: retried by botocore, then reported as load.
LOAD_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TransactionInProgressException",
        # Multi-Region strong consistency: another region wrote the same item at the same moment.
        # It is contention between two writers (a retry sees the winner), never a broken deploy,
        # although it arrives as a 4xx that would otherwise page as one.
        "ReplicatedWriteConflictException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalServerError",
        "InternalFailure",
        "InternalError",
        "KMSThrottlingException",
        "KMS.ThrottlingException",
        "ReadTimeoutError",
        "ConnectTimeoutError",
        "EndpointConnectionError",
        "ConnectionClosedError",
        "ResponseParserError",
    }
)


class FailureCause(NamedTuple):
    """The AWS error behind a failed call, without anything from the request or its body."""

    dependency: str
    operation: str | None
    error_code: str
    request_id: str | None
    http_status: int | None

    @property
    def kind(self) -> str:
        """``misconfiguration`` (pages: a deploy is broken) or ``load`` (throttling, timeouts, 5xx)."""
        if self.error_code in MISCONFIGURATION_CODES:
            return MISCONFIGURATION
        if self.error_code in LOAD_CODES:
            return LOAD
        # An unknown client error (4xx) will not go away by retrying; no answer or a 5xx might.
        return MISCONFIGURATION if self.http_status is not None and 400 <= self.http_status < 500 else LOAD

    def to_log(self) -> dict[str, Any]:
        """The fields one log line carries about this failure."""
        return {
            "dependency": self.dependency,
            "operation": self.operation,
            "error_code": self.error_code,
            "aws_request_id": self.request_id,
            "http_status": self.http_status,
            "failure_kind": self.kind,
        }


def cause_of(error: BaseException, dependency: str = "unknown") -> FailureCause:
    """The AWS error at the root of ``error``'s cause chain, named for the log.

    ``dependency`` is what the caller was using ("payments table"); a
    :class:`~chalicelib.errors.DependencyUnavailable` names it itself.
    """
    dependency = getattr(error, "dependency", dependency)
    root: BaseException = error
    while root.__cause__ is not None:
        root = root.__cause__
    response = getattr(root, "response", None)
    if isinstance(response, dict):
        metadata = response.get("ResponseMetadata") or {}
        return FailureCause(
            dependency=dependency,
            operation=getattr(root, "operation_name", None),
            error_code=str((response.get("Error") or {}).get("Code") or "Unknown"),
            request_id=metadata.get("RequestId"),
            http_status=metadata.get("HTTPStatusCode"),
        )
    return FailureCause(
        dependency=dependency,
        operation=None,
        error_code=type(root).__name__,
        request_id=None,
        http_status=None,
    )


def refused_outright(error: BaseException) -> bool:
    """Whether AWS refused the one attempt of a call, so that the call is known to have changed nothing.

    An error response to the first attempt (no retry made) is a refusal. After retries it is not
    known: an earlier attempt may have timed out after the write landed; neither is a timeout or a
    dropped connection.
    """
    response = getattr(error, "response", None)
    if not isinstance(response, dict) or "Error" not in response:
        return False
    return int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0)) == 0
