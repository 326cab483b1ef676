"""Monthly cost at 1 million and 100 million payments, ours against the seed, every billed line.

Both designs are priced on the same lines, from two inputs and nothing typed per design:
- what their synthesized templates deploy (:mod:`bench.deployment`): ours from the CDK app with a
  Route 53 domain, the seed's from :mod:`bench.seed_stack`;
- what their handlers did per payment, measured in the same run (:mod:`bench.requests_per_payment`):
  AWS requests, DynamoDB capacity and bytes stored, messages published, metrics emitted, log bytes
  and handler time (against moto on loopback, a stand-in for AWS latency applied alike to both).

Prices and the few assumptions about AWS's own behaviour are in ``bench/prices.json``, dated, with
a note on each. The fixed part (what a month costs with no payment) is printed apart.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.deployment import API, CANARY, NOTIFIER, PROCESSOR, Deployment, Function, SamplingRule, Table
from bench.requests_per_payment import ITEM_OVERHEAD_BYTES
from chalicelib.names import API_STAGE, DEFAULT_WITNESS_REGION, HEALTH_PATH, Topology

PRICES = Path(__file__).resolve().parent / "prices.json"
VOLUMES = (1_000_000, 100_000_000)
# Route 53 settings as a production deployment has them; the zone is an example, never contacted.
DOMAIN_CONTEXT = {
    "domain_name": "pay.example.com",
    "hosted_zone_id": "Z0EXAMPLE",
    "hosted_zone_name": "example.com",
}
# Active-active as `cdk deploy -c topology=active-active -c strong_consistency_witness=...` makes it.
ACTIVE_ACTIVE_CONTEXT = Topology.ACTIVE_ACTIVE.value
WITNESS_REGION = DEFAULT_WITNESS_REGION
# Lines paid for security rather than for moving payments (see docs/benchmarks.md, "Cost").
SECURITY_LINES = ("WAF", "KMS")
# Typical widths of API Gateway access-log variables; any other variable counts the assumed default.
CONTEXT_VARIABLE = re.compile(r"\$context\.[A-Za-z.]+")
ACCESS_LOG_WIDTHS = {"requestId": 36, "requestTime": 26, "sourceIp": 13, "httpMethod": 4, "status": 3}


def monthly(
    deployment: Deployment, usage: dict[str, Any], payments: float, shares: Mapping[str, float] | None = None
) -> dict[str, float]:
    """Dollars a month for ``payments`` payments, by line.

    ``shares``: the part of the payments each region takes (default: all in the first region, as
    active-passive sends them; active-active splits them).
    """
    prices = json.loads(PRICES.read_text())
    a = prices["assumptions"]
    seconds = a["seconds_per_month"]
    primary = deployment.regions[0]
    shares = shares if shares is not None else {primary: 1.0}

    # The observer's canary: each run is a real payment (POST /process, then its read) in the peer.
    canary_runs = {region: 0.0 for region in deployment.regions}
    for function in deployment.functions_in(CANARY):
        target = next(r for r in deployment.regions if r != function.region)
        canary_runs[target] += seconds / function.schedule_s if function.schedule_s else 0.0
    health_requests = {region: 0.0 for region in deployment.regions}
    for check in deployment.health_checks:
        if check.sends_requests:
            health_requests[check.region] += (
                a["route53_checkers_per_health_check"] * seconds / check.request_interval_s
            )
    api_requests = {
        region: health_requests[region]
        + 2 * canary_runs[region]
        + payments * a["api_requests_per_payment"] * shares.get(region, 0.0)
        for region in deployment.regions
    }
    # What the canary's payments add to every per-payment line (tables, topics, notifier).
    payments += sum(canary_runs.values())

    def batches(function: Function, taken: float) -> float:
        # Without a batching window Lambda invokes with what one poll finds: at these rates, one each.
        per_batch = min(function.batch_size, max(1.0, taken / seconds * function.batching_window_s))
        return taken / per_batch

    ms = usage["handler_ms"]
    invocations: dict[str, float] = {}
    gb_seconds: dict[bool, float] = {True: 0.0, False: 0.0}
    for function in deployment.functions:
        if function.role == API:
            calls = api_requests[function.region]
            busy = (calls - health_requests[function.region]) * ms.get("validate", 0.0) + health_requests[
                function.region
            ] * ms.get("health", ms.get("validate", 0.0))
        elif function.role == CANARY:
            calls = seconds / function.schedule_s if function.schedule_s else 0.0
            busy = calls * a["canary_run_ms"]
        elif function.role in (PROCESSOR, NOTIFIER) and shares.get(function.region):
            taken = payments * shares[function.region]
            calls = batches(function, taken)
            busy = taken * ms.get("process" if function.role == PROCESSOR else "notify", 0.0)
        else:
            continue  # the orchestrator, and functions of a region taking no payments, see none
        invocations[f"{function.region}/{function.role}"] = calls
        gb_seconds[function.arm64] += busy / 1000 * function.memory_gb

    lines: dict[str, float] = {}
    lines["API Gateway"] = (
        sum(api_requests.values()) / 1e6 * prices["api_gateway_rest_per_million_requests_usd"]
    )
    lines["WAF"] = (
        deployment.web_acls * prices["waf_web_acl_per_month_usd"]
        + deployment.web_acl_rules * prices["waf_rule_per_month_usd"]
        + sum(api_requests[r] for r in deployment.web_acl_regions)
        / 1e6
        * prices["waf_per_million_requests_usd"]
    )
    lines["Lambda requests"] = sum(invocations.values()) / 1e6 * prices["lambda_per_million_requests_usd"]
    lines["Lambda duration"] = (
        gb_seconds[True] * prices["lambda_arm64_gb_second_usd"]
        + gb_seconds[False] * prices["lambda_gb_second_usd"]
    )

    replicas = {
        kind: {t.region for t in deployment.tables if t.kind == kind} for kind in ("payments", "idempotency")
    }
    lines["DynamoDB writes"] = (
        payments
        * sum(usage["write_units"].values())
        / 1e6
        * prices["dynamodb_on_demand_per_million_write_units_usd"]
    )
    lines["DynamoDB replicated writes"] = (
        payments
        * sum(
            units * max(0, len(replicas.get(kind, ())) - 1)
            for kind, units in usage["replicated_units"].items()
        )
        / 1e6
        * prices["dynamodb_on_demand_per_million_replicated_write_units_usd"]
    )
    # Every replica updates its own indexes, billed as plain write units (not replicated ones).
    lines["DynamoDB index writes"] = (
        payments
        * _index_write_units(deployment, usage)
        / 1e6
        * prices["dynamodb_on_demand_per_million_write_units_usd"]
    )
    lines["DynamoDB reads"] = (
        payments
        * sum(usage["read_units"].values())
        / 1e6
        * prices["dynamodb_on_demand_per_million_read_units_usd"]
    )
    stored_gb = _stored_gb(deployment, usage, payments, seconds)
    lines["DynamoDB storage"] = (
        sum(total for total, _ in stored_gb.values()) * prices["dynamodb_storage_per_gb_month_usd"]
    )
    # Point-in-time recovery is priced on the table's size, its global secondary indexes left out
    # (AWS: "based on the size of table and local secondary indexes").
    lines["DynamoDB point-in-time recovery"] = (
        sum(base for (region, kind), (_, base) in stored_gb.items() if _pitr(deployment, region, kind))
        * prices["dynamodb_pitr_per_gb_month_usd"]
    )

    sends = sum(
        n for api, n in usage["requests"].items() if api.startswith("sqs:") and "EventSource" not in api
    )
    processor_polls = 2 * sum(v for k, v in invocations.items() if k.endswith(PROCESSOR))
    idle_polls = (
        deployment.sqs_event_sources * a["sqs_event_source_pollers"] * seconds / a["sqs_long_poll_seconds"]
    )
    lines["SQS"] = (
        (payments * sends + processor_polls + idle_polls)
        / 1e6
        * prices["sqs_standard_per_million_requests_usd"]
    )
    lines["SNS"] = payments * usage["published"] / 1e6 * prices["sns_per_million_publishes_usd"]

    cmk_users = deployment.kms_encrypted_resources + sum(t.customer_managed_key for t in deployment.tables)
    kms_requests = cmk_users * 2 * seconds / a["kms_data_key_reuse_seconds"]
    lines["KMS"] = (
        deployment.kms_keys * prices["kms_key_per_month_usd"]
        + kms_requests / 1e4 * prices["kms_per_10k_requests_usd"]
    )

    log_bytes = 0.0
    for function in deployment.functions:
        calls = invocations.get(f"{function.region}/{function.role}", 0.0)
        log_bytes += calls * (
            a["lambda_platform_log_bytes_per_invocation"]
            + (a["lambda_xray_log_bytes_per_invocation"] if function.traced else 0)
        )
    log_bytes += payments * sum(
        usage["log_bytes"].get(name, 0.0) for name in ("validate", "process", "notify")
    ) + sum(health_requests.values()) * usage["log_bytes"].get("health", 0.0)
    for api in deployment.apis:
        per_request = a["api_execution_log_bytes_per_request"].get(api.logging_level, 0) + (
            a["api_data_trace_log_bytes_per_request"] if api.data_trace else 0
        )
        per_request += _access_log_line_bytes(api.access_log_format, a["api_access_log_value_bytes"])
        log_bytes += api_requests[api.region] * per_request
    retention = max(deployment.log_retention_days or [30])
    lines["CloudWatch Logs"] = (
        log_bytes
        / 1e9
        * (
            prices["cloudwatch_logs_ingestion_per_gb_usd"]
            + min(retention, 30) / 30 * prices["cloudwatch_logs_storage_per_gb_month_usd"]
        )
    )
    lines["CloudWatch metrics"] = (
        len(usage["metrics"]) * prices["cloudwatch_custom_metric_per_month_usd"]
        + payments
        * usage["requests"].get("cloudwatch:PutMetricData", 0.0)
        / 1000
        * prices["cloudwatch_put_metric_data_per_thousand_requests_usd"]
    )
    lines["CloudWatch alarms"] = deployment.alarm_metrics * prices["cloudwatch_alarm_per_metric_month_usd"]
    lines["CloudWatch dashboards"] = deployment.dashboards * prices["cloudwatch_dashboard_per_month_usd"]

    def recorded(requests: float, rule: SamplingRule | None) -> float:
        reservoir = rule.reservoir_per_second if rule else a["xray_reservoir_per_second"]
        rate = rule.fixed_rate if rule else a["xray_fixed_rate"]
        per_second = requests / seconds
        return (min(per_second, reservoir) + rate * max(0.0, per_second - reservoir)) * seconds

    health_rule = deployment.sampling_rule_for(f"/{API_STAGE}{HEALTH_PATH}", "GET")
    traces = 0.0
    for region in deployment.regions:
        api_traced = any(x.traced for x in deployment.apis if x.region == region) or any(
            f.traced for f in deployment.functions_in(API) if f.region == region
        )
        entries = api_requests[region] - health_requests[region] if api_traced else 0.0
        if any(f.traced for f in deployment.functions_in(NOTIFIER) if f.region == region):
            entries += invocations.get(f"{region}/{NOTIFIER}", 0.0)
        traces += recorded(entries, None) + (
            recorded(health_requests[region], health_rule) if api_traced else 0.0
        )
    lines["X-Ray"] = traces / 1e6 * prices["xray_per_million_traces_recorded_usd"]
    # The stacks' own client (the canary); each merchant client adds the same, $0.80 a month.
    lines["Secrets Manager"] = deployment.secrets * prices["secretsmanager_secret_per_month_usd"]
    lines["Route 53 health checks"] = sum(
        prices["route53_health_check_aws_endpoint_per_month_usd"]
        + c.optional_features * prices["route53_health_check_optional_feature_per_month_usd"]
        for c in deployment.health_checks
    )
    return lines


def _replicas_written_per_payment(deployment: Deployment) -> list[Table]:
    """Each region's copy of the payments and idempotency tables, once each."""
    # The seed's secondary stack declares the table its primary replicates into: a second copy.
    found: dict[tuple[str, str], Table] = {}
    for table in deployment.tables:
        if table.kind in ("payments", "idempotency"):
            found.setdefault((table.region, table.kind), table)
    return list(found.values())


def _stored_gb(
    deployment: Deployment, usage: dict[str, Any], payments: float, seconds: int
) -> dict[tuple[str, str], tuple[float, float]]:
    """GB stored a month, by (region, table): in all (the table and its indexes) and in the table
    alone; a month's payments, and the idempotency records alive at once."""
    from chalicelib.schema import IdempotencyKeys

    alive = {"payments": 1.0, "idempotency": min(1.0, IdempotencyKeys.TTL_SECONDS / seconds)}
    stored: dict[tuple[str, str], tuple[float, float]] = {}
    for table in _replicas_written_per_payment(deployment):
        base = indexed = 0.0
        for item in usage["stored"]:
            if item["table"] != table.kind:
                continue
            base += item["bytes"]
            indexed += sum(_projected_bytes(table, index, item) for index in range(len(table.index_keys)))
        scale = payments * alive[table.kind] / 1e9
        stored[(table.region, table.kind)] = ((base + indexed) * scale, base * scale)
    return stored


def _projected_bytes(table: Table, index: int, item: dict[str, Any]) -> float:
    """What index ``index`` of ``table`` stores of a kind of item, per payment: nothing if the item
    lacks its keys; the whole item (ALL); or its keys and the table's, and the per-item overhead."""
    keys = table.index_keys[index]
    if not set(keys) <= set(item["attributes"]):
        return 0.0
    projection = table.index_projections[index] if index < len(table.index_projections) else "ALL"
    if projection != "KEYS_ONLY" or not item.get("attribute_bytes"):
        return float(item["bytes"])
    sizes = item["attribute_bytes"]
    return sum(sizes.get(name, 0.0) for name in {*keys, *table.keys}) + ITEM_OVERHEAD_BYTES * item.get(
        "items", 1.0
    )


def _index_write_units(deployment: Deployment, usage: dict[str, Any]) -> float:
    """Index write units per payment, in every region: one per KB each put item projects into an index."""
    units = 0.0
    for table in _replicas_written_per_payment(deployment):
        for item in usage["stored"]:
            if item["table"] != table.kind or not item.get("items"):
                continue
            for index in range(len(table.index_keys)):
                projected = _projected_bytes(table, index, item)
                if projected:
                    units += item["items"] * max(1, math.ceil(projected / item["items"] / 1024))
    return units


def _pitr(deployment: Deployment, region: str, kind: str) -> bool:
    return any(t.point_in_time_recovery for t in deployment.tables if t.region == region and t.kind == kind)


def _access_log_line_bytes(log_format: str, default_width: int) -> float:
    """The length of one access-log line: the format with each ``$context`` variable at a typical width."""
    if not log_format:
        return 0.0
    variables = [v.rsplit(".", 1)[-1] for v in CONTEXT_VARIABLE.findall(log_format)]
    literal = len(CONTEXT_VARIABLE.sub("", log_format))
    return literal + sum(ACCESS_LOG_WIDTHS.get(v, default_width) for v in variables) + 1


def our_deployment(**context: str) -> Deployment:
    """Our templates, synthesized as a production deployment with a Route 53 domain (and ``context``)."""
    from stacks.synthesis import synthesize_assembly

    with tempfile.TemporaryDirectory(prefix="cost-synth-") as outdir:
        assembly = synthesize_assembly(Path(outdir), **DOMAIN_CONTEXT, **context)
        return Deployment.from_templates((s.environment.region, s.template) for s in assembly.stacks)


def seed_deployment(regions: list[str]) -> Deployment:
    from bench.seed_stack import seed_templates

    return Deployment.from_templates(seed_templates(regions[0], regions[1]))


def run(measured: dict[str, Any]) -> dict[str, Any]:
    """Both designs' cost lines at each volume and with no payment, from a requests_per_payment run."""
    ours_deployment = our_deployment()
    seed = seed_deployment(ours_deployment.regions)
    result: dict[str, Any] = {"as_of": json.loads(PRICES.read_text())["as_of"], "volumes": {}}
    for volume in (0, *VOLUMES):
        ours_lines = monthly(ours_deployment, measured["ours_usage"], volume)
        seed_lines = monthly(seed, measured["seed_usage"], volume)
        result["volumes"][volume] = {
            "ours": ours_lines,
            "seed": seed_lines,
            "ours_total": sum(ours_lines.values()),
            "seed_total": sum(seed_lines.values()),
            "ratio": sum(ours_lines.values()) / sum(seed_lines.values()),
            "ratio_without_security": sum(v for k, v in ours_lines.items() if k not in SECURITY_LINES)
            / sum(v for k, v in seed_lines.items() if k not in SECURITY_LINES),
        }
    result["active_active"] = active_active(measured, ours_deployment)
    return result


def active_active(measured: dict[str, Any], active_passive: Deployment) -> dict[str, Any]:
    """What active-active adds to today's default (active-passive, eventually consistent), by line.

    Its templates (latency records, the payments table strongly consistent with a witness) priced
    with the payments split evenly between the regions, each region's processor and notifier
    taking its half; the handlers' usage per payment is the same in either mode.
    """
    deployment = our_deployment(topology=ACTIVE_ACTIVE_CONTEXT, strong_consistency_witness=WITNESS_REGION)
    shares = {region: 1 / len(deployment.regions) for region in deployment.regions}
    volumes = {}
    for volume in (0, *VOLUMES):
        passive = monthly(active_passive, measured["ours_usage"], volume)
        active = monthly(deployment, measured["ours_usage"], volume, shares)
        volumes[volume] = {"active_passive": passive, "active_active": active}
    return {"witness": WITNESS_REGION, "volumes": volumes}


def active_active_table(result: dict[str, Any]) -> list[str]:
    """The lines active-active changes, and the totals, at each volume: active-passive, active-active."""
    volumes = result["active_active"]["volumes"]
    columns = (0, *VOLUMES)
    changed = [
        line
        for line in volumes[0]["active_passive"]
        if any(
            abs(volumes[v]["active_active"][line] - volumes[v]["active_passive"][line]) >= 0.005
            for v in columns
        )
    ]

    def label(volume: int) -> str:
        return "fixed" if volume == 0 else f"{volume // 1_000_000}M"

    header = "| line |" + "".join(
        f" active-passive, {label(v)} | active-active, {label(v)} |" for v in columns
    )
    rows = [header, "|---" * (1 + 2 * len(columns)) + "|"]
    for line in changed:
        cells = [volumes[v][kind][line] for v in columns for kind in ("active_passive", "active_active")]
        rows.append(f"| {line} | " + " | ".join(f"{c:,.2f}" for c in cells) + " |")
    totals = [sum(volumes[v][kind].values()) for v in columns for kind in ("active_passive", "active_active")]
    rows.append("| **total** | " + " | ".join(f"**{c:,.2f}**" for c in totals) + " |")
    added = "; ".join(
        f"{label(v)}: +{sum(volumes[v]['active_active'].values()) - sum(volumes[v]['active_passive'].values()):,.2f} "
        f"({sum(volumes[v]['active_active'].values()) / sum(volumes[v]['active_passive'].values()):.2f}x)"
        for v in columns
    )
    return [*rows, "", f"What active-active adds a month, US dollars: {added}.", ""]


def table(result: dict[str, Any]) -> list[str]:
    """The cost table as Markdown lines: fixed monthly part, then each volume, ours against the seed."""
    fixed = result["volumes"][0]
    header = "| line | ours, fixed | seed, fixed |" + "".join(
        f" ours, {v // 1_000_000}M | seed, {v // 1_000_000}M |" for v in VOLUMES
    )
    rows = [header, "|---" * (3 + 2 * len(VOLUMES)) + "|"]
    for line in fixed["ours"]:
        cells = [fixed["ours"][line], fixed["seed"][line]]
        for volume in VOLUMES:
            cells += [result["volumes"][volume]["ours"][line], result["volumes"][volume]["seed"][line]]
        rows.append(f"| {line} | " + " | ".join(f"{c:,.2f}" for c in cells) + " |")
    totals = [fixed["ours_total"], fixed["seed_total"]]
    for volume in VOLUMES:
        totals += [result["volumes"][volume]["ours_total"], result["volumes"][volume]["seed_total"]]
    rows.append("| **total** | " + " | ".join(f"**{c:,.2f}**" for c in totals) + " |")
    ratios = "; ".join(
        f"{v // 1_000_000}M payments: ours {result['volumes'][v]['ratio']:.2f}x the seed "
        f"({result['volumes'][v]['ratio_without_security']:.2f}x without {' and '.join(SECURITY_LINES)})"
        for v in VOLUMES
    )
    return [*rows, "", f"US dollars a month, list prices of {result['as_of']}. {ratios}.", ""]


def per_payment_ratio(result: dict[str, Any]) -> float:
    """Variable cost of ours over the seed's: what a payment adds, with the fixed part taken out."""
    high, fixed = result["volumes"][VOLUMES[-1]], result["volumes"][0]
    return (high["ours_total"] - fixed["ours_total"]) / (high["seed_total"] - fixed["seed_total"])


def webhook_delivery(payments: float) -> dict[str, float]:
    """What delivering each payment's event to its merchant's endpoint adds a month, by line.

    From the deliverer's design (an announcement in the queue, a delivery message per endpoint, a
    retry message per failed attempt; batches of up to ten waiting on their receivers once) and
    the assumptions in ``prices.json`` (``assumptions.webhooks``).
    """
    from chalicelib.names import WEBHOOK_QUEUE, Handler
    from stacks.functions import FUNCTIONS

    prices = json.loads(PRICES.read_text())
    a = prices["assumptions"]
    w = a["webhooks"]
    seconds = a["seconds_per_month"]
    deliveries = payments * w["endpoints_per_event"]
    # A failed first attempt is delivered by the second or third: 1.5 more attempts on average,
    # each a message sent back to the queue (one hop: its delay is under 15 minutes).
    retries = deliveries * (1 - w["first_attempt_delivered"]) * 1.5
    attempts = deliveries + retries
    messages = payments + attempts  # the announcement, then each attempt's message
    per_batch = min(
        WEBHOOK_QUEUE.batch_size, max(1.0, messages / seconds * WEBHOOK_QUEUE.batching_window_seconds)
    )
    invocations = messages / per_batch
    memory_gb = FUNCTIONS[Handler.WEBHOOK_DELIVERER].memory_mb / 1024
    # A batch's deliveries run side by side: an invocation waits for its slowest receiver once.
    busy_seconds = invocations * (w["receiver_ms"] + w["handler_overhead_ms"]) / 1000
    sqs_requests = payments + deliveries + retries + 2 * invocations  # SNS's send, ours, receive + delete
    metrics = (
        w["endpoints"] * (1 + 2 * w["failing_endpoints_share"])  # delivered; failed and age when failing
        + 4  # the service-wide delivered, failed, given up and undelivered age
    )
    return {
        "SQS": sqs_requests / 1e6 * prices["sqs_standard_per_million_requests_usd"],
        "Lambda requests": invocations / 1e6 * prices["lambda_per_million_requests_usd"],
        "Lambda duration": busy_seconds * memory_gb * prices["lambda_arm64_gb_second_usd"],
        # One consistent query of the client's endpoints per announcement and per attempt.
        "DynamoDB reads": (payments + attempts)
        / 1e6
        * prices["dynamodb_on_demand_per_million_read_units_usd"],
        "CloudWatch metrics": metrics * prices["cloudwatch_custom_metric_per_month_usd"],
        "CloudWatch Logs": attempts
        * w["attempt_log_bytes"]
        / 1e9
        * (
            prices["cloudwatch_logs_ingestion_per_gb_usd"]
            + prices["cloudwatch_logs_storage_per_gb_month_usd"]
        ),
    }


def webhook_table() -> list[str]:
    """The delivery cost at each volume, by line."""
    volumes = {v: webhook_delivery(v) for v in VOLUMES}
    header = "| line |" + "".join(f" {v // 1_000_000}M payments |" for v in VOLUMES)
    rows = [header, "|---" * (1 + len(VOLUMES)) + "|"]
    for line in volumes[VOLUMES[0]]:
        rows.append(f"| {line} | " + " | ".join(f"{volumes[v][line]:,.2f}" for v in VOLUMES) + " |")
    rows.append("| **total** | " + " | ".join(f"**{sum(volumes[v].values()):,.2f}**" for v in VOLUMES) + " |")
    return rows
