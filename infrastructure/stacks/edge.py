"""What stands in front of the payment API: a WAF web ACL (clients' keys: :mod:`stacks.clients`).

Both are built inside the :class:`stacks.api.PaymentApi` construct (``scope``), so their logical
ids are the ones the deployed stacks already have.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from chalicelib.names import ResourceNames
from stacks.nag import acknowledge

THROTTLING_RATE_LIMIT = 1000
THROTTLING_BURST_LIMIT = 2000
# Per client IP, per five-minute window: a merchant's servers sending 20 payments a second.
WAF_RATE_LIMIT_PER_IP = 6000
# Common-rule-set rules that refuse what the API promises to take, counted instead of blocked:
# SizeRestrictions_BODY blocks bodies over 8 KB (the API answers 413 only above 64 KiB), and
# NoUserAgent_HEADER blocks server-to-server clients that send no User-Agent.
WAF_COUNTED_COMMON_RULES = ("SizeRestrictions_BODY", "NoUserAgent_HEADER")
WAF_MANAGED_RULE_GROUPS = ("AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet")
SAM_STAGE_REFERENCE = (
    "RestAPI.Stage is SAM's documented reference to the stage it generates; it exists once the "
    "Serverless transform has run, which this offline check does not do."
)


def guard_with_waf(
    scope: Construct, names: ResourceNames, rest_api: cdk.CfnResource, stage_ref: str
) -> wafv2.CfnWebACL:
    """A regional web ACL on the stage: a per-IP rate limit, AWS's common and known-bad-inputs rules."""

    def visibility(metric: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
        return wafv2.CfnWebACL.VisibilityConfigProperty(
            cloud_watch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True
        )

    stack = cdk.Stack.of(scope)
    acl = wafv2.CfnWebACL(
        scope,
        "WebAcl",
        name=names.web_acl,
        scope="REGIONAL",
        default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
        visibility_config=visibility(names.web_acl),
        rules=[
            wafv2.CfnWebACL.RuleProperty(
                name="rate-limit-per-ip",
                priority=0,
                action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                        limit=WAF_RATE_LIMIT_PER_IP, aggregate_key_type="IP"
                    )
                ),
                visibility_config=visibility("rate-limit-per-ip"),
            ),
            *(
                wafv2.CfnWebACL.RuleProperty(
                    name=group,
                    priority=priority,
                    override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                            vendor_name="AWS",
                            name=group,
                            rule_action_overrides=[
                                wafv2.CfnWebACL.RuleActionOverrideProperty(
                                    name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
                                )
                                for rule in WAF_COUNTED_COMMON_RULES
                            ]
                            if group == "AWSManagedRulesCommonRuleSet"
                            else None,
                        )
                    ),
                    visibility_config=visibility(group),
                )
                for priority, group in enumerate(WAF_MANAGED_RULE_GROUPS, start=1)
            ),
        ],
    )
    association = wafv2.CfnWebACLAssociation(
        scope,
        "WebAclOnStage",
        web_acl_arn=acl.attr_arn,
        resource_arn=cdk.Fn.join(
            "",
            [
                f"arn:{stack.partition}:apigateway:{stack.region}::/restapis/",
                rest_api.ref,
                "/stages/",
                stage_ref,
            ],
        ),
    )
    acknowledge(association, "CloudFormation-Validate::F1020", SAM_STAGE_REFERENCE)
    return acl
