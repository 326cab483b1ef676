"""Where ``payments-dr`` acts: the real AWS account of your credentials, or ``make run``'s local AWS.

A local environment describes itself in a state file whose format is :class:`Target`'s own
(:meth:`Target.describe`, :meth:`Target.local`): the local environment writes it, ``payments-dr
--local`` and ``chalice local --stage local`` read it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from chalicelib.failover_numbers import FLAG_CACHE_SECONDS, LOCAL_FLAG_CACHE_SECONDS
from chalicelib.names import (
    DEFAULT_ENVIRONMENT_SUFFIX,
    DEFAULT_PRIMARY_REGION,
    DEFAULT_SECONDARY_REGION,
    ResourceNames,
)

# Where `make run` says where its local AWS and APIs listen.
LOCAL_STATE = Path(__file__).resolve().parents[1] / ".localenv" / "state.json"


class TargetNotRunning(RuntimeError):
    """``--local`` was asked for but no local environment is running."""


@dataclass(frozen=True)
class Target:
    """One deployment of the service: its names, its two regions and how to reach them."""

    environment_suffix: str
    primary_region: str
    secondary_region: str
    endpoint_url: str | None = None
    api_urls: dict[str, str] = field(default_factory=dict)
    api_key: str | None = None
    # boto3.client keyword arguments (keys) for an endpoint_url that is not AWS's: what the local
    # AWS knows an operator by.
    credentials: dict[str, str] = field(default_factory=dict, repr=False)
    # One client per service and region: the drill's router asks every second, status many times.
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def names(self) -> ResourceNames:
        return ResourceNames(self.environment_suffix)

    @property
    def flag_cache_seconds(self) -> float:
        """How long its functions keep the in-service flag: what a switchover's drain waits out."""
        return LOCAL_FLAG_CACHE_SECONDS if self.endpoint_url else FLAG_CACHE_SECONDS

    @property
    def regions(self) -> tuple[str, str]:
        return (self.primary_region, self.secondary_region)

    def client(self, service: str, region: str) -> Any:
        """A boto3 client for ``service`` in ``region`` of this target, made once."""
        if (service, region) not in self._clients:
            self._clients[(service, region)] = boto3.client(
                service, region_name=region, endpoint_url=self.endpoint_url, **self.credentials
            )
        return self._clients[(service, region)]

    def api_url(self, region: str) -> str:
        """The regional API endpoint: from ``make run``'s state, or the stack's APIEndpoint output."""
        if region in self.api_urls:
            return self.api_urls[region]
        stack = f"Payments{self.environment_suffix.capitalize()}" + (
            "Primary" if region == self.primary_region else "Secondary"
        )
        outputs = self.client("cloudformation", region).describe_stacks(StackName=stack)["Stacks"][0][
            "Outputs"
        ]
        return next(o["OutputValue"] for o in outputs if o["OutputKey"] == "APIEndpoint")

    def queue_url(self, region: str, queue_name: str) -> str:
        return str(self.client("sqs", region).get_queue_url(QueueName=queue_name)["QueueUrl"])

    def describe(self) -> dict[str, Any]:
        """This target as a state file holds it (:meth:`local` reads it back)."""
        return {
            "environment_suffix": self.environment_suffix,
            "regions": list(self.regions),
            "endpoint_url": self.endpoint_url,
            "api_urls": self.api_urls,
            "api_key": self.api_key,
            "credentials": self.credentials,
        }

    @classmethod
    def local(cls, state_file: Path = LOCAL_STATE) -> Target:
        """The environment ``make run`` started on this machine."""
        if not state_file.exists():
            raise TargetNotRunning(
                f"no local environment is running ({state_file} is missing): start `make run`"
            )
        state = json.loads(state_file.read_text())
        return cls(
            environment_suffix=state["environment_suffix"],
            primary_region=state["regions"][0],
            secondary_region=state["regions"][1],
            endpoint_url=state["endpoint_url"],
            api_urls=state["api_urls"],
            api_key=state["api_key"],
            credentials=state.get("credentials", {}),
        )

    @classmethod
    def aws(
        cls,
        environment_suffix: str = DEFAULT_ENVIRONMENT_SUFFIX,
        primary_region: str = DEFAULT_PRIMARY_REGION,
        secondary_region: str = DEFAULT_SECONDARY_REGION,
        api_urls: dict[str, str] | None = None,
    ) -> Target:
        """A deployed environment, reached with the credentials boto3 finds.

        Its APIs are probed where clients reach them, at each stack's ``APIEndpoint`` output,
        even when the AWS APIs are reached through ``AWS_ENDPOINT_URL`` (an emulator, a VPC
        endpoint): that variable says where AWS's own APIs answer, not the payment API.
        ``api_urls`` (``--api-url REGION=URL``) names a region's API where the output is not it.
        """
        return cls(environment_suffix, primary_region, secondary_region, api_urls=dict(api_urls or {}))
