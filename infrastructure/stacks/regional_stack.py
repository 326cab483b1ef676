"""One region of the payment service: composes the constructs and publishes the outputs."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from constructs import Construct

from chalicelib.names import Handler
from chalicelib.schema import CANARY_CLIENT, CANARY_THROTTLE
from stacks.api import PaymentApi
from stacks.clients import ClientKey
from stacks.data import PaymentsData
from stacks.dns import PaymentDns
from stacks.flag import in_service_flag
from stacks.functions import FUNCTIONS
from stacks.keys import key_alias_arn
from stacks.messaging import PaymentMessaging
from stacks.monitoring import PaymentMonitoring, canary_alarm_in_peer
from stacks.permissions import FunctionResources
from stacks.props import PaymentStackProps


class PaymentRegionStack(cdk.Stack):
    """The payment service in one region; deploy it to the primary and the secondary region."""

    def __init__(
        self, scope: Construct, construct_id: str, *, props: PaymentStackProps, key: kms.IKey
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            env=cdk.Environment(account=props.env.account if props.env else None, region=props.region),
            description=f"Payment processing ({props.environment_suffix}) in {props.region}",
            cross_region_references=False,
        )
        names = props.settings.names
        data = PaymentsData(
            self,
            "Data",
            names=names,
            owns_tables=props.is_primary,
            replica_region=props.peer_region,
            key=key,
            replica_key_arn=key_alias_arn(names=names, region=props.peer_region),
            strong_consistency_witness=props.settings.strong_consistency_witness,
            production=props.settings.production,
        )
        messaging = PaymentMessaging(self, "Messaging", names=names, key=key)
        api = PaymentApi(
            self,
            "Api",
            names=names,
            resources=FunctionResources(
                table=data.table,
                idempotency_table=data.idempotency_table,
                clients_table=data.clients_table,
                stream_arn=data.stream_arn,
                key=key,
                payment_queue=messaging.payment_queue,
                notification_dlq=messaging.notification_dlq,
                control_failures=messaging.control_failures,
                transaction_topic=messaging.transaction_topic,
                ops_alert_topic=messaging.ops_alert_topic,
                peer_region=props.peer_region,
                webhook_endpoints_table=data.webhook_endpoints_table,
                webhook_queue=messaging.webhook_queue,
                webhook_dlq=messaging.webhook_dlq,
                consistency=data.consistency,
            ),
            functions=FUNCTIONS,
        )
        # The observer's canary calls the peer's API as a client of its own, with one key value in
        # both regions (merchants' clients are made the same way by payments-dr clients).
        ClientKey(
            self,
            "CanaryClient",
            names=names,
            client=CANARY_CLIENT,
            throttle=CANARY_THROTTLE,
            owns_secret=props.is_primary,
            key=key,
            peer_region=props.peer_region,
            peer_key_arn=key_alias_arn(names=names, region=props.peer_region),
            rest_api=api.rest_api,
            stage_ref=api.stage_ref,
            directory=data.clients_table,
            production=props.settings.production,
        )
        # The region's in-service flag: /health fails while it is off, so Route 53 fails over.
        in_service_flag(self, "InServiceFlag", names=names)
        monitoring = PaymentMonitoring(
            self,
            "Monitoring",
            names=names,
            function_names=api.payment_function_names,
            payment_queue=messaging.payment_queue,
            dead_letter_queue=messaging.dead_letter_queue,
            notification_dlq=messaging.notification_dlq,
            control_failures=messaging.control_failures,
            ops_alert_topic=messaging.ops_alert_topic,
            peer_region=props.peer_region,
            webhook_dlq=messaging.webhook_dlq,
        )
        # The peer observes this region: the alarm on its canary against us lives in the peer.
        canary_alarm = canary_alarm_in_peer(
            self, "CanaryAlarmInPeer", names=names, peer_region=props.peer_region
        )
        dns = props.settings.dns
        if dns is not None:
            PaymentDns(
                self,
                "Dns",
                domain_name=dns.domain_name,
                hosted_zone_id=dns.hosted_zone_id,
                hosted_zone_name=dns.hosted_zone_name,
                is_primary=props.is_primary,
                topology=props.settings.topology,
                region=props.region,
                rest_api=api.rest_api,
                api_host=api.api_host,
                ops_alert_topic=messaging.ops_alert_topic,
                alarm_name=names.health_check_alarm,
                canary_alarm=canary_alarm,
                peer_region=props.peer_region,
                names=names,
            )

        function_arn = {
            handler: cdk.Fn.sub(
                f"arn:${{AWS::Partition}}:lambda:${{AWS::Region}}:${{AWS::AccountId}}:function:{name}"
            )
            for handler, name in api.function_names.items()
        }
        outputs = {
            "PaymentsTableName": (
                names.payments_table,
                "Payments table (global table; same name in both regions)",
            ),
            "PaymentsTableArn": (data.table_arn, "Payments table ARN in this region"),
            "PaymentValidatorArn": (function_arn[Handler.API], "API function (validator and read routes)"),
            "PaymentProcessorArn": (
                function_arn[Handler.PAYMENT_PROCESSOR],
                "Payment queue processor function",
            ),
            "PaymentQueueUrl": (messaging.payment_queue.queue_url, "Payment queue URL"),
            "PaymentQueueArn": (messaging.payment_queue.queue_arn, "Payment queue ARN"),
            "PaymentDLQUrl": (
                messaging.dead_letter_queue.queue_url,
                "Dead-letter queue URL (redrive source)",
            ),
            "APIEndpoint": (api.endpoint_url, "Regional API endpoint (stage prod)"),
            "APIId": (api.api_id, "REST API id"),
            "OpsAlertTopicArn": (
                messaging.ops_alert_topic.topic_arn,
                "Ops-alert topic (alarms, orchestrator)",
            ),
            "TransactionTopicArn": (messaging.transaction_topic.topic_arn, "Processed-payment notifications"),
            "DashboardName": (monitoring.dashboard_name, "CloudWatch dashboard of this region"),
            "ClientSecretPrefix": (
                names.client_secret_prefix,
                "Secrets holding each API client's key value (payments-dr clients create/rotate/revoke/list)",
            ),
            "IdempotencyTableName": (
                data.idempotency_table.table_name,
                "Idempotency-Key records (global table)",
            ),
            "NotificationDLQUrl": (
                messaging.notification_dlq.queue_url,
                "Stream positions the notifier gave up on",
            ),
            "Region": (self.region, "Region of this stack"),
        }
        for output_id, (value, description) in outputs.items():
            cdk.CfnOutput(
                self,
                output_id,
                value=value,
                description=description,
                export_name=f"{self.stack_name}-{output_id}",
            )
