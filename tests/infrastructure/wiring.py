"""Every service-to-service edge of the deployed stacks, checked from the resource's side.

Each check walks one kind of edge in the expanded templates (:mod:`cloudformation`) and asks
the policy that AWS will consult whether it lets the caller through: an alarm publishing to a
topic (topic policy, then the topic's key policy), SNS invoking a Lambda function (its
permission), SNS sending to a queue (queue policy and key), Lambda's event source mappings and
destinations (the function's role, the source's key, and the mapping created only after the
role's policy), and every function role using an encrypted queue or topic (the key policy and
the role's KMS grants). Each returns the problems it found, worded for the person who reads a
failed deploy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.infrastructure.cloudformation import Deployment, Request, Resource, statements_allow, tls

CLOUDWATCH = "cloudwatch.amazonaws.com"
SNS = "sns.amazonaws.com"
# What Lambda's poller calls with the function's role, per event source service.
EVENT_SOURCE_ACTIONS = {
    "sqs": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
    "dynamodb": [
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
    ],
}
# What a caller needs of a queue's or topic's key to put a message in (SQS, SNS) or read one out.
KEY_ACTIONS_TO_SEND = ["kms:GenerateDataKey", "kms:Decrypt"]
KEY_ACTIONS_TO_RECEIVE = ["kms:Decrypt"]
DESTINATION_ACTIONS = {"sqs": "sqs:SendMessage", "sns": "sns:Publish", "lambda": "lambda:InvokeFunction"}


class Wiring:
    """The identity and resource policies of a :class:`Deployment`, asked as AWS asks them."""

    def __init__(self, deployment: Deployment) -> None:
        self.d = deployment

    # ---------------------------------------------------------------- policies
    def role_policies(self, role_arn: str) -> list[tuple[Resource | None, list[dict[str, Any]]]]:
        """Each identity policy of the role (the AWS::IAM::Policy, or None when inline) with its statements."""
        found: list[tuple[Resource | None, list[dict[str, Any]]]] = []
        role = self.d.find("AWS::IAM::Role", role_arn, attribute="Arn")
        if role is None:
            return found
        for inline in role.properties.get("Policies", []):
            found.append((None, _statements(self.d.render(role.stack, inline["PolicyDocument"]))))
        role_name = self.d.render(role.stack, {"Ref": role.logical_id})
        for policy in self.d.resources("AWS::IAM::Policy"):
            if policy.stack == role.stack and role_name in self.d.render(
                policy.stack, policy.properties.get("Roles", [])
            ):
                found.append(
                    (policy, _statements(self.d.render(policy.stack, policy.properties["PolicyDocument"])))
                )
        return found

    def role_allows(self, role_arn: str, action: str, resource: str) -> list[Resource | None]:
        """The role's policies that allow ``action`` on ``resource`` (empty when none, or when denied)."""
        request = Request(role_arn, action, resource, tls())
        granting, denied = [], False
        for policy, statements in self.role_policies(role_arn):
            allow, deny = statements_allow(statements, request, account=self.d.account, resource_policy=False)
            denied |= deny
            if allow:
                granting.append(policy)
        return [] if denied else granting

    def resource_policy(self, resource: Resource) -> list[dict[str, Any]] | None:
        """The resource policy AWS consults for ``resource``; None when the service's default applies."""
        if resource.type == "AWS::KMS::Key":
            return _statements(self.d.render(resource.stack, resource.properties["KeyPolicy"]))
        policy_types = {
            "AWS::SNS::Topic": ("AWS::SNS::TopicPolicy", "Topics"),
            "AWS::SQS::Queue": ("AWS::SQS::QueuePolicy", "Queues"),
        }
        policy_type, targets = policy_types[resource.type]
        me = self.d.render(resource.stack, {"Ref": resource.logical_id})
        statements: list[dict[str, Any]] = []
        attached = False
        for policy in self.d.resources(policy_type):
            if self.d.region(policy.stack) == self.d.region(resource.stack) and me in self.d.render(
                policy.stack, policy.properties[targets]
            ):
                attached = True
                statements += _statements(self.d.render(policy.stack, policy.properties["PolicyDocument"]))
        return statements if attached else None

    def resource_allows(self, resource: Resource, request: Request) -> bool:
        """Whether ``resource``'s own policy lets ``request`` through.

        A service principal needs an Allow in the resource policy; a role of this account needs
        no Allow there (its identity policy decides), only no Deny. Without a policy, a topic
        keeps SNS's default (the owning account, and AWS services acting for it); a queue lets
        only the owning account's principals in.
        """
        statements = self.resource_policy(resource)
        if statements is None:
            if resource.type == "AWS::SQS::Queue":
                return request.principal.startswith("arn:")
            return resource.type != "AWS::KMS::Key"
        allow, deny = statements_allow(statements, request, account=self.d.account, resource_policy=True)
        if deny:
            return False
        if resource.type == "AWS::KMS::Key" or not request.principal.startswith("arn:"):
            return allow
        return True

    def key_problems(
        self,
        caller: str,
        key_id: Any,
        stack: str,
        actions: list[str],
        *,
        what: str,
        context: tuple[tuple[str, str], ...] = (),
    ) -> list[str]:
        """Whether ``caller`` may use the key ``key_id`` names: key policy, and the role's grants for a role."""
        key = self.d.find_key(stack, key_id)
        if key is None:
            return [
                f"{what}: its key {self.d.render(stack, key_id)} is not deployed in {self.d.region(stack)}"
            ]
        key_arn = self.d.arn_of(key)
        problems = []
        for action in actions:
            if not self.resource_allows(key, Request(caller, action, key_arn, tls(*context))):
                problems.append(
                    f"{what}: the key policy of {key.stack}/{key.logical_id} does not allow {caller} {action}"
                )
            elif caller.startswith("arn:") and not self.role_allows(caller, action, key_arn):
                problems.append(f"{what}: {caller} has no {action} on {key.stack}/{key.logical_id}")
        return problems

    def function(self, stack: str, function_ref: Any) -> Resource | None:
        """The function a name or ARN in ``stack`` refers to, in the ARN's region or the stack's."""
        rendered = str(self.d.render(stack, function_ref))
        region = rendered.split(":")[3] if rendered.startswith("arn:") else self.d.region(stack)
        name = rendered.split(":function:")[-1].split(":")[0]
        return self.d.find("AWS::Lambda::Function", name, region=region)

    def role_of(self, function: Resource) -> str:
        return str(self.d.render(function.stack, function.properties["Role"]))

    def target(self, arn: str) -> Resource | None:
        """The queue, topic or function that ``arn`` names."""
        service = arn.split(":")[2]
        if service == "sqs":
            return self.d.find("AWS::SQS::Queue", arn, attribute="Arn")
        if service == "sns":
            return self.d.find("AWS::SNS::Topic", arn)
        if service == "lambda":
            return self.function(next(iter(self.d.stacks)), arn)
        return None

    # ---------------------------------------------------------------- edges
    def alarm_actions(self) -> list[str]:
        """Every alarm can publish to each topic it acts on: topic policy and the topic's key."""
        problems = []
        for alarm in self.d.resources("AWS::CloudWatch::Alarm"):
            alarm_arn = self.d.attribute(alarm, "Arn")
            name = self.d.render(alarm.stack, alarm.properties.get("AlarmName", alarm.logical_id))
            context = (("aws:SourceArn", alarm_arn), ("aws:SourceAccount", self.d.account))
            for key in ("AlarmActions", "OKActions", "InsufficientDataActions"):
                for action in self.d.render(alarm.stack, alarm.properties.get(key, [])):
                    topic = self.d.find("AWS::SNS::Topic", action)
                    if topic is None:
                        continue
                    what = f"alarm {name} -> {action}"
                    if self.d.region(topic.stack) != self.d.region(alarm.stack):
                        problems.append(f"{what}: an alarm can only notify a topic in its own region")
                    if not self.resource_allows(
                        topic, Request(CLOUDWATCH, "sns:Publish", action, tls(*context))
                    ):
                        problems.append(f"{what}: the topic policy does not allow {CLOUDWATCH} to publish")
                    if "KmsMasterKeyId" in topic.properties:
                        problems += self.key_problems(
                            CLOUDWATCH,
                            topic.properties["KmsMasterKeyId"],
                            topic.stack,
                            KEY_ACTIONS_TO_SEND,
                            what=what,
                            context=context,
                        )
        return problems

    def subscriptions(self) -> list[str]:
        """SNS can deliver every subscription: Lambda permission, or queue policy and key."""
        problems = []
        for sub in self.d.resources("AWS::SNS::Subscription"):
            protocol = sub.properties["Protocol"]
            topic_arn = str(self.d.render(sub.stack, sub.properties["TopicArn"]))
            endpoint = str(self.d.render(sub.stack, sub.properties["Endpoint"]))
            what = f"subscription {topic_arn} -> {endpoint}"
            context = (("aws:SourceArn", topic_arn), ("aws:SourceAccount", self.d.account))
            if protocol == "lambda":
                if not self._lambda_permits(endpoint, SNS, topic_arn):
                    problems.append(f"{what}: no lambda:InvokeFunction permission for {SNS} from this topic")
            elif protocol == "sqs":
                queue = self.d.find("AWS::SQS::Queue", endpoint, attribute="Arn")
                if queue is None:
                    continue
                if not self.resource_allows(queue, Request(SNS, "sqs:SendMessage", endpoint, tls(*context))):
                    problems.append(f"{what}: the queue policy does not allow {SNS} to send from this topic")
                if "KmsMasterKeyId" in queue.properties:
                    problems += self.key_problems(
                        SNS,
                        queue.properties["KmsMasterKeyId"],
                        queue.stack,
                        KEY_ACTIONS_TO_SEND,
                        what=what,
                        context=context,
                    )
        return problems

    def _lambda_permits(self, function_arn: str, principal: str, source_arn: str) -> bool:
        function = self.function(next(iter(self.d.stacks)), function_arn)
        for permission in self.d.resources("AWS::Lambda::Permission"):
            props = self.d.render(permission.stack, permission.properties)
            if (
                function is None
                or self.function(permission.stack, permission.properties["FunctionName"]) != function
            ):
                continue
            if (
                props["Action"] == "lambda:InvokeFunction"
                and props["Principal"] == principal
                and props.get("SourceArn", source_arn) == source_arn
            ):
                return True
        return False

    def event_sources(self) -> list[str]:
        """Every event source mapping: the role may poll the source and use its key, and the
        mapping is created only after the role's policy that allows it (Lambda checks the role
        when it creates the mapping); on-failure destinations are writable."""
        problems = []
        for mapping in self.d.resources("AWS::Lambda::EventSourceMapping"):
            function = self.function(mapping.stack, mapping.properties["FunctionName"])
            source = str(self.d.render(mapping.stack, mapping.properties["EventSourceArn"]))
            if function is None:
                problems.append(f"event source {source}: its function is not in the stacks")
                continue
            role = self.role_of(function)
            what = f"{function.logical_id} <- {source}"
            service = source.split(":")[2]
            for action in EVENT_SOURCE_ACTIONS.get(service, []):
                granting = self.role_allows(role, action, source)
                if not granting:
                    problems.append(f"{what}: the role does not allow {action}")
                for policy in granting:
                    if policy is not None and not self.d.depends_on(
                        mapping.stack, mapping.logical_id, policy.logical_id
                    ):
                        problems.append(
                            f"{what}: the mapping does not depend on {policy.logical_id}, which grants {action}: "
                            "the deploy can fail when Lambda checks the role"
                        )
            if service == "sqs":
                queue = self.d.find("AWS::SQS::Queue", source, attribute="Arn")
                if queue is not None and "KmsMasterKeyId" in queue.properties:
                    problems += self.key_problems(
                        role,
                        queue.properties["KmsMasterKeyId"],
                        queue.stack,
                        KEY_ACTIONS_TO_RECEIVE,
                        what=what,
                    )
            if service == "dynamodb" and self.stream_table(mapping.stack, source) is None:
                problems.append(
                    f"{what}: no table with a stream by that ARN in {self.d.region(mapping.stack)}"
                )
            destination = (
                mapping.properties.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            )
            if destination is not None:
                problems += self._destination(
                    role, str(self.d.render(mapping.stack, destination)), f"{what} on failure"
                )
        return problems

    def stream_table(self, stack: str, stream_arn: str) -> str | None:
        """The table (in the stream's region) whose stream ``stream_arn`` is, if one is deployed there."""
        region, resource = stream_arn.split(":")[3], stream_arn.split(":", 5)[5]
        table_name = resource.split("/")[1]
        for table in self.d.resources("AWS::DynamoDB::GlobalTable", "AWS::DynamoDB::Table"):
            name = self.d.render(table.stack, table.properties.get("TableName"))
            regions = {self.d.region(table.stack)}
            regions |= {r["Region"] for r in self.d.render(table.stack, table.properties.get("Replicas", []))}
            if name == table_name and region in regions and "StreamSpecification" in table.properties:
                return str(name)
        return None

    def destinations(self) -> list[str]:
        """Asynchronous invocation destinations are writable by the function's role."""
        problems = []
        for config in self.d.resources("AWS::Lambda::EventInvokeConfig"):
            function = self.function(config.stack, config.properties["FunctionName"])
            if function is None:
                continue
            for outcome, target in self.d.render(
                config.stack, config.properties.get("DestinationConfig", {})
            ).items():
                problems += self._destination(
                    self.role_of(function), target["Destination"], f"{function.logical_id} {outcome}"
                )
        return problems

    def _destination(self, role: str, arn: str, what: str) -> list[str]:
        service = arn.split(":")[2]
        action = DESTINATION_ACTIONS.get(service)
        problems = []
        if action and not self.role_allows(role, action, arn):
            problems.append(f"{what} -> {arn}: the role does not allow {action}")
        target = self.target(arn)
        if target is not None and "KmsMasterKeyId" in target.properties:
            problems += self.key_problems(
                role,
                target.properties["KmsMasterKeyId"],
                target.stack,
                KEY_ACTIONS_TO_SEND,
                what=f"{what} -> {arn}",
            )
        return problems

    def key_users(self) -> list[str]:
        """Every function role that may send to, publish on or consume an encrypted queue or topic
        can use its key; every encrypted log group's key lets CloudWatch Logs use it."""
        problems = []
        uses = {
            "sqs:SendMessage": KEY_ACTIONS_TO_SEND,
            "sns:Publish": KEY_ACTIONS_TO_SEND,
            "sqs:ReceiveMessage": KEY_ACTIONS_TO_RECEIVE,
        }
        for function in self.d.resources("AWS::Lambda::Function"):
            role = self.role_of(function)
            for kind in ("AWS::SQS::Queue", "AWS::SNS::Topic"):
                for target in self.d.resources(kind):
                    if "KmsMasterKeyId" not in target.properties or self.d.region(
                        target.stack
                    ) != self.d.region(function.stack):
                        continue
                    arn = self.d.arn_of(target)
                    for action, key_actions in uses.items():
                        if action.split(":")[0] == arn.split(":")[2] and self.role_allows(role, action, arn):
                            problems += self.key_problems(
                                role,
                                target.properties["KmsMasterKeyId"],
                                target.stack,
                                key_actions,
                                what=f"{function.logical_id} {action} {arn}",
                            )
        for group in self.d.resources("AWS::Logs::LogGroup"):
            if "KmsKeyId" in group.properties:
                region = self.d.region(group.stack)
                arn = self.d.attribute(group, "Arn").removesuffix(":*")
                problems += self.key_problems(
                    f"logs.{region}.amazonaws.com",
                    group.properties["KmsKeyId"],
                    group.stack,
                    ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"],
                    what=f"log group {arn}",
                    context=(("kms:EncryptionContext:aws:logs:arn", arn),),
                )
        return problems

    def all_problems(self) -> list[str]:
        checks: list[Callable[[], list[str]]] = [
            self.alarm_actions,
            self.subscriptions,
            self.event_sources,
            self.destinations,
            self.key_users,
        ]
        return list(dict.fromkeys(problem for check in checks for problem in check()))


def _statements(document: Any) -> list[dict[str, Any]]:
    statements = document.get("Statement", [])
    return statements if isinstance(statements, list) else [statements]


# Resource types whose names are unique per account (not per region), with their name property.
ACCOUNT_GLOBAL_NAMES = {
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::User": "UserName",
    "AWS::IAM::Group": "GroupName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
    "AWS::S3::Bucket": "BucketName",
}
# One per account and region, whatever its name: a second owner overwrites the first.
ACCOUNT_REGIONAL_SINGLETONS = ("AWS::ApiGateway::Account",)


def account_global_collisions(deployment: Deployment) -> list[str]:
    """Names that two resources claim in one account (or one account and region, for singletons)."""
    owners: dict[tuple[str, str], list[str]] = {}
    for resource in deployment.resources(*ACCOUNT_GLOBAL_NAMES, *ACCOUNT_REGIONAL_SINGLETONS):
        prop = ACCOUNT_GLOBAL_NAMES.get(resource.type)
        if prop is None:
            name = deployment.region(resource.stack)
        elif prop in resource.properties:
            name = str(deployment.render(resource.stack, resource.properties[prop]))
        else:
            continue  # CloudFormation generates a unique name
        owners.setdefault((resource.type, name), []).append(f"{resource.stack}/{resource.logical_id}")
    return [f"{kind} {name}: {', '.join(who)}" for (kind, name), who in owners.items() if len(who) > 1]
