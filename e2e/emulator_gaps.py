"""Everything the emulator (MiniStack 1.5.33) lacks, worked around here and nowhere else.

None of this changes what the stacks deploy to AWS: ``cdk.out`` stays as synthesized, and each
gap is reported in ``make e2e``'s output. A gap that hides a path of the real system is reported
as "not verified here", so the output never claims more than the run proved. Measured on this
machine; see ``../shared/NOTES.md`` and docs/deploying.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.names import EnvVar
from chalicelib.schema import EVENTUAL_CONSISTENCY, STRONG_CONSISTENCY
from e2e.deploy import StackArtifact

NOT_VERIFIED = "not verified here"


class EmulatorGaps:
    """The workarounds of one run, and the list of what each left unverified."""

    def __init__(self) -> None:
        self.notes: list[str] = []
        # The stacks are deployed in the default mode: the emulator has no multi-Region strong
        # consistency. The payment path itself (two conditional puts, no transaction) is the same
        # in both modes and runs here; MRSC's own rules run only locally.
        self.note(
            "API keys: the emulator matched an x-api-key value against every region's keys; it runs with "
            "the lookup made regional, as API Gateway's is (e2e/ministack_fixes.py)"
        )
        self.note(
            "API key identity: the emulator's proxy events leave out requestContext.identity.apiKeyId, which "
            "API Gateway sets and the function finds the client by; it runs with it added "
            "(e2e/ministack_fixes.py)"
        )
        self.note(
            "alarm notifications: the emulator's carry no AlarmArn, CloudWatch's do; it runs with it added "
            "(e2e/ministack_fixes.py)"
        )
        self.note(
            "SNS -> Lambda events: the emulator leaves out MessageAttributes and Subject when a message has "
            "none, where SNS sends {} and null; it runs with them added (e2e/ministack_fixes.py)"
        )
        self.note(
            f"multi-Region strong consistency (-c strong_consistency_witness): {NOT_VERIFIED} (the emulator "
            "has none; the write path runs here in the default mode, and under MRSC's rules in "
            "`make run CONSISTENCY=strong` and the tests)"
        )

    def note(self, text: str) -> None:
        """Say once, after the run, what the emulator could not show."""
        if text not in self.notes:
            self.notes.append(text)

    def template_for_emulator(self, stack: StackArtifact, template: dict[str, Any]) -> dict[str, Any]:
        """The template as the emulator can take it (the uploaded copy only)."""
        resources = template.get("Resources", {})
        for logical_id in list(resources):
            body = resources[logical_id]
            # MiniStack refuses the whole template on this type.
            if body["Type"] == "AWS::WAFv2::WebACLAssociation":
                del resources[logical_id]
                self.note(
                    f"WAF web ACL on the API stage: {NOT_VERIFIED} (the emulator has no WebACLAssociation)"
                )
            # MiniStack does not support alarms on metric math (the Lambda-errors sum, the
            # DynamoDB throttles sum); the alarm path itself is driven by publishing on ops-alerts.
            elif body["Type"] == "AWS::CloudWatch::Alarm" and "Metrics" in body.get("Properties", {}):
                del resources[logical_id]
                self.note(f"metric-math alarms (Lambda errors, DynamoDB throttles): {NOT_VERIFIED}")
            # MiniStack has no multi-Region strong consistency: the active-active stacks' payments
            # table is deployed in the default mode, and its functions say so to their clients,
            # who then wait out the replication window after an attempt of unknown outcome.
            elif body["Type"] == "AWS::DynamoDB::GlobalTable" and "MultiRegionConsistency" in body.get(
                "Properties", {}
            ):
                body["Properties"].pop("MultiRegionConsistency")
                body["Properties"].pop("GlobalTableWitnesses", None)
                self.note(
                    f"active-active's payments table under multi-Region strong consistency: {NOT_VERIFIED} "
                    "(deployed in the default mode, its functions answering Payment-Consistency: eventual; "
                    "the 1,000 cross-region races and MRSC's rules run locally in make test)"
                )
            # MiniStack has no X-Ray; the rule only decides which requests are traced.
            elif body["Type"] == "AWS::XRay::SamplingRule":
                del resources[logical_id]
                self.note(
                    f"X-Ray sampling rule (/health never traced): {NOT_VERIFIED} (the emulator has no X-Ray)"
                )
            else:
                self._functions_for_emulator(body)
        return template

    def _functions_for_emulator(self, body: dict[str, Any]) -> None:
        variables = body.get("Properties", {}).get("Environment", {}).get("Variables", {})
        if variables.get(EnvVar.PAYMENTS_CONSISTENCY) == STRONG_CONSISTENCY:
            variables[EnvVar.PAYMENTS_CONSISTENCY] = EVENTUAL_CONSISTENCY
        # The emulator's functions reach this machine only: a merchant's receiver here is on
        # loopback, which the deployed address guard refuses. The stacks run with the local
        # stage's rule (plain http to loopback, no name resolved).
        if EnvVar.WEBHOOK_QUEUE_URL in variables:
            variables[EnvVar.LOCAL_STAGE] = "1"
            self.note(
                f"webhooks to a public https endpoint through the address guard: {NOT_VERIFIED} (the "
                "emulator's functions reach this machine only, so they run with make run's rule: http "
                "to a loopback receiver; the guard is tested in make test with a stubbed resolver)"
            )

    def after_stack(
        self, stack: StackArtifact, client: Callable[[str, str], Any], template: dict[str, Any]
    ) -> None:
        """Finish what the emulator's CloudFormation leaves undone for ``stack``."""
        for body in template.get("Resources", {}).values():
            if body["Type"] != "AWS::DynamoDB::GlobalTable":
                continue
            # MiniStack's GlobalTable ignores Replicas; its DynamoDB replicates once the replica
            # is added with UpdateTable, as a console user would.
            properties = body["Properties"]
            dynamodb = client("dynamodb", stack.region)
            for replica in properties.get("Replicas", []):
                if replica["Region"] == stack.region:
                    continue
                dynamodb.update_table(
                    TableName=properties["TableName"],
                    ReplicaUpdates=[{"Create": {"RegionName": replica["Region"]}}],
                )
            self.note(
                f"replicas created by CloudFormation's GlobalTable: {NOT_VERIFIED} (added with UpdateTable)"
            )
