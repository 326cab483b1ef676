"""The seed's design, implemented as a reference for the benchmarks (never deployed).

What the seed analysis describes: a validator that checks the body, emits its custom metrics
with ``PutMetricData`` and sends the payment to SQS; a processor that, per message, writes the
record with ``PutItem``, publishes one SNS notification and emits a processed metric with
``PutMetricData``. Clients are created at import, as the seed's functions did.
"""

from __future__ import annotations

import json
import os
import time
from decimal import Decimal
from typing import Any

import boto3

REGION = os.environ.get("AWS_REGION", "us-east-1")
sqs = boto3.client("sqs", region_name=REGION)
dynamodb = boto3.client("dynamodb", region_name=REGION)
sns = boto3.client("sns", region_name=REGION)
cloudwatch = boto3.client("cloudwatch", region_name=REGION)
NAMESPACE = "PaymentProcessing"
FRAUD_THRESHOLD = Decimal(10000)


def validator_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """POST /validate: check required fields and a positive amount, emit metrics, enqueue."""
    body = json.loads(event["body"])
    missing = [f for f in ("transaction_id", "customer_id", "amount", "currency") if f not in body]
    amount = Decimal(str(body.get("amount", "0")))
    if missing or amount <= 0:
        cloudwatch.put_metric_data(
            Namespace=NAMESPACE, MetricData=[{"MetricName": "PaymentRejected", "Value": 1}]
        )
        return {"statusCode": 400, "body": json.dumps({"error": "invalid payment"})}
    fraud = amount > FRAUD_THRESHOLD
    metrics = [{"MetricName": "PaymentValidated", "Value": 1}]
    if fraud:
        metrics.append({"MetricName": "PaymentFraudFlagged", "Value": 1})
    cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=metrics)
    sqs.send_message(
        QueueUrl=os.environ["PAYMENT_QUEUE_URL"], MessageBody=json.dumps({**body, "fraud_flag": fraud})
    )
    return {"statusCode": 200, "body": json.dumps({"status": "accepted"})}


def processor_handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """The SQS processor: one PutItem, one Publish and one PutMetricData per message."""
    for record in event["Records"]:
        payment = json.loads(record["body"])
        timestamp = int(time.time() * 1000)
        dynamodb.put_item(
            TableName=os.environ["PAYMENTS_TABLE_NAME"],
            Item={
                "transaction_id": {"S": payment["transaction_id"]},
                "timestamp": {"N": str(timestamp)},
                "customer_id": {"S": payment["customer_id"]},
                "amount": {"N": str(payment["amount"])},
                "currency": {"S": payment["currency"]},
                "status": {"S": "PROCESSED"},
                "fraud_flag": {"BOOL": payment["fraud_flag"]},
                "region": {"S": REGION},
            },
        )
        sns.publish(TopicArn=os.environ["TRANSACTION_TOPIC_ARN"], Message=json.dumps(payment))
        cloudwatch.put_metric_data(
            Namespace=NAMESPACE, MetricData=[{"MetricName": "PaymentProcessed", "Value": 1}]
        )
    return {}
