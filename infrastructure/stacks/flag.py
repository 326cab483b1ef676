"""A region's in-service flag: created by the first deploy, owned from then on by the orchestrator and payments-dr.

A parameter that CloudFormation owns is rewritten whenever its text in the template changes (the
flag already gained a field once): the next ``cdk deploy`` would put a region that the
orchestrator or an operator took out back in service, without any of failback's checks, and a
deploy during an incident is exactly when that happens. So the stack only *creates* the
parameter, with a put that never overwrites, and deletes it with the stack; no update of the
stack ever writes it.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import custom_resources as cr
from constructs import Construct

from chalicelib.names import ResourceNames
from chalicelib.regions import RegionFlag
from stacks.nag import acknowledge_custom_resource_provider


def in_service_flag(scope: Construct, construct_id: str, *, names: ResourceNames) -> cr.AwsCustomResource:
    """The flag parameter, put once (in service) when the stack is created; never on an update."""
    stack = cdk.Stack.of(scope)
    name = names.in_service_parameter
    create = cr.AwsSdkCall(
        service="SSM",
        action="putParameter",
        parameters={
            "Name": name,
            "Value": RegionFlag(in_service=True).to_text(),
            "Type": "String",
            "Overwrite": False,
            "Description": "Whether this region takes payments; set by the orchestrator and payments-dr",
        },
        physical_resource_id=cr.PhysicalResourceId.of(name),
        # A flag that already exists (a stack deployed again after its deletion kept it) is kept.
        ignore_error_codes_matching="ParameterAlreadyExists",
    )
    flag = cr.AwsCustomResource(
        scope,
        construct_id,
        on_create=create,
        # No on_update: a deploy never writes the flag.
        on_delete=cr.AwsSdkCall(
            service="SSM",
            action="deleteParameter",
            parameters={"Name": name},
            ignore_error_codes_matching="ParameterNotFound",
        ),
        policy=cr.AwsCustomResourcePolicy.from_sdk_calls(
            resources=[f"arn:{stack.partition}:ssm:{stack.region}:{stack.account}:parameter{name}"]
        ),
        install_latest_aws_sdk=False,
    )
    acknowledge_custom_resource_provider(stack)
    return flag
