"""Typed settings of a regional payment stack, from props, else CDK context, else defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from constructs import Construct

from chalicelib.names import (
    DEFAULT_ENVIRONMENT_SUFFIX,
    DEFAULT_PRIMARY_REGION,
    DEFAULT_SECONDARY_REGION,
    DEFAULT_TOPOLOGY,
    ResourceNames,
    Topology,
    topology_refusal,
)


@dataclass(frozen=True)
class DnsSettings:
    """Route 53 failover settings; present only when a hosted zone and domain are configured."""

    domain_name: str
    hosted_zone_id: str
    hosted_zone_name: str


# DynamoDB's multi-Region strong consistency spans exactly three regions of one of these sets (two
# replicas and a witness here); AWS refuses any other combination when the table is created.
STRONG_CONSISTENCY_REGION_SETS = (
    frozenset({"us-east-1", "us-east-2", "us-west-2"}),
    frozenset({"eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1"}),
    frozenset({"ap-northeast-1", "ap-northeast-2", "ap-northeast-3"}),
)


class InvalidSettings(ValueError):
    """Settings AWS would refuse at deploy time, refused at synthesis instead."""


@dataclass(frozen=True)
class DeploymentSettings:
    """What the CDK app deploys: the suffix, the two regions and optional DNS."""

    environment_suffix: str = DEFAULT_ENVIRONMENT_SUFFIX
    primary_region: str = DEFAULT_PRIMARY_REGION
    secondary_region: str = DEFAULT_SECONDARY_REGION
    dns: DnsSettings | None = None
    # Multi-Region strong consistency for the payments table: the witness region, or "" for the
    # default eventually consistent global table. Only when the table is created.
    strong_consistency_witness: str = ""
    # Whether both regions take payments; made at creation, as the table's consistency is.
    topology: Topology = DEFAULT_TOPOLOGY
    # Production data: tables and keys are retained when their stack is deleted, and tables
    # refuse deletion. Development stacks clean up after themselves.
    production: bool = False

    def __post_init__(self) -> None:
        refusal = topology_refusal(self.topology, strong_consistency=bool(self.strong_consistency_witness))
        if refusal:
            raise InvalidSettings(f"{refusal}; add -c strong_consistency_witness=<the set's third region>")
        if self.strong_consistency_witness:
            regions = {self.primary_region, self.secondary_region, self.strong_consistency_witness}
            if len(regions) != 3 or not any(
                regions <= region_set for region_set in STRONG_CONSISTENCY_REGION_SETS
            ):
                raise InvalidSettings(
                    f"strong consistency needs three different regions of one region set "
                    f"({'; '.join(', '.join(sorted(s)) for s in STRONG_CONSISTENCY_REGION_SETS)}); "
                    f"got {self.primary_region}, {self.secondary_region} and witness "
                    f"{self.strong_consistency_witness}"
                )

    @property
    def names(self) -> ResourceNames:
        return ResourceNames(self.environment_suffix)

    @classmethod
    def from_context(cls, scope: Construct, environment_suffix: str | None = None) -> DeploymentSettings:
        """Read settings from CDK context; an explicit ``environment_suffix`` wins."""

        def context(key: str, default: str = "") -> str:
            value: Any = scope.node.try_get_context(key)
            return str(value) if value else default

        dns = None
        if context("domain_name") and context("hosted_zone_id"):
            dns = DnsSettings(
                domain_name=context("domain_name"),
                hosted_zone_id=context("hosted_zone_id"),
                hosted_zone_name=context("hosted_zone_name", context("domain_name")),
            )
        try:
            topology = Topology(context("topology", DEFAULT_TOPOLOGY))
        except ValueError:
            raise InvalidSettings(
                f"topology must be one of {', '.join(t.value for t in Topology)}; got {context('topology')!r}"
            ) from None
        return cls(
            environment_suffix=environment_suffix
            or context("environment_suffix", DEFAULT_ENVIRONMENT_SUFFIX),
            primary_region=context("primary_region", DEFAULT_PRIMARY_REGION),
            secondary_region=context("secondary_region", DEFAULT_SECONDARY_REGION),
            dns=dns,
            strong_consistency_witness=context("strong_consistency_witness"),
            topology=topology,
            production=context("production").lower() in ("true", "1", "yes"),
        )


class PaymentStackProps(cdk.StackProps):
    """Stack props of a regional payment stack.

    ``settings`` carries the environment suffix that names every resource (``payments-{suffix}``...):
    given to :func:`DeploymentSettings.from_context`, else from CDK context, else ``dev``.
    ``is_primary`` says whether this stack owns the global table (the other region's stack uses
    its replica).
    """

    def __init__(self, *, settings: DeploymentSettings, is_primary: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.is_primary = is_primary

    @property
    def environment_suffix(self) -> str:
        return self.settings.environment_suffix

    @property
    def region(self) -> str:
        return self.settings.primary_region if self.is_primary else self.settings.secondary_region

    @property
    def peer_region(self) -> str:
        return self.settings.secondary_region if self.is_primary else self.settings.primary_region
