"""The CDK app's stacks: the payment service in a primary and a secondary region.

``infrastructure/app.py`` (what ``cdk.json`` runs) and :mod:`stacks.synthesis` (the tests and
benchmarks) both build the app here.

Settings come from CDK context (``cdk.json`` or ``-c key=value``): ``environment_suffix``,
``primary_region``, ``secondary_region``, ``strong_consistency_witness``, ``topology``
(``active-passive``, the default, or ``active-active``, which needs the witness) and, for Route 53,
``domain_name``, ``hosted_zone_id`` and ``hosted_zone_name``.
"""

from __future__ import annotations

import os

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from stacks.account import ApiGatewayAccountStack, account_stack_id
from stacks.keys import PaymentKeyStack
from stacks.props import DeploymentSettings, PaymentStackProps
from stacks.regional_stack import PaymentRegionStack


def build_app(app: cdk.App | None = None, environment_suffix: str | None = None) -> cdk.App:
    """Add both regional stacks (and cdk-nag's AwsSolutions checks) to ``app``.

    cdk-nag runs as a validation plugin: any unacknowledged AwsSolutions finding fails synthesis.
    """
    app = app or cdk.App()
    settings = DeploymentSettings.from_context(app, environment_suffix)
    # `chalice package` needs a region even though the stacks set their own.
    os.environ.setdefault("AWS_DEFAULT_REGION", settings.primary_region)
    account = os.environ.get("CDK_DEFAULT_ACCOUNT")
    suffix = settings.environment_suffix.capitalize()
    # Both regions' keys first: the primary's global table encrypts its replica with the peer's key.
    keys = {
        region: PaymentKeyStack(
            app,
            f"Payments{suffix}Key{'Primary' if region == settings.primary_region else 'Secondary'}",
            names=settings.names,
            production=settings.production,
            env=cdk.Environment(account=account, region=region),
            description=f"Payment data key ({settings.environment_suffix}) in {region}",
        )
        for region in (settings.primary_region, settings.secondary_region)
    }
    api_gateway_accounts = {
        region: ApiGatewayAccountStack(
            app,
            account_stack_id(region),
            env=cdk.Environment(account=account, region=region),
            description=f"API Gateway account settings in {region}, shared by every payments environment",
        )
        for region in (settings.primary_region, settings.secondary_region)
    }
    stacks = []
    for is_primary in (True, False):
        props = PaymentStackProps(
            settings=settings,
            is_primary=is_primary,
            env=cdk.Environment(account=account, region=None),
        )
        stack = PaymentRegionStack(
            app,
            f"Payments{suffix}{'Primary' if is_primary else 'Secondary'}",
            props=props,
            key=keys[props.region].key,
        )
        for key_stack in keys.values():
            stack.add_dependency(key_stack)
        # The stage's execution logs need the account's logging role in place.
        stack.add_dependency(api_gateway_accounts[props.region])
        stacks.append(stack)
    # The secondary stack uses the replicas the primary's global tables create.
    stacks[1].add_dependency(stacks[0])
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app
