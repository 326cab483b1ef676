"""The cost model reads what the templates deploy: ours and the seed's, on the same lines."""

from __future__ import annotations

import pytest
from aws_cdk import cx_api

from bench.cost import VOLUMES, monthly
from bench.deployment import API, CANARY, NOTIFIER, ORCHESTRATOR, PROCESSOR, WEBHOOKS, Deployment
from bench.seed_stack import seed_templates
from chalicelib.names import PAYMENT_QUEUE, Handler
from stacks.functions import FUNCTIONS

# Per payment, as bench.requests_per_payment measures it (figures of one run, rounded).
USAGE = {
    "requests": {"sqs:SendMessage": 1.0},
    "handler_ms": {"validate": 12.0, "process": 4.0, "notify": 1.0, "health": 0.5},
    "log_bytes": {"validate": 460.0, "process": 270.0, "notify": 10.0, "health": 0.0},
    "write_units": {"payments": 4.0},
    "replicated_units": {"payments": 2.0},
    "read_units": {},
    "stored": [
        {"table": "payments", "attributes": ["transaction_id", "timestamp", "customer_id"], "bytes": 480.0}
    ],
    "published": 1.0,
    "metrics": ["PaymentProcessing/PaymentValidated[service=payments]"],
}


@pytest.fixture(scope="module")
def ours(assembly: cx_api.CloudAssembly) -> Deployment:
    return Deployment.from_templates((s.environment.region, s.template) for s in assembly.stacks)


@pytest.fixture(scope="module")
def seed() -> Deployment:
    return Deployment.from_templates(seed_templates("us-east-1", "us-east-2"))


def test_our_functions_per_region_are_read_with_their_memory_architecture_and_batching(
    ours: Deployment,
) -> None:
    for region in ours.regions[-2:]:
        functions = {f.role: f for f in ours.functions if f.region == region}
        assert set(functions) == {API, PROCESSOR, NOTIFIER, ORCHESTRATOR, CANARY, WEBHOOKS}
        assert all(f.arm64 and f.traced for f in functions.values())
        assert functions[API].memory_gb == FUNCTIONS[Handler.API].memory_mb / 1024
        assert functions[PROCESSOR].batch_size == PAYMENT_QUEUE.processor_batch_size
        assert functions[PROCESSOR].batching_window_s == PAYMENT_QUEUE.processor_batching_window_seconds


def test_the_seed_is_read_from_its_own_template_on_x86_without_waf_keys_or_tracing(seed: Deployment) -> None:
    assert {f.role for f in seed.functions} == {API, PROCESSOR, ORCHESTRATOR}
    assert not any(f.arm64 or f.traced for f in seed.functions)
    assert (seed.web_acls, seed.kms_keys, seed.health_checks) == (0, 0, [])
    assert seed.dashboards == 2 and seed.alarm_metrics == 8
    assert {(t.region, t.point_in_time_recovery) for t in seed.tables} == {
        ("us-east-1", True),
        ("us-east-2", True),
    }


def test_every_security_and_monitoring_resource_of_ours_is_billed_even_with_no_payment(
    ours: Deployment,
) -> None:
    fixed = monthly(ours, USAGE, 0)

    assert fixed["WAF"] >= 2 * 5.0 + ours.web_acl_rules * 1.0
    assert fixed["KMS"] >= ours.kms_keys * 1.0 > 0
    assert fixed["CloudWatch alarms"] == pytest.approx(ours.alarm_metrics * 0.10)
    assert fixed["CloudWatch dashboards"] == pytest.approx(ours.dashboards * 3.0)
    # With no client payment, the tables still take the canary's: one a minute from each region.
    canary_payments = 2 * 30 * 24 * 60
    assert fixed["DynamoDB writes"] == pytest.approx(canary_payments * 4.0 / 1e6 * 0.625)


def test_variable_lines_grow_with_payments_and_replicated_writes_follow_the_replicas(
    ours: Deployment,
) -> None:
    fixed, low, high = (monthly(ours, USAGE, volume) for volume in (0, *VOLUMES))
    replicas = len({t.region for t in ours.tables if t.kind == "payments"})

    def added(lines: dict[str, float], line: str) -> float:
        return lines[line] - fixed[line]

    assert added(high, "DynamoDB writes") == pytest.approx(100 * added(low, "DynamoDB writes"))
    assert added(low, "DynamoDB replicated writes") == pytest.approx(
        VOLUMES[0] * 2.0 * (replicas - 1) / 1e6 * 0.625
    )
    assert high["X-Ray"] < 100 * low["X-Ray"]  # sampling: beyond the reservoir, 5 % of requests


def test_payments_split_between_the_regions_are_billed_in_both(ours: Deployment) -> None:
    """Active-active: the same requests and handler time in all, each region's reservoir used."""
    volume = VOLUMES[-1]
    one_region = monthly(ours, USAGE, volume)
    both = monthly(ours, USAGE, volume, dict.fromkeys(ours.regions[-2:], 0.5))

    assert both["API Gateway"] == pytest.approx(one_region["API Gateway"])
    assert both["Lambda duration"] == pytest.approx(one_region["Lambda duration"])
    # X-Ray records the first request each second in each region before sampling 5 % of the rest.
    assert both["X-Ray"] > one_region["X-Ray"]


def test_each_region_writes_its_own_indexes_for_every_put_item_holding_their_keys(ours: Deployment) -> None:
    """GSI updates are billed as plain write units in every replica's region (AWS's global tables billing)."""
    claim = ["transaction_id", "timestamp", "events_of", "event_time", "record"]
    record = ["transaction_id", "timestamp", "customer_id", "amount"]
    usage = {
        **USAGE,
        "stored": [
            {"table": "payments", "attributes": claim, "bytes": 400.0, "items": 1.0},
            {"table": "payments", "attributes": record, "bytes": 300.0, "items": 1.0},
        ],
    }
    replicas = len({t.region for t in ours.tables if t.kind == "payments"})
    volume = VOLUMES[0]

    added = (
        monthly(ours, usage, volume)["DynamoDB index writes"]
        - monthly(ours, usage, 0)["DynamoDB index writes"]
    )

    # The claim in the events index, the record in the customer index: two units a payment a region.
    assert added == pytest.approx(volume * 2 * replicas / 1e6 * 0.625)
    assert monthly(ours, USAGE, volume)["DynamoDB index writes"] == 0  # no item counted, none written


def test_a_keys_only_index_stores_the_keys_and_point_in_time_recovery_prices_the_table_alone(
    ours: Deployment,
) -> None:
    claim = {
        "transaction_id": 30.0,
        "timestamp": 10.0,
        "events_of": 20.0,
        "event_time": 15.0,
        "record": 700.0,
    }
    usage = {
        **USAGE,
        "stored": [
            {
                "table": "payments",
                "attributes": list(claim),
                "bytes": sum(claim.values()) + 100,
                "items": 1.0,
                "attribute_bytes": claim,
            }
        ],
    }
    volume = VOLUMES[-1]
    lines = monthly(ours, usage, volume)
    payments_regions = {t.region for t in ours.tables if t.kind == "payments"}
    gb = volume * len(payments_regions) / 1e9

    # The events index (keys only) holds the four keys and the item overhead, not the 700-byte record.
    assert lines["DynamoDB storage"] == pytest.approx(gb * (875 + 175) * 0.25, rel=1e-3)
    assert lines["DynamoDB point-in-time recovery"] == pytest.approx(gb * 875 * 0.20, rel=1e-3)
