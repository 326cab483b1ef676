"""A payment's whole journey through the deployed stacks, and a failover and failback.

Everything goes through what the stacks deployed: the API Gateway URLs of both regions with the
usage plan's key, the queues, tables, topics and functions CloudFormation created. The same
driver runs against AWS (``python -m e2e.journey --aws``, see the README's "Deploying to AWS").
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import requests

from chalicelib.names import (
    DEFAULT_ENVIRONMENT_SUFFIX,
    DEFAULT_PRIMARY_REGION,
    DEFAULT_SECONDARY_REGION,
    ResourceNames,
)

ROOT = Path(__file__).resolve().parents[1]
WAIT_SECONDS = 60
HTTP_TIMEOUT_SECONDS = 30


@dataclass
class Deployed:
    """One deployed environment: both regions' stack outputs and how to reach them."""

    suffix: str
    regions: tuple[str, str]
    outputs: dict[str, dict[str, str]]  # per region
    api_urls: dict[str, str]
    # Each region's usage plan holds its own generated key: a client holds both (see the README).
    api_keys: dict[str, str]
    client: Callable[[str, str], Any]
    work_dir: Path
    endpoint: str | None = None

    @classmethod
    def from_outputs(
        cls,
        stack_outputs: dict[str, dict[str, str]],
        client: Callable[[str, str], Any],
        work_dir: Path,
        *,
        endpoint: str | None = None,
    ) -> Deployed:
        """From the outputs of the regional stacks (those with a ``Region`` output), primary first."""
        named = sorted((name, o) for name, o in stack_outputs.items() if "APIEndpoint" in o)
        regional = [o for name, o in sorted(named, key=lambda item: not item[0].endswith("Primary"))]
        outputs = {o["Region"]: o for o in regional}
        regions = (regional[0]["Region"], regional[1]["Region"])
        suffix = regional[0]["PaymentsTableName"].removeprefix("payments-")
        api_urls = {
            region: cls._reachable(o["APIEndpoint"], o["APIId"], endpoint) for region, o in outputs.items()
        }
        api_keys = {
            region: client("apigateway", region).get_api_key(apiKey=o["ClientApiKeyId"], includeValue=True)[
                "value"
            ]
            for region, o in outputs.items()
        }
        return cls(suffix, regions, outputs, api_urls, api_keys, client, work_dir, endpoint)

    @staticmethod
    def _reachable(api_endpoint: str, api_id: str, endpoint: str | None) -> str:
        """The deployed stage's URL; in the emulator, its execute-api path on the emulator's port."""
        if endpoint is None:
            return api_endpoint.rstrip("/")
        stage = api_endpoint.rstrip("/").rsplit("/", 1)[1]
        return f"{endpoint}/_aws/execute-api/{api_id}/{stage}"

    def write_state(self) -> Path:
        """What ``payments-dr --local --state-file`` needs to act on this deployment."""
        state = {
            "environment_suffix": self.suffix,
            "regions": list(self.regions),
            "endpoint_url": self.endpoint,
            "api_urls": self.api_urls,
            # payments-dr reads only /health, which needs no key.
            "api_key": self.api_keys[self.regions[0]],
        }
        self.work_dir.mkdir(parents=True, exist_ok=True)
        path = self.work_dir / "state.json"
        path.write_text(json.dumps(state, indent=2))
        return path


def wait_for(what: str, probe: Callable[[], Any], timeout: float = WAIT_SECONDS) -> Any:
    """``probe()``'s first truthy result, polled until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: nothing after {timeout:.0f} s")
        time.sleep(0.25)


class Journey:
    """The steps of ``make e2e`` after the deploy, each printed by ``steps``."""

    def __init__(self, deployed: Deployed, steps: Any, gaps: Any | None = None) -> None:
        self.d, self.steps, self.gaps = deployed, steps, gaps
        self.http = requests.Session()
        self.primary, self.secondary = deployed.regions

    def call(
        self, method: str, region: str, path: str, body: Any = None, *, key: bool = True
    ) -> requests.Response:
        headers = {"Content-Type": "application/json"}
        if key:
            headers["x-api-key"] = self.d.api_keys[region]
        return self.http.request(
            method,
            self.d.api_urls[region] + path,
            headers=headers,
            data=None if body is None else json.dumps(body),
            timeout=HTTP_TIMEOUT_SECONDS,
        )

    def run(self) -> None:
        subscribers = self.steps.run("subscribe a test queue to transactions in both regions", self.subscribe)
        self.steps.run("payment routes without the API key: 403 in both regions", self.refuse_without_key)
        self.steps.run("/health: 200 in both regions", lambda: self.health_is(200, *self.d.regions))
        txn = f"e2e-{uuid.uuid4().hex[:12]}"
        self.steps.run("POST /validate -> 202 accepted", lambda: self.validate(txn))
        self.steps.run(
            "SQS -> processor -> payments table (us-east-1)", lambda: self.stored(self.primary, txn)
        )
        self.steps.run("global table -> replica in the peer region", lambda: self.stored(self.secondary, txn))
        self.steps.run(
            "stream -> notifier -> transactions -> test subscriber",
            lambda: self.announced(subscribers[self.primary], txn),
        )
        self.steps.run("POST /process twice: 201 then 200, one amount everywhere", self.process_twice)
        self.steps.run(
            "the id reused via /validate -> recorded as rejected, announced, not dead-lettered",
            lambda: self.rejected(subscribers[self.primary], txn),
        )
        self.steps.run(
            "observer: each region's canary alarm exists in its peer, the canary function on a schedule",
            self.observed,
        )
        self.steps.run(
            f"failover: an alarm on ops-alerts -> orchestrator takes {self.primary} out", self.failover
        )
        self.steps.run(f"/health: 503 in {self.primary}, 200 in {self.secondary}", self.failed_over)
        self.steps.run(
            f"failback with payments-dr against the deployment -> {self.primary} back", self.failback
        )

    def subscribe(self) -> dict[str, str]:
        queues = {}
        for region in self.d.regions:
            sqs, sns = self.d.client("sqs", region), self.d.client("sns", region)
            url = sqs.create_queue(QueueName=f"e2e-transactions-{uuid.uuid4().hex[:8]}")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            topic = self.d.outputs[region]["TransactionTopicArn"]
            policy = {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "sns.amazonaws.com"},
                        "Action": "sqs:SendMessage",
                        "Resource": arn,
                        "Condition": {"ArnEquals": {"aws:SourceArn": topic}},
                    }
                ]
            }
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
            sns.subscribe(
                TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"}
            )
            queues[region] = url
        return queues

    def refuse_without_key(self) -> str:
        codes = {
            region: self.call("GET", region, "/payments/e2e-none", key=False).status_code
            for region in self.d.regions
        }
        if set(codes.values()) != {403}:
            raise AssertionError(f"expected 403 without a key, got {codes}")
        return ""

    def health_is(self, expected: int, *regions: str) -> str:
        def probe() -> dict[str, int] | None:
            codes = {r: self.call("GET", r, "/health", key=False).status_code for r in regions}
            return codes if set(codes.values()) == {expected} else None

        wait_for(f"/health {expected} in {', '.join(regions)}", probe)
        return ""

    def validate(self, txn: str) -> str:
        body = {"transaction_id": txn, "customer_id": "cust-e2e", "amount": "49.90", "currency": "USD"}
        response = self.call("POST", self.primary, "/validate", body)
        if response.status_code != 202 or response.json().get("status") != "accepted":
            raise AssertionError(f"{response.status_code} {response.text}")
        return ""

    def stored(self, region: str, txn: str) -> str:
        def probe() -> bool:
            response = self.call("GET", region, f"/payments/{txn}")
            return response.status_code == 200 and response.json()["amount"] == "49.90"

        began = time.monotonic()
        wait_for(f"{txn} readable in {region}", probe)
        return f"{region}, after {time.monotonic() - began:.1f} s"

    def announced(self, queue_url: str, txn: str, event: str = "payment.processed") -> str:
        sqs = self.d.client("sqs", self.primary)

        def probe() -> dict[str, Any] | None:
            for message in sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
            ).get("Messages", []):
                body = json.loads(message["Body"])
                if txn in message["Body"] and body.get("event") == event:
                    return body
            return None

        found = wait_for(f"{event} of {txn}", probe)
        return str(found["event"])

    def process_twice(self) -> str:
        txn = f"e2e-{uuid.uuid4().hex[:12]}"
        body = {"transaction_id": txn, "customer_id": "cust-e2e", "amount": "12.50", "currency": "USD"}
        first, second = (self.call("POST", self.primary, "/process", body) for _ in range(2))
        read = self.call("GET", self.primary, f"/payments/{txn}")
        codes = (first.status_code, second.status_code, read.status_code)
        amounts = {r.json().get("amount") for r in (first, second, read)}
        if codes != (201, 200, 200) or amounts != {"12.50"}:
            raise AssertionError(f"answers {codes}, amounts {amounts}")
        return "201, 200, read back 12.50"

    def rejected(self, queue_url: str, txn: str) -> str:
        body = {"transaction_id": txn, "customer_id": "cust-e2e", "amount": "999.00", "currency": "USD"}
        response = self.call("POST", self.primary, "/validate", body)
        if response.status_code != 202:
            raise AssertionError(f"/validate of a reused id: {response.status_code} {response.text}")

        def probe() -> dict[str, Any] | None:
            found = self.call("GET", self.primary, f"/payments/{txn}").json()
            return found if found.get("rejections") else None

        found = wait_for(f"the rejection of {txn}", probe)
        event = self.announced(queue_url, txn, event="payment.rejected")
        sqs = self.d.client("sqs", self.primary)
        dead = sqs.get_queue_attributes(
            QueueUrl=self.d.outputs[self.primary]["PaymentDLQUrl"],
            AttributeNames=["ApproximateNumberOfMessages"],
        )["Attributes"]
        if (found["status"], found["amount"]) != ("PROCESSED", "49.90") or dead[
            "ApproximateNumberOfMessages"
        ] != "0":
            raise AssertionError(f"read back {found}, DLQ {dead}")
        return f"{found['rejections'][0]['errors'][0]['field']} refused; {event}; DLQ empty"

    def failover(self) -> str:
        alarm = f"payment-api-5xx-{self.d.suffix}"
        message = {
            "AlarmName": alarm,
            "AlarmDescription": "API 5XX responses >= 10",
            "AWSAccountId": "000000000000",
            "NewStateValue": "ALARM",
            "NewStateReason": "Threshold Crossed: 1 datapoint [12.0] was greater than or equal to the threshold (10.0).",
            "StateChangeTime": time.strftime("%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime()),
            "Region": "US East (N. Virginia)",
            "AlarmArn": f"arn:aws:cloudwatch:{self.primary}:000000000000:alarm:{alarm}",
            "OldStateValue": "OK",
        }
        extra = (
            {"MessageAttributes": self.gaps.sns_message_attributes()} if self.gaps and self.d.endpoint else {}
        )
        self.d.client("sns", self.primary).publish(
            TopicArn=self.d.outputs[self.primary]["OpsAlertTopicArn"],
            Subject=f'ALARM: "{alarm}" in US East (N. Virginia)',
            Message=json.dumps(message),
            **extra,
        )
        return ""

    def failed_over(self) -> str:
        self.health_is(503, self.primary)
        self.health_is(200, self.secondary)
        return ""

    def observed(self) -> str:
        """The observer's wiring as deployed: the alarm the stack made in the peer, the canary function."""
        found = []
        for region in self.d.regions:
            peer = next(r for r in self.d.regions if r != region)
            name = ResourceNames(self.d.suffix).canary_alarm(region)
            [alarm] = self.d.client("cloudwatch", peer).describe_alarms(AlarmNames=[name])["MetricAlarms"]
            dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
            if (alarm["MetricName"], dimensions.get("TargetRegion")) != ("CanarySuccess", region):
                raise AssertionError(f"{name} in {peer} watches {alarm['MetricName']} {dimensions}")
            function = ResourceNames(self.d.suffix).canary_function
            self.d.client("lambda", peer).get_function(FunctionName=function)
            found.append(f"{name} in {peer}")
        if self.gaps and self.d.endpoint:
            self.gaps.note(
                "the canary's probes (https://<api>.execute-api.<region>.amazonaws.com): not run here "
                "(the emulator serves APIs on its own endpoint); the drill runs them locally"
            )
            self.gaps.note(
                "Route 53's calculated health check (/health AND the canary alarm): not evaluated here"
            )
        return ", ".join(found)

    def failback(self) -> str:
        command = [sys.executable, "-m", "operations.cli"]
        if self.d.endpoint:
            command += ["--local", "--state-file", str(self.d.write_state())]
        else:
            command += [
                "--suffix",
                self.d.suffix,
                "--primary-region",
                self.primary,
                "--secondary-region",
                self.secondary,
            ]
        # The emulator runs no canary probe (see observed()): its alarm only must not be failing.
        canary = ["--canary-passed-for", "0"] if self.d.endpoint else []
        result = subprocess.run(
            [*command, "failback", self.primary, "--reason", "e2e: failback after the drill", *canary],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(
                f"payments-dr failback exited {result.returncode}: {result.stdout}{result.stderr}"
            )
        self.health_is(200, self.primary)
        return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


def main(argv: list[str] | None = None) -> int:
    """The same journey against a deployment in AWS, with the credentials boto3 finds."""
    from e2e.__main__ import Steps

    parser = argparse.ArgumentParser(prog="python -m e2e.journey", description=__doc__)
    parser.add_argument(
        "--aws", action="store_true", required=True, help="drive the deployment in your AWS account"
    )
    parser.add_argument("--suffix", default=DEFAULT_ENVIRONMENT_SUFFIX)
    parser.add_argument("--primary-region", default=DEFAULT_PRIMARY_REGION)
    parser.add_argument("--secondary-region", default=DEFAULT_SECONDARY_REGION)
    args = parser.parse_args(argv)

    def client(service: str, region: str) -> Any:
        return boto3.client(service, region_name=region)

    stacks = {}
    for region, role in ((args.primary_region, "Primary"), (args.secondary_region, "Secondary")):
        name = f"Payments{args.suffix.capitalize()}{role}"
        [described] = client("cloudformation", region).describe_stacks(StackName=name)["Stacks"]
        stacks[name] = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
    deployed = Deployed.from_outputs(stacks, client, ROOT / ".e2e")
    Journey(deployed, Steps()).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
