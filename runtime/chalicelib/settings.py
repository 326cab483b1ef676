"""Typed runtime settings, read once from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NamedTuple

from chalicelib.failover_numbers import FLAG_CACHE_SECONDS
from chalicelib.names import DEFAULT_ENVIRONMENT_SUFFIX, EnvVar, ResourceNames
from chalicelib.schema import EVENTUAL_CONSISTENCY, STRONG_CONSISTENCY


class SettingsError(RuntimeError):
    """The environment lacks a setting the function cannot work without."""


class Settings(NamedTuple):
    """Where this region's payment resources are.

    Names derive from the environment suffix through :class:`ResourceNames` unless the
    deployment passes them explicitly; the queue URL and topic ARNs carry the account id and so
    always come from the deployment.
    """

    environment_suffix: str
    region: str
    payments_table: str
    payment_queue_url: str
    transaction_topic_arn: str
    ops_alert_topic_arn: str
    idempotency_table: str
    clients_table: str = ""
    webhook_endpoints_table: str = ""
    webhook_queue_url: str = ""
    webhook_dlq_url: str = ""
    peer_region: str = ""
    # make run only: check API keys against this region's API Gateway in the local AWS.
    local_api_gateway: bool = False
    # make run and the tests only: webhooks to loopback receivers (webhooks.loopback_resolver).
    local_stage: bool = False
    # The webhook drill only: how many times faster than real the retry schedule runs (1: real).
    local_time_scale: float = 1.0
    # Local only: the peer's API for the canary (deployed, it is looked up by name).
    peer_api_url: str = ""
    # How long a function keeps the flag before taking a payment (chalicelib.regions).
    flag_cache_seconds: float = FLAG_CACHE_SECONDS
    # The payments table's consistency mode: "eventual" (the default) or "strong".
    consistency: str = EVENTUAL_CONSISTENCY

    @property
    def names(self) -> ResourceNames:
        return ResourceNames(self.environment_suffix)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default: the process environment)."""
        env = os.environ if environ is None else environ
        suffix = env.get(EnvVar.ENVIRONMENT_SUFFIX, DEFAULT_ENVIRONMENT_SUFFIX)
        region = env.get(EnvVar.REGION) or env.get(EnvVar.DEFAULT_REGION)
        if not region:
            raise SettingsError(f"{EnvVar.REGION} is not set")
        names = ResourceNames(suffix)
        return cls(
            environment_suffix=suffix,
            region=region,
            payments_table=env.get(EnvVar.PAYMENTS_TABLE, names.payments_table),
            payment_queue_url=env.get(EnvVar.PAYMENT_QUEUE_URL, ""),
            transaction_topic_arn=env.get(EnvVar.TRANSACTION_TOPIC_ARN, ""),
            ops_alert_topic_arn=env.get(EnvVar.OPS_ALERT_TOPIC_ARN, ""),
            idempotency_table=env.get(EnvVar.IDEMPOTENCY_TABLE, names.idempotency_table),
            clients_table=env.get(EnvVar.CLIENTS_TABLE, names.clients_table),
            webhook_endpoints_table=env.get(EnvVar.WEBHOOK_ENDPOINTS_TABLE, names.webhook_endpoints_table),
            webhook_queue_url=env.get(EnvVar.WEBHOOK_QUEUE_URL, ""),
            webhook_dlq_url=env.get(EnvVar.WEBHOOK_DLQ_URL, ""),
            peer_region=env.get(EnvVar.PEER_REGION, ""),
            local_api_gateway=bool(env.get(EnvVar.LOCAL_API_GATEWAY)),
            local_stage=bool(env.get(EnvVar.LOCAL_STAGE)),
            local_time_scale=float(env.get(EnvVar.LOCAL_TIME_SCALE) or 1.0),
            peer_api_url=env.get(EnvVar.PEER_API_URL, ""),
            flag_cache_seconds=float(env.get(EnvVar.FLAG_CACHE_SECONDS) or FLAG_CACHE_SECONDS),
            consistency=(
                STRONG_CONSISTENCY
                if env.get(EnvVar.PAYMENTS_CONSISTENCY) == STRONG_CONSISTENCY
                else EVENTUAL_CONSISTENCY
            ),
        )
