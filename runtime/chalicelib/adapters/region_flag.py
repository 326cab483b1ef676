"""The region's in-service flag (an SSM parameter per region) and the health probes that read it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.errors import DependencyUnavailable
from chalicelib.items import key_attributes
from chalicelib.observability import report_dependency_failure
from chalicelib.orphans import Sweep
from chalicelib.regions import RegionFlag
from chalicelib.schema import PaymentsTableSchema as Schema
from chalicelib.sdk import AWS_FAILURES, LazyClient

HEALTH_PROBE_KEY = "__health__"


# Health probes answer inside Route 53's few-second budget or count as failed: one attempt each.
class DependencyProbes:
    """Cheap reads that tell whether this region's table and queue answer and it is in service."""

    def __init__(
        self,
        *,
        table_name: str,
        queue_url: str,
        client: Callable[[str], Any],
        flag: SsmRegionControl,
        region: str,
    ) -> None:
        self._table = table_name
        self._queue_url = queue_url
        self._dynamodb = LazyClient(client, "dynamodb")
        self._sqs = LazyClient(client, "sqs")
        self._flag = flag
        self._region = region

    def table_answers(self) -> bool:
        self._dynamodb.get_item(
            TableName=self._table,
            Key=key_attributes(HEALTH_PROBE_KEY, Schema.CLAIM_SORT_KEY),
            ProjectionExpression="#pk",
            ExpressionAttributeNames={"#pk": Schema.PARTITION_KEY},
        )
        return True

    def queue_answers(self) -> bool:
        self._sqs.get_queue_attributes(
            QueueUrl=self._queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        return True

    def in_service(self) -> bool:
        return self.flag().in_service

    def flag(self) -> RegionFlag:
        return self._flag.flag(self._region)


class SsmRegionControl:
    """In-service flags as one SSM parameter per region.

    Parameter Store is a separate, regional control-plane service: it stays readable when the
    region's table or queue is the thing failing, it costs nothing at this request rate, and
    its parameter history records every change with the IAM identity that made it.
    """

    def __init__(self, *, parameter: str, client: Callable[[str], Any]) -> None:
        self._parameter = parameter
        self._client_factory = client
        self._clients: dict[str, LazyClient] = {}
        # The last flag read per region: what a throttled read answers instead of failing.
        self._last: dict[str, RegionFlag] = {}

    def _client(self, region: str) -> LazyClient:
        return self._clients.setdefault(region, LazyClient(self._client_factory, region))

    def flag(self, region: str) -> RegionFlag:
        """``region``'s flag; the last one read when Parameter Store throttles or times out.

        Parameter Store's throughput is shared by every caller in the account and region: a busy
        account must not make a healthy region look out of service (``/health`` 503) on its own.
        A flag that cannot be read for any other reason (access denied, no such parameter), or
        that was never read, still fails.
        """
        try:
            value = self._client(region).get_parameter(Name=self._parameter)["Parameter"]["Value"]
        except AWS_FAILURES as error:
            # Only on a failure: the flag is read on every warm container's health check.
            from chalicelib.failures import LOAD, cause_of

            dependency = f"in-service flag of {region}"
            if region in self._last and cause_of(error, dependency).kind == LOAD:
                report_dependency_failure(error, dependency)
                return self._last[region]
            raise DependencyUnavailable(dependency, committed_nothing=True) from error
        flag = RegionFlag.from_text(value)
        self._last[region] = flag
        return flag

    def set_flag(self, region: str, flag: RegionFlag) -> None:
        try:
            self._client(region).put_parameter(
                Name=self._parameter, Value=flag.to_text(), Type="String", Overwrite=True
            )
        except AWS_FAILURES as error:
            raise DependencyUnavailable(f"in-service flag of {region}") from error
        self._last[region] = flag


class SsmSweepLedger:
    """This region's sweep of a lost peer (:class:`~chalicelib.orphans.Sweep`) as one SSM parameter."""

    def __init__(self, *, parameter: str, client: Callable[[], Any]) -> None:
        self._parameter = parameter
        self._client = LazyClient(client)

    def read(self) -> Sweep:
        try:
            value = self._client.get_parameter(Name=self._parameter)["Parameter"]["Value"]
        except AWS_FAILURES as error:
            if getattr(error, "response", {}).get("Error", {}).get("Code") == "ParameterNotFound":
                return Sweep()
            raise DependencyUnavailable("orphan sweep") from error
        return Sweep.from_text(value)

    def save(self, sweep: Sweep) -> None:
        try:
            self._client.put_parameter(
                Name=self._parameter, Value=sweep.to_text(), Type="String", Overwrite=True
            )
        except AWS_FAILURES as error:
            raise DependencyUnavailable("orphan sweep") from error
