"""Route 53 routing between the two regional APIs (failover or latency), when a hosted zone and domain are given."""

from __future__ import annotations

from aws_cdk import CfnResource, Duration
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_sns as sns
from constructs import Construct

from chalicelib.failover_numbers import (
    DECISION_HEALTHY_CHILDREN,
    HEALTH_CHECK_ALARM_PERIODS,
    HEALTH_CHECK_FAILURE_THRESHOLD,
    HEALTH_CHECK_INTERVAL_SECONDS,
    canary_alarm_digest,
)
from chalicelib.names import API_STAGE, HEALTH_PATH, ResourceNames, Topology
from stacks.api import API_LOGICAL_ID

# Route 53 publishes health-check metrics in us-east-1 only: only a stack there can alarm on them.
ROUTE53_METRICS_REGION = "us-east-1"
# SAM names the stage resource it generates for the Chalice API "<api logical id><stage>Stage".
SAM_STAGE_LOGICAL_ID = f"{API_LOGICAL_ID}{API_STAGE}Stage"


class PaymentDns(Construct):
    """A regional custom domain for this region's API and its record in the domain's routing set.

    Default settings: TLS 1.2 custom domain with a DNS-validated certificate, an HTTPS health
    check on this region's ``/health`` every 30 s (unhealthy after 3 failures), a health check on
    the alarm of the peer's canary against this region (in the peer region), and an alias A
    record whose health is the calculated check of both: healthy only while ``/health`` answers
    *and* real payments go through as the peer sees them. In ``active-passive`` the record has
    the failover role PRIMARY (primary region) or SECONDARY; in ``active-active`` it is a latency
    record of this region, so each client goes to its nearest healthy region and a region whose
    check fails leaves the set. Route 53 and the peer's CloudWatch decide; nothing in this region
    is on that path, so a gray failure (``/health`` 200, payments failing) moves clients.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        domain_name: str,
        hosted_zone_id: str,
        hosted_zone_name: str,
        is_primary: bool,
        topology: Topology,
        region: str,
        rest_api: CfnResource,
        api_host: str,
        ops_alert_topic: sns.ITopic,
        alarm_name: str,
        canary_alarm: Construct,
        peer_region: str,
        names: ResourceNames,
    ) -> None:
        super().__init__(scope, construct_id)
        zone = route53.HostedZone.from_hosted_zone_attributes(
            self, "Zone", hosted_zone_id=hosted_zone_id, zone_name=hosted_zone_name
        )
        certificate = acm.Certificate(
            self, "Certificate", domain_name=domain_name, validation=acm.CertificateValidation.from_dns(zone)
        )
        domain = apigateway.CfnDomainName(
            self,
            "Domain",
            domain_name=domain_name,
            regional_certificate_arn=certificate.certificate_arn,
            endpoint_configuration=apigateway.CfnDomainName.EndpointConfigurationProperty(types=["REGIONAL"]),
            security_policy="TLS_1_2",
        )
        mapping = apigateway.CfnBasePathMapping(
            self, "Mapping", domain_name=domain.ref, rest_api_id=rest_api.ref, stage=API_STAGE
        )
        mapping.add_override("DependsOn", [SAM_STAGE_LOGICAL_ID])
        self.health_check = route53.CfnHealthCheck(
            self,
            "HealthCheck",
            health_check_config=route53.CfnHealthCheck.HealthCheckConfigProperty(
                type="HTTPS",
                fully_qualified_domain_name=api_host,
                resource_path=f"/{API_STAGE}{HEALTH_PATH}",
                port=443,
                request_interval=HEALTH_CHECK_INTERVAL_SECONDS,
                failure_threshold=HEALTH_CHECK_FAILURE_THRESHOLD,
            ),
            health_check_tags=[
                route53.CfnHealthCheck.HealthCheckTagProperty(key="Name", value=f"payments-{region}")
            ],
        )
        # A new health check whenever the alarm's definition changes: Route 53 copies the alarm's
        # settings when the check is created and would keep the old ones (names.CanarySettings).
        self.canary_check = route53.CfnHealthCheck(
            self,
            f"CanaryCheck{canary_alarm_digest()}",
            health_check_config=route53.CfnHealthCheck.HealthCheckConfigProperty(
                type="CLOUDWATCH_METRIC",
                alarm_identifier=route53.CfnHealthCheck.AlarmIdentifierProperty(
                    name=names.canary_alarm(region), region=peer_region
                ),
                # No canary data means the observer is not running, not that this region fails.
                insufficient_data_health_status="LastKnownStatus",
            ),
            health_check_tags=[
                route53.CfnHealthCheck.HealthCheckTagProperty(key="Name", value=f"payments-{region}-canary")
            ],
        )
        # Route 53 copies the alarm's settings when it creates the check: the alarm must exist.
        self.canary_check.node.add_dependency(canary_alarm)
        self.decision = route53.CfnHealthCheck(
            self,
            "Decision",
            health_check_config=route53.CfnHealthCheck.HealthCheckConfigProperty(
                type="CALCULATED",
                child_health_checks=[
                    self.health_check.attr_health_check_id,
                    self.canary_check.attr_health_check_id,
                ],
                health_threshold=DECISION_HEALTHY_CHILDREN,
            ),
            health_check_tags=[
                route53.CfnHealthCheck.HealthCheckTagProperty(key="Name", value=f"payments-{region}-decision")
            ],
        )
        alias = route53.CfnRecordSet.AliasTargetProperty(
            dns_name=domain.attr_regional_domain_name,
            hosted_zone_id=domain.attr_regional_hosted_zone_id,
            evaluate_target_health=True,
        )
        if topology is Topology.ACTIVE_ACTIVE:
            # Route 53 answers with the lowest-latency region whose decision check is healthy.
            self.record = route53.CfnRecordSet(
                self,
                "LatencyRecord",
                hosted_zone_id=zone.hosted_zone_id,
                name=domain_name,
                type="A",
                set_identifier=f"payments-{region}",
                region=region,
                health_check_id=self.decision.attr_health_check_id,
                alias_target=alias,
            )
        else:
            self.record = route53.CfnRecordSet(
                self,
                "FailoverRecord",
                hosted_zone_id=zone.hosted_zone_id,
                name=domain_name,
                type="A",
                set_identifier=f"payments-{region}",
                failover="PRIMARY" if is_primary else "SECONDARY",
                health_check_id=self.decision.attr_health_check_id,
                alias_target=alias,
            )

        if region == ROUTE53_METRICS_REGION:
            self.health_check_alarm = cloudwatch.Alarm(
                self,
                "HealthCheckAlarm",
                alarm_name=f"{alarm_name}-{region}",
                alarm_description=f"Route 53 sees {region}'s /health failing: clients are being sent to the peer.",
                metric=cloudwatch.Metric(
                    namespace="AWS/Route53",
                    metric_name="HealthCheckStatus",
                    dimensions_map={"HealthCheckId": self.health_check.attr_health_check_id},
                    statistic="Minimum",
                    period=Duration.minutes(1),
                ),
                threshold=1,  # HealthCheckStatus is 1 while healthy
                evaluation_periods=HEALTH_CHECK_ALARM_PERIODS,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
            )
            self.health_check_alarm.add_alarm_action(actions.SnsAction(ops_alert_topic))
            self.health_check_alarm.add_ok_action(actions.SnsAction(ops_alert_topic))
