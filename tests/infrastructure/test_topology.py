"""The topology switch: active-passive (failover records) or active-active (latency records, strong only).

Each check is a function returning what it finds wrong, so its planted-bad twins can show it
names the fault: the other topology's templates, a record without its health check, a disabled
event source.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from chalicelib.names import (
    DEFAULT_PRIMARY_REGION,
    DEFAULT_SECONDARY_REGION,
    DEFAULT_WITNESS_REGION,
    EnvVar,
    Topology,
)
from tests.infrastructure.cloudformation import Resource
from tests.infrastructure.conftest import deployment_of, synthesize_assembly, templates_of

DOMAIN = {
    "domain_name": "pay.example.com",
    "hosted_zone_id": "Z123EXAMPLE",
    "hosted_zone_name": "example.com",
}
WITNESS = DEFAULT_WITNESS_REGION
STACK_REGIONS = {"Primary": DEFAULT_PRIMARY_REGION, "Secondary": DEFAULT_SECONDARY_REGION}


def routing_violations(templates: dict[str, Template], topology: Topology) -> list[str]:
    """What in the regional stacks' Route 53 records does not route as ``topology`` says."""
    found = []
    for stack, template in templates.items():
        role = next((r for r in STACK_REGIONS if stack.endswith(r)), None)
        if role is None or "Key" in stack:
            continue
        region = STACK_REGIONS[role]
        resources = template.to_json()["Resources"]
        checks = {i: r for i, r in resources.items() if r["Type"] == "AWS::Route53::HealthCheck"}
        records = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Route53::RecordSet"]
        if len(records) != 1:
            found.append(f"{stack}: {len(records)} records, not one")
            continue
        [record] = records
        health = record.get("HealthCheckId", {}).get("Fn::GetAtt", [""])[0]
        if (
            checks.get(health, {}).get("Properties", {}).get("HealthCheckConfig", {}).get("Type")
            != "CALCULATED"
        ):
            found.append(f"{stack}: the record does not follow the region's calculated health check")
        if topology is Topology.ACTIVE_ACTIVE:
            if "Failover" in record:
                found.append(f"{stack}: a failover record ({record['Failover']}) in active-active")
            if record.get("Region") != region:
                found.append(f"{stack}: no latency record of {region}")
        else:
            expected = "PRIMARY" if role == "Primary" else "SECONDARY"
            if record.get("Failover") != expected:
                found.append(f"{stack}: no failover record {expected}")
            if "Region" in record:
                found.append(f"{stack}: a latency record in active-passive")
    return found


def disabled_event_sources(deployment_resources: list[Resource]) -> list[str]:
    """Event sources (queue, table stream) of a regional stack that are not live."""
    return [
        f"{m.stack}/{m.logical_id}"
        for m in deployment_resources
        if m.properties.get("Enabled", True) in (False, "false", "False")
    ]


@pytest.fixture(scope="module")
def active_active(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return synthesize_assembly(
        tmp_path_factory.mktemp("active-active"),
        topology="active-active",
        strong_consistency_witness=WITNESS,
        environment_suffix="aa",
        **DOMAIN,
    )


@pytest.fixture(scope="module")
def active_passive(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return synthesize_assembly(tmp_path_factory.mktemp("active-passive"), environment_suffix="ap", **DOMAIN)


def test_active_active_routes_by_latency_each_record_following_its_regions_health(active_active: Any) -> None:
    templates = templates_of(active_active)
    assert routing_violations(templates, Topology.ACTIVE_ACTIVE) == []
    record = next(
        r["Properties"]
        for r in templates["PaymentsAaPrimary"].to_json()["Resources"].values()
        if r["Type"] == "AWS::Route53::RecordSet"
    )
    assert record["SetIdentifier"] == f"payments-{DEFAULT_PRIMARY_REGION}"


def test_active_passive_stays_the_default_with_failover_records(active_passive: Any) -> None:
    assert routing_violations(templates_of(active_passive), Topology.ACTIVE_PASSIVE) == []


def test_the_routing_check_names_the_other_topologys_records_and_a_record_without_health(
    active_active: Any, active_passive: Any
) -> None:
    """The planted-bad twins: each topology's templates judged as the other, and an unchecked record."""
    assert any(
        "failover record" in v
        for v in routing_violations(templates_of(active_passive), Topology.ACTIVE_ACTIVE)
    )
    assert any(
        "latency record" in v
        for v in routing_violations(templates_of(active_active), Topology.ACTIVE_PASSIVE)
    )
    template = copy.deepcopy(templates_of(active_active)["PaymentsAaSecondary"].to_json())
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Route53::RecordSet":
            del resource["Properties"]["HealthCheckId"]
    unchecked = routing_violations(
        {"PaymentsAaSecondary": Template.from_json(template)}, Topology.ACTIVE_ACTIVE
    )
    assert unchecked == [
        "PaymentsAaSecondary: the record does not follow the region's calculated health check"
    ]


@pytest.mark.parametrize(("witness", "refused"), [("", True), (WITNESS, False)])
def test_active_active_is_refused_at_synthesis_without_strong_consistency(
    tmp_path: Path, witness: str, refused: bool
) -> None:
    """Refused for the eventually consistent table only: the same switch with a witness synthesizes."""
    context = {
        "topology": "active-active",
        "strong_consistency_witness": witness,
        "environment_suffix": "ref",
    }
    if refused:
        with pytest.raises(Exception, match="active-active needs multi-Region strong consistency"):
            synthesize_assembly(tmp_path, **context)
    else:
        assert synthesize_assembly(tmp_path, **context).stacks


def test_an_unknown_topology_is_refused_naming_the_choices(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="topology must be one of active-passive, active-active"):
        synthesize_assembly(tmp_path, topology="active-standby")


def test_both_regions_queues_and_streams_are_live_in_active_active(active_active: Any) -> None:
    deployment = deployment_of(active_active)
    mappings = list(deployment.resources("AWS::Lambda::EventSourceMapping"))
    by_stack: dict[str, int] = {}
    for mapping in mappings:
        by_stack[mapping.stack] = by_stack.get(mapping.stack, 0) + 1

    # The processor's queue, the notifier's table stream and the webhook deliverer's queue, in each region.
    assert by_stack == {"PaymentsAaPrimary": 3, "PaymentsAaSecondary": 3}
    assert disabled_event_sources(mappings) == []
    # The planted-bad twin: a secondary whose processor stands idle is named.
    idle = [copy.deepcopy(m) for m in mappings]
    planted = next(m for m in idle if m.stack == "PaymentsAaSecondary")
    planted.properties["Enabled"] = False
    assert disabled_event_sources(idle) == [f"PaymentsAaSecondary/{planted.logical_id}"]


def test_the_functions_tell_clients_the_tables_consistency(active_active: Any, active_passive: Any) -> None:
    """A client retries in the other region at once only when the API says the table is strong."""

    def said(assembly: Any) -> set[str]:
        return {
            function_["Properties"]["Environment"]["Variables"][EnvVar.PAYMENTS_CONSISTENCY]
            for template in templates_of(assembly).values()
            for function_ in template.find_resources("AWS::Serverless::Function").values()
        }

    assert said(active_active) == {"strong"}
    assert said(active_passive) == {"eventual"}
