"""Alarms that drive failover and the dashboard operators watch."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_xray as xray
from aws_cdk import custom_resources as cr
from constructs import Construct

from chalicelib.canary import canary_alarm_definition
from chalicelib.failover_numbers import (
    ALARM_PERIOD_SECONDS,
    ANNOUNCE_FAILED,
    API_5XX,
    CONTROL_FAILURES,
    DLQ_MESSAGES,
    DYNAMODB_THROTTLES,
    LAMBDA_ERRORS,
    MISCONFIGURED_CALLS,
    NOTIFICATION_DLQ_MESSAGES,
    REPLICATION_LATENCY_MS,
    WEBHOOK_BACKLOG_SECONDS,
    WEBHOOK_DLQ_MESSAGES,
    AlarmRule,
)
from chalicelib.metrics import METRICS_NAMESPACE, Metric
from chalicelib.names import API_STAGE, HEALTH_PATH, SERVICE_NAME, ResourceNames
from chalicelib.sdk import PAYMENTS_TABLE_OPERATIONS
from stacks.nag import acknowledge_custom_resource_provider

ALARM_PERIOD = cdk.Duration.seconds(ALARM_PERIOD_SECONDS)
PAGES_ONLY = "Pages operators; never moves traffic."


class PaymentMonitoring(Construct):
    """Alarms acting on the ops-alert topic, and the ``payment-dr-{suffix}-{region}`` dashboard.

    Three are failover triggers (``self.alarms``); the dead-letter, misconfiguration and
    replication alarms page people only.

    Default settings: one-minute periods, one evaluation period, missing data not breaching,
    ALARM and OK both notify the ops-alert topic (the orchestrator acts on ALARM only).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        function_names: list[str],
        payment_queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        notification_dlq: sqs.IQueue,
        control_failures: sqs.IQueue,
        ops_alert_topic: sns.ITopic,
        peer_region: str,
        webhook_dlq: sqs.IQueue,
    ) -> None:
        super().__init__(scope, construct_id)
        api_dimensions = {"ApiName": names.rest_api, "Stage": API_STAGE}
        # Route 53's checkers call /health around the clock (about one request every 2 s): under
        # X-Ray's default rule they would take the first-per-second reservoir and fill the bill
        # with health traces. Payments keep the default rule.
        xray.CfnSamplingRule(
            self,
            "HealthSampling",
            sampling_rule=xray.CfnSamplingRule.SamplingRuleProperty(
                rule_name=names.health_sampling_rule,
                priority=100,
                fixed_rate=0,
                reservoir_size=0,
                host="*",
                http_method="GET",
                url_path=f"*{HEALTH_PATH}",
                service_name="*",
                service_type="*",
                resource_arn="*",
                version=1,
            ),
        )

        def metric(
            namespace: str, name: str, dimensions: dict[str, str], statistic: str = "Sum"
        ) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=namespace,
                metric_name=name,
                dimensions_map=dimensions,
                statistic=statistic,
                period=ALARM_PERIOD,
            )

        api_requests = metric("AWS/ApiGateway", "Count", api_dimensions)
        api_5xx = metric("AWS/ApiGateway", "5XXError", api_dimensions)
        api_4xx = metric("AWS/ApiGateway", "4XXError", api_dimensions)
        invocations = {n: metric("AWS/Lambda", "Invocations", {"FunctionName": n}) for n in function_names}
        errors = {n: metric("AWS/Lambda", "Errors", {"FunctionName": n}) for n in function_names}
        lambda_errors = cloudwatch.MathExpression(
            expression="+".join(f"e{i}" for i in range(len(function_names))),
            using_metrics={f"e{i}": errors[n] for i, n in enumerate(function_names)},
            label="Errors, all payment functions",
            period=ALARM_PERIOD,
        )
        table = {"TableName": names.payments_table}
        # Throttles and DynamoDB's own 5xx (SystemErrors, reported per operation) on the calls
        # the functions make: both mean the table cannot take the region's payments.
        system_errors = {
            f"e{operation.lower()}": metric("AWS/DynamoDB", "SystemErrors", {**table, "Operation": operation})
            for operation in PAYMENTS_TABLE_OPERATIONS
        }
        throttles = cloudwatch.MathExpression(
            expression=" + ".join(["reads", "writes", *system_errors]),
            using_metrics={
                "reads": metric("AWS/DynamoDB", "ReadThrottleEvents", table),
                "writes": metric("AWS/DynamoDB", "WriteThrottleEvents", table),
                **system_errors,
            },
            label="Throttled or failed requests on the payments table",
            period=ALARM_PERIOD,
        )
        dlq_visible = dead_letter_queue.metric_approximate_number_of_messages_visible(
            period=ALARM_PERIOD, statistic="Maximum"
        )

        # Failover triggers: signals of an impaired region that no client request can raise
        # (chalicelib.failover.trigger_alarms); how long each must last is its rule's.
        self.alarms = [
            self._trigger("Api5xxAlarm", names.api_5xx_alarm, api_5xx, API_5XX, "API 5XX responses"),
            self._trigger(
                "LambdaErrorsAlarm",
                names.lambda_errors_alarm,
                lambda_errors,
                LAMBDA_ERRORS,
                "Errors across the payment functions",
            ),
            self._trigger(
                "DynamoDbThrottlesAlarm",
                names.dynamodb_throttles_alarm,
                throttles,
                DYNAMODB_THROTTLES,
                "Throttled or failed requests on the payments table",
            ),
        ]
        # Pages people, never moves traffic: only messages that failed for reasons of
        # infrastructure reach the dead-letter queue (rejected payments are recorded instead), and
        # a full DLQ says nothing about whether the region can take payments.
        self.dlq_alarm = self._alarm(
            "DlqMessagesAlarm",
            names.dlq_messages_alarm,
            dlq_visible,
            DLQ_MESSAGES,
            f"Payments waiting in the dead-letter queue >= {DLQ_MESSAGES.threshold}: they failed for reasons of "
            f"infrastructure; redrive them once fixed (payments-dr redrive). {PAGES_ONLY}",
        )
        # Pages, never moves traffic: the orchestrator or the canary failed every attempt of an
        # invocation (an alarm notification it could not act on, a probe that crashed). An alarm
        # notifies once, so this is the only trace of a failover that did not happen.
        self.control_failures_alarm = self._alarm(
            "ControlFailuresAlarm",
            names.control_failures_alarm,
            control_failures.metric_approximate_number_of_messages_visible(
                period=ALARM_PERIOD, statistic="Maximum"
            ),
            CONTROL_FAILURES,
            "The failover orchestrator or the canary failed every attempt of an invocation; the event is in the "
            f"control-failures queue. Act on the alarm it carried by hand (payments-dr failover). {PAGES_ONLY}",
        )
        # Pages, never moves traffic: a call AWS refused for good (access denied, a resource that
        # is not there) is a broken deployment, not load; the functions count it apart from
        # throttling and timeouts, so it pages at the first occurrence instead of hiding in 503s.
        service = {"service": SERVICE_NAME}
        self.misconfiguration_alarm = self._alarm(
            "DependencyMisconfiguredAlarm",
            names.misconfiguration_alarm,
            metric(METRICS_NAMESPACE, Metric.DEPENDENCY_MISCONFIGURED, service),
            MISCONFIGURED_CALLS,
            "A payment function's call to AWS was refused for good (access denied, resource not found, request "
            f"invalid): the deployment is broken. {PAGES_ONLY}",
        )
        # Pages, never moves traffic: a payment stored and not announced. The notifier counts each
        # publish it gives up on, and parks a stream position it could not get past in the
        # notification DLQ; the stream keeps the payment's change 24 h, so it is time to act.
        self.notification_dlq_alarm = self._alarm(
            "NotificationDlqAlarm",
            names.notification_dlq_alarm,
            notification_dlq.metric_approximate_number_of_messages_visible(
                period=ALARM_PERIOD, statistic="Maximum"
            ),
            NOTIFICATION_DLQ_MESSAGES,
            "Stream positions the notifier gave up on >= 1: stored payments not announced. See the runbook, "
            f'"Announcements". {PAGES_ONLY}',
        )
        self.announce_failed_alarm = self._alarm(
            "AnnounceFailedAlarm",
            names.announce_failed_alarm,
            metric(METRICS_NAMESPACE, Metric.ANNOUNCE_FAILED, service),
            ANNOUNCE_FAILED,
            "Announcements on the transactions topic failed >= 1 (the notifier retries them from the stream). "
            f"{PAGES_ONLY}",
        )
        # A warning, not a failover trigger: failing over while replication lags is what loses
        # payments, so operators must see it before they act (payments-dr status shows it too).
        replication_latency = metric(
            "AWS/DynamoDB",
            "ReplicationLatency",
            {"TableName": names.payments_table, "ReceivingRegion": peer_region},
            statistic="Average",
        )
        self.replication_alarm = self._alarm(
            "ReplicationLatencyAlarm",
            names.replication_latency_alarm,
            replication_latency,
            REPLICATION_LATENCY_MS,
            f"Replication to {peer_region} lags >= {REPLICATION_LATENCY_MS.threshold} ms on average for "
            f"{REPLICATION_LATENCY_MS.evaluation_periods} minutes: a failover now could leave recent payments "
            "behind.",
        )
        # Page, never move traffic: merchants' endpoints are theirs, and no client may make the region
        # move. A delivery given up after 3 days of retries; the oldest event still undelivered.
        self.webhook_dlq_alarm = self._alarm(
            "WebhookDlqAlarm",
            names.webhook_dlq_alarm,
            webhook_dlq.metric_approximate_number_of_messages_visible(
                period=ALARM_PERIOD, statistic="Maximum"
            ),
            WEBHOOK_DLQ_MESSAGES,
            "Webhook deliveries given up after 3 days of retries >= 1 (the merchant can replay them; "
            f'see the runbook, "Webhooks"). {PAGES_ONLY}',
        )
        self.webhook_backlog_alarm = self._alarm(
            "WebhookBacklogAlarm",
            names.webhook_backlog_alarm,
            metric(METRICS_NAMESPACE, Metric.WEBHOOK_UNDELIVERED_AGE, service, statistic="Maximum"),
            WEBHOOK_BACKLOG_SECONDS,
            f"A merchant's event undelivered for >= {WEBHOOK_BACKLOG_SECONDS.threshold} s (its endpoint fails; "
            f"payments-dr webhooks shows which). {PAGES_ONLY}",
        )
        for alarm in [
            *self.alarms,
            self.webhook_dlq_alarm,
            self.webhook_backlog_alarm,
            self.dlq_alarm,
            self.notification_dlq_alarm,
            self.announce_failed_alarm,
            self.misconfiguration_alarm,
            self.control_failures_alarm,
            self.replication_alarm,
        ]:
            alarm.add_alarm_action(actions.SnsAction(ops_alert_topic))
            alarm.add_ok_action(actions.SnsAction(ops_alert_topic))

        # Dashboard names are global to the account: each region's stack owns its own.
        self.dashboard_name = names.dashboard(cdk.Stack.of(self).region)
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=self.dashboard_name)
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="API requests", left=[api_requests], width=12),
            cloudwatch.GraphWidget(title="API errors", left=[api_4xx, api_5xx], width=12),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Lambda invocations", left=list(invocations.values()), width=12),
            cloudwatch.GraphWidget(title="Lambda errors", left=list(errors.values()), width=12),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="DynamoDB consumed capacity",
                left=[
                    metric("AWS/DynamoDB", "ConsumedReadCapacityUnits", table),
                    metric("AWS/DynamoDB", "ConsumedWriteCapacityUnits", table),
                ],
                width=24,
            )
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Payment queue depth",
                left=[payment_queue.metric_approximate_number_of_messages_visible(period=ALARM_PERIOD)],
                width=12,
            ),
            cloudwatch.GraphWidget(title="Dead-letter queue", left=[dlq_visible], width=12),
        )

    def _trigger(
        self, construct_id: str, name: str, metric: cloudwatch.IMetric, rule: AlarmRule, description: str
    ) -> cloudwatch.Alarm:
        """A failover trigger: the orchestrator takes the region out of service when it alarms."""
        return self._alarm(
            construct_id,
            name,
            metric,
            rule,
            f"{description} >= {rule.threshold}{rule.window()}; the failover orchestrator takes the region out "
            "of service on ALARM.",
        )

    def _alarm(
        self, construct_id: str, name: str, metric: cloudwatch.IMetric, rule: AlarmRule, description: str
    ) -> cloudwatch.Alarm:
        return cloudwatch.Alarm(
            self,
            construct_id,
            alarm_name=name,
            alarm_description=description,
            metric=metric,
            threshold=rule.threshold,
            evaluation_periods=rule.evaluation_periods,
            datapoints_to_alarm=rule.datapoints_to_alarm,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )


def canary_alarm_in_peer(
    scope: Construct, construct_id: str, *, names: ResourceNames, peer_region: str
) -> cr.AwsCustomResource:
    """The alarm on the peer's canary against this region, created in the peer region by this stack.

    It must live where the canary runs (the peer) for the decision to need nothing from this
    region; it is created from here so that it exists before this stack's Route 53 health check
    reads it (the peer's stack may be deployed later), and it goes when this stack does. Its
    actions notify the peer's ops-alert topic, whose orchestrator then takes this region out of
    service so that returning it stays an operator's decision.
    """
    stack = cdk.Stack.of(scope)
    region = stack.region
    name = names.canary_alarm(region)
    peer_topic = f"arn:{stack.partition}:sns:{peer_region}:{stack.account}:{names.ops_alert_topic}"
    alarm_arn = f"arn:{stack.partition}:cloudwatch:{peer_region}:{stack.account}:alarm:{name}"
    put = cr.AwsSdkCall(
        service="CloudWatch",
        action="putMetricAlarm",
        parameters=canary_alarm_definition(names, region, [peer_topic]),
        region=peer_region,
        physical_resource_id=cr.PhysicalResourceId.of(name),
    )
    alarm = cr.AwsCustomResource(
        scope,
        construct_id,
        on_create=put,
        on_update=put,
        on_delete=cr.AwsSdkCall(
            service="CloudWatch", action="deleteAlarms", parameters={"AlarmNames": [name]}, region=peer_region
        ),
        policy=cr.AwsCustomResourcePolicy.from_statements(
            [
                iam.PolicyStatement(
                    actions=["cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms"], resources=[alarm_arn]
                )
            ]
        ),
        install_latest_aws_sdk=False,
    )
    acknowledge_custom_resource_provider(stack)
    return alarm
