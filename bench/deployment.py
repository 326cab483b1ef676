"""What a design's synthesized templates deploy, in the terms its bill is made of.

The cost model (:mod:`bench.cost`) prices these facts; nothing in them is typed by hand. Both
forms of a function are read: SAM (``AWS::Serverless::Function`` with ``Events``, as Chalice
packages ours) and plain CloudFormation (``AWS::Lambda::Function`` with an event source mapping,
an SNS subscription or an API Gateway permission, as the seed's CDK code writes it).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.schema import is_payments_table

# What a function does, from what invokes it.
API, PROCESSOR, NOTIFIER, ORCHESTRATOR, CANARY = "api", "processor", "notifier", "orchestrator", "canary"
WEBHOOKS = "webhooks"
LAMBDA_FUNCTIONS = ("AWS::Serverless::Function", "AWS::Lambda::Function")


@dataclass(frozen=True)
class Function:
    """One Lambda function as billed: memory, architecture, tracing and how events reach it."""

    region: str
    role: str
    memory_gb: float
    arm64: bool
    traced: bool
    batch_size: int = 1
    batching_window_s: float = 0.0
    # A scheduled function: seconds between runs (0: not scheduled).
    schedule_s: float = 0.0


@dataclass(frozen=True)
class Api:
    """One REST API stage: its execution-log level, access-log line and tracing."""

    region: str
    logging_level: str
    data_trace: bool
    access_log_format: str
    traced: bool


@dataclass(frozen=True)
class HealthCheck:
    """One Route 53 health check: its type and the options billed on top of a basic check."""

    region: str
    type: str
    request_interval_s: int
    optional_features: int

    @property
    def sends_requests(self) -> bool:
        return self.type in ("HTTP", "HTTPS", "HTTP_STR_MATCH", "HTTPS_STR_MATCH", "TCP")


@dataclass(frozen=True)
class SamplingRule:
    """An X-Ray sampling rule: the requests it matches and how many of them it records."""

    priority: int
    url_path: str
    http_method: str
    reservoir_per_second: float
    fixed_rate: float

    def matches(self, path: str, method: str) -> bool:
        return fnmatch.fnmatchcase(path, self.url_path) and fnmatch.fnmatchcase(method, self.http_method)


@dataclass(frozen=True)
class Table:
    """One DynamoDB table (a global table counts once per replica region)."""

    region: str
    kind: str
    point_in_time_recovery: bool
    customer_managed_key: bool
    index_keys: tuple[tuple[str, ...], ...]
    # Each index's projection (ALL, KEYS_ONLY, INCLUDE), in index_keys' order; the table's own keys.
    index_projections: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()


@dataclass
class Deployment:
    """Every billed resource of one design, in both regions."""

    regions: list[str] = field(default_factory=list)
    functions: list[Function] = field(default_factory=list)
    apis: list[Api] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    health_checks: list[HealthCheck] = field(default_factory=list)
    web_acls: int = 0
    web_acl_rules: int = 0
    web_acl_regions: set[str] = field(default_factory=set)
    kms_keys: int = 0
    # Secrets Manager bills each secret and each of its replicas per month (API clients' keys).
    secrets: int = 0
    # Queues, topics and log groups under a customer-managed key: each asks KMS for data keys.
    kms_encrypted_resources: int = 0
    alarm_metrics: int = 0
    dashboards: int = 0
    sqs_event_sources: int = 0
    log_retention_days: list[int] = field(default_factory=list)
    sampling_rules: list[SamplingRule] = field(default_factory=list)

    def sampling_rule_for(self, path: str, method: str) -> SamplingRule | None:
        """The X-Ray rule that decides for this request (None: the account's default rule)."""
        matching = [r for r in self.sampling_rules if r.matches(path, method)]
        return min(matching, key=lambda r: r.priority) if matching else None

    @classmethod
    def from_templates(cls, templates: Iterable[tuple[str, dict[str, Any]]]) -> Deployment:
        """The deployment of these (region, template) pairs."""
        deployment = cls()
        for region, template in templates:
            if region not in deployment.regions:
                deployment.regions.append(region)
            deployment._add(region, template.get("Resources", {}))
        return deployment

    def functions_in(self, role: str) -> list[Function]:
        return [f for f in self.functions if f.role == role]

    def _add(self, region: str, resources: dict[str, Any]) -> None:
        for logical_id, resource in resources.items():
            kind, props = resource["Type"], resource.get("Properties", {})
            if kind in LAMBDA_FUNCTIONS:
                role = _function_role(logical_id, props, resources)
                if role:
                    self.functions.append(_function(region, role, props, logical_id, resources))
            elif kind == "AWS::Serverless::Api" or kind == "AWS::ApiGateway::Stage":
                self.apis.append(_api(region, props.get("MethodSettings", []), props))
            elif kind in ("AWS::DynamoDB::GlobalTable", "AWS::DynamoDB::Table"):
                self.tables.extend(_tables(region, props, resources))
            elif kind == "AWS::Route53::HealthCheck":
                self.health_checks.append(_health_check(region, props["HealthCheckConfig"]))
            elif kind == "AWS::WAFv2::WebACL":
                self.web_acls += 1
                self.web_acl_rules += len(props.get("Rules", []))
            elif kind == "AWS::WAFv2::WebACLAssociation":
                self.web_acl_regions.add(region)
            elif kind in ("AWS::KMS::Key", "AWS::KMS::ReplicaKey"):
                self.kms_keys += 1
            elif kind == "AWS::SecretsManager::Secret":
                self.secrets += 1 + len(props.get("ReplicaRegions", []))
            elif kind in ("AWS::SQS::Queue", "AWS::SNS::Topic") and props.get("KmsMasterKeyId"):
                self.kms_encrypted_resources += 1
            elif kind == "AWS::CloudWatch::Alarm":
                # An alarm is billed per metric it evaluates; a math expression's own entry is free.
                self.alarm_metrics += sum(1 for m in props.get("Metrics", []) if "MetricStat" in m) or 1
            elif kind == "AWS::XRay::SamplingRule":
                rule = props["SamplingRule"]
                self.sampling_rules.append(
                    SamplingRule(
                        priority=int(rule["Priority"]),
                        url_path=rule["URLPath"],
                        http_method=rule["HTTPMethod"],
                        reservoir_per_second=float(rule["ReservoirSize"]),
                        fixed_rate=float(rule["FixedRate"]),
                    )
                )
            elif kind == "Custom::AWS" and "putMetricAlarm" in json.dumps(props.get("Create", "")):
                self.alarm_metrics += 1  # an alarm a deploy-time call makes (in the peer region)
            elif kind == "AWS::CloudWatch::Dashboard":
                self.dashboards += 1
            elif kind == "AWS::Logs::LogGroup":
                self.log_retention_days.append(int(props.get("RetentionInDays", 3653)))
                self.kms_encrypted_resources += 1 if props.get("KmsKeyId") else 0
            elif kind == "AWS::Lambda::EventSourceMapping" and _refers_to_kind(
                props.get("EventSourceArn"), "AWS::SQS::Queue", resources
            ):
                self.sqs_event_sources += 1
            if kind == "AWS::Serverless::Function":
                self.sqs_event_sources += sum(
                    1 for e in (props.get("Events") or {}).values() if e["Type"] == "SQS"
                )


def _refers_to_kind(value: Any, kind: str, resources: dict[str, Any]) -> bool:
    """Whether ``value`` (a Ref or GetAtt) names a resource of ``kind`` in the same template."""
    text = json.dumps(value)
    return any(resources.get(name, {}).get("Type") == kind for name in re.findall(r'"([A-Za-z0-9]+)"', text))


def _function_role(logical_id: str, props: dict[str, Any], resources: dict[str, Any]) -> str | None:
    events = props.get("Events")
    if events is not None or "CodeUri" in props:  # SAM
        types = {e["Type"] for e in (events or {}).values()}
        if "webhooks" in json.dumps(props.get("FunctionName", "")):
            return WEBHOOKS
        return (
            PROCESSOR
            if "SQS" in types
            else NOTIFIER
            if "DynamoDB" in types
            else ORCHESTRATOR
            if "SNS" in types
            else CANARY
            if "Schedule" in types
            else API
        )
    for resource in resources.values():
        other = resource.get("Properties", {})
        refers = logical_id in json.dumps(other.get("FunctionName", other.get("Endpoint", "")))
        if not refers:
            continue
        if resource["Type"] == "AWS::Lambda::EventSourceMapping":
            sqs = _refers_to_kind(other.get("EventSourceArn"), "AWS::SQS::Queue", resources)
            return PROCESSOR if sqs else NOTIFIER
        if resource["Type"] == "AWS::SNS::Subscription":
            return ORCHESTRATOR
        if (
            resource["Type"] == "AWS::Lambda::Permission"
            and other.get("Principal") == "apigateway.amazonaws.com"
        ):
            return API
    return None  # a deployment-time function (a custom resource's): not billed per payment


def _function(
    region: str, role: str, props: dict[str, Any], logical_id: str, resources: dict[str, Any]
) -> Function:
    batch_size, window = 1, 0.0
    sources = [
        e["Properties"] for e in (props.get("Events") or {}).values() if e["Type"] in ("SQS", "DynamoDB")
    ]
    sources += [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Lambda::EventSourceMapping"
        and logical_id in json.dumps(r["Properties"].get("FunctionName"))
    ]
    if sources:
        # Lambda's defaults: 10 messages from SQS, 100 records from a stream, no batching window.
        batch_size = int(sources[0].get("BatchSize", 10 if role == PROCESSOR else 100))
        window = float(sources[0].get("MaximumBatchingWindowInSeconds", 0))
    schedules = [
        e["Properties"]["Schedule"] for e in (props.get("Events") or {}).values() if e["Type"] == "Schedule"
    ]
    return Function(
        region=region,
        role=role,
        schedule_s=_rate_seconds(schedules[0]) if schedules else 0.0,
        memory_gb=int(props.get("MemorySize", 128)) / 1024,
        arm64=props.get("Architectures") == ["arm64"],
        traced=props.get("Tracing") == "Active" or props.get("TracingConfig", {}).get("Mode") == "Active",
        batch_size=batch_size,
        batching_window_s=window,
    )


def _rate_seconds(expression: str) -> float:
    """Seconds between runs of ``rate(N unit)``."""
    count, unit = expression.removeprefix("rate(").removesuffix(")").split()
    return (
        int(count)
        * {"minute": 60, "minutes": 60, "hour": 3600, "hours": 3600, "day": 86400, "days": 86400}[unit]
    )


def _api(region: str, method_settings: list[dict[str, Any]], props: dict[str, Any]) -> Api:
    everything = next((m for m in method_settings if m.get("ResourcePath") == "/*"), {})
    return Api(
        region=region,
        logging_level=str(everything.get("LoggingLevel", "OFF")),
        data_trace=bool(everything.get("DataTraceEnabled", False)),
        access_log_format=str((props.get("AccessLogSetting") or {}).get("Format", "")),
        traced=bool(props.get("TracingEnabled", False)),
    )


def _tables(region: str, props: dict[str, Any], resources: dict[str, Any]) -> list[Table]:
    name = props.get("TableName", "")
    # The tables a payment writes; the others (clients, webhook endpoints) hold no item per payment.
    if "idempotency" in json.dumps(name).lower():
        kind = "idempotency"
    elif isinstance(name, str) and is_payments_table(name):
        kind = "payments"
    else:
        kind = "other"
    index_keys = tuple(
        tuple(k["AttributeName"] for k in index["KeySchema"])
        for index in props.get("GlobalSecondaryIndexes", [])
    )
    shape: dict[str, Any] = {
        "index_keys": index_keys,
        "index_projections": tuple(
            str(index["Projection"]["ProjectionType"]) for index in props.get("GlobalSecondaryIndexes", [])
        ),
        "keys": tuple(k["AttributeName"] for k in props.get("KeySchema", [])),
    }
    if "Replicas" in props:  # AWS::DynamoDB::GlobalTable: one table per replica region
        return [
            Table(
                region=replica["Region"],
                kind=kind,
                point_in_time_recovery=bool(
                    (replica.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled")
                ),
                customer_managed_key=bool((replica.get("SSESpecification") or {}).get("KMSMasterKeyId")),
                **shape,
            )
            for replica in props["Replicas"]
        ]
    # AWS::DynamoDB::Table, with replicas made by CDK's custom resource (the seed's replication_regions).
    replica_regions = [
        r["Properties"]["Region"] for r in resources.values() if r["Type"] == "Custom::DynamoDBReplica"
    ]
    return [
        Table(
            region=table_region,
            kind=kind,
            point_in_time_recovery=bool(
                (props.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled")
            ),
            customer_managed_key=(props.get("SSESpecification") or {}).get("SSEType") == "KMS",
            **shape,
        )
        for table_region in [region, *replica_regions]
    ]


def _health_check(region: str, config: dict[str, Any]) -> HealthCheck:
    kind = str(config["Type"])
    features = sum(
        (
            kind.startswith("HTTPS"),
            kind.endswith("STR_MATCH"),
            int(config.get("RequestInterval", 30)) == 10,
            bool(config.get("MeasureLatency", False)),
        )
    )
    return HealthCheck(
        region=region,
        type=kind,
        request_interval_s=int(config.get("RequestInterval", 30)),
        optional_features=features,
    )
