"""The synthesized stacks as CloudFormation will deploy them: SAM expanded, values resolved.

``chalice.cdk.Chalice`` brings in ``AWS::Serverless::*`` resources; CloudFormation expands them
with the Serverless transform before it creates anything, and the resources that transform
generates (the Lambda functions, event source mappings, SNS subscriptions and permissions, the
API stages) are where deploy-time failures hide. :func:`expand` runs the same transform
(``aws-sam-translator``, pinned) offline.

:class:`Deployment` then renders every value of every stack to what it will be once deployed in
a stand-in account: a queue's ``Arn`` becomes ``arn:aws:sqs:<region>:<account>:<name>``, an
``Fn::ImportValue`` becomes the exporting stack's value, ``Fn::Sub`` and ``Fn::Join`` are
evaluated. With concrete ARNs on both sides, an IAM, key, topic or queue policy can be asked
whether it allows a caller an action on a resource, wildcards and conditions included, the
way AWS will ask it at deploy or run time.
"""

from __future__ import annotations

import copy
import fnmatch
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform

ACCOUNT = "123456789012"
PARTITION = "aws"
URL_SUFFIX = "amazonaws.com"


class _NoManagedPolicies(ManagedPolicyLoader):
    """SAM asks IAM for managed policy ARNs only for policy names in ``Policies``: none here."""

    def __init__(self) -> None:
        pass

    def load(self) -> dict[str, str]:
        return {}


def expand(template: dict[str, Any]) -> dict[str, Any]:
    """``template`` after the ``AWS::Serverless-2016-10-31`` transform, as CloudFormation runs it."""
    if "Transform" not in template:
        return copy.deepcopy(template)
    return transform(copy.deepcopy(template), {}, _NoManagedPolicies())


@dataclass(frozen=True)
class Resource:
    """One resource of one stack."""

    stack: str
    logical_id: str
    type: str
    properties: dict[str, Any]


@dataclass
class Stack:
    """An expanded template and where it deploys."""

    name: str
    region: str
    template: dict[str, Any]

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.template.get("Resources", {}))


@dataclass
class Deployment:
    """Stacks deployed into one account; renders their values as CloudFormation resolves them."""

    stacks: dict[str, Stack]
    account: str = ACCOUNT
    _exports: dict[str, tuple[str, Any]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        for stack in self.stacks.values():
            for output in stack.template.get("Outputs", {}).values():
                export = output.get("Export", {}).get("Name")
                if export is not None:
                    self._exports[self.render(stack.name, export)] = (stack.name, output["Value"])

    def resources(self, *types: str) -> Iterator[Resource]:
        """Every resource of the given types (all when none), across stacks."""
        for stack in self.stacks.values():
            for logical_id, body in stack.resources.items():
                if not types or body["Type"] in types:
                    yield Resource(stack.name, logical_id, body["Type"], body.get("Properties", {}))

    def region(self, stack: str) -> str:
        return self.stacks[stack].region

    # ------------------------------------------------------------------ rendering
    def render(self, stack: str, value: Any) -> Any:
        """``value`` from ``stack``'s template with every intrinsic function evaluated."""
        if isinstance(value, list):
            return [self.render(stack, item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {key: self.render(stack, item) for key, item in value.items()}
        [(function, argument)] = value.items()
        if function == "Ref":
            return self._ref(stack, argument)
        if function == "Fn::GetAtt":
            logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self._attribute(stack, logical_id, attribute)
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(str(self.render(stack, part)) for part in self.render(stack, parts))
        if function == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            return self._sub(stack, text, {k: self.render(stack, v) for k, v in variables.items()})
        if function == "Fn::ImportValue":
            exporter, exported = self._exports[self.render(stack, argument)]
            return self.render(exporter, exported)
        if function == "Fn::Select":
            index, items = argument
            return self.render(stack, items)[int(self.render(stack, index))]
        if function == "Fn::Split":
            separator, text = argument
            return str(self.render(stack, text)).split(separator)
        if function == "Fn::If":
            raise NotImplementedError("conditions are not used by these stacks")
        return {key: self.render(stack, item) for key, item in value.items()}

    def _sub(self, stack: str, text: str, variables: dict[str, Any]) -> str:
        out, rest = [], text
        while "${" in rest:
            before, _, after = rest.partition("${")
            name, _, rest = after.partition("}")
            out.append(before)
            if name.startswith("!"):
                out.append("${" + name[1:] + "}")
            elif name in variables:
                out.append(str(variables[name]))
            elif "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                out.append(str(self._attribute(stack, logical_id, attribute)))
            else:
                out.append(str(self._ref(stack, name)))
        return "".join(out) + rest

    def _pseudo(self, stack: str, name: str) -> str | None:
        return {
            "AWS::Region": self.region(stack),
            "AWS::AccountId": self.account,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": URL_SUFFIX,
            "AWS::StackName": stack,
            "AWS::NoValue": "",
        }.get(name)

    def _ref(self, stack: str, name: str) -> Any:
        pseudo = self._pseudo(stack, name)
        if pseudo is not None:
            return pseudo
        template = self.stacks[stack].template
        if name in template.get("Parameters", {}):
            return template["Parameters"][name].get("Default", f"<parameter {name}>")
        body = template["Resources"][name]
        props = body.get("Properties", {})
        region, kind = self.region(stack), body["Type"]
        named = {
            "AWS::SQS::Queue": lambda: (
                f"https://sqs.{region}.{URL_SUFFIX}/{self.account}/{self._name(stack, name)}"
            ),
            "AWS::SNS::Topic": lambda: self._arn("sns", region, self._name(stack, name)),
            "AWS::KMS::Key": lambda: f"{stack}-{name}",
        }
        if kind in named:
            return named[kind]()
        for key in (
            "TableName",
            "FunctionName",
            "LogGroupName",
            "RoleName",
            "Name",
            "AliasName",
            "DashboardName",
        ):
            if key in props:
                return self.render(stack, props[key])
        return f"{stack}-{name}"

    def _name(self, stack: str, logical_id: str) -> str:
        body = self.stacks[stack].resources[logical_id]
        props = body.get("Properties", {})
        key = {"AWS::SQS::Queue": "QueueName", "AWS::SNS::Topic": "TopicName"}.get(body["Type"])
        return str(self.render(stack, props[key])) if key and key in props else f"{stack}-{logical_id}"

    def _arn(self, service: str, region: str, resource: str) -> str:
        return f"arn:{PARTITION}:{service}:{region}:{self.account}:{resource}"

    def _attribute(self, stack: str, logical_id: str, attribute: str) -> Any:
        body = self.stacks[stack].resources[logical_id]
        kind, region = body["Type"], self.region(stack)
        props = body.get("Properties", {})
        if kind == "AWS::SQS::Queue" and attribute == "Arn":
            return self._arn("sqs", region, self._name(stack, logical_id))
        if kind in ("AWS::SQS::Queue",) and attribute == "QueueUrl":
            return self._ref(stack, logical_id)
        if kind == "AWS::SNS::Topic" and attribute == "TopicArn":
            return self._ref(stack, logical_id)
        if kind in ("AWS::DynamoDB::GlobalTable", "AWS::DynamoDB::Table"):
            arn = self._arn("dynamodb", region, f"table/{self._ref(stack, logical_id)}")
            return {"Arn": arn, "StreamArn": f"{arn}/stream/LATEST"}[attribute]
        if kind == "AWS::KMS::Key" and attribute == "Arn":
            return self._arn("kms", region, f"key/{self._ref(stack, logical_id)}")
        if kind == "AWS::IAM::Role" and attribute == "Arn":
            return f"arn:{PARTITION}:iam::{self.account}:role/{self._ref(stack, logical_id)}"
        if kind == "AWS::Lambda::Function" and attribute == "Arn":
            return self._arn("lambda", region, f"function:{self._ref(stack, logical_id)}")
        if kind == "AWS::Logs::LogGroup" and attribute == "Arn":
            return self._arn("logs", region, f"log-group:{self._ref(stack, logical_id)}:*")
        if kind == "AWS::CloudWatch::Alarm" and attribute == "Arn":
            return self._arn("cloudwatch", region, f"alarm:{self.render(stack, props['AlarmName'])}")
        if kind == "Custom::AWS":
            return self._sdk_call_result(stack, props, attribute)
        return f"<{stack}/{logical_id}.{attribute}>"

    def _sdk_call_result(self, stack: str, props: dict[str, Any], attribute: str) -> str:
        """What CDK's ``AwsCustomResource`` reads: DynamoDB's describeTable in the stack's region."""
        call = json.loads(str(self.render(stack, props["Create"])))
        if (call["service"], call["action"], attribute) == (
            "DynamoDB",
            "describeTable",
            "Table.LatestStreamArn",
        ):
            table = call["parameters"]["TableName"]
            return self._arn("dynamodb", self.region(stack), f"table/{table}/stream/LATEST")
        return f"<{stack}/sdk-call {call['service']}.{call['action']}.{attribute}>"

    # ------------------------------------------------------------------ lookups
    def find(
        self, kind: str, rendered_id: Any, *, attribute: str | None = None, region: str | None = None
    ) -> Resource | None:
        """The resource of ``kind`` (in ``region``) whose Ref (or ``attribute``) renders to ``rendered_id``."""
        for resource in self.resources(kind):
            if region is not None and self.region(resource.stack) != region:
                continue
            value = (
                self._ref(resource.stack, resource.logical_id)
                if attribute is None
                else self._attribute(resource.stack, resource.logical_id, attribute)
            )
            if value == rendered_id:
                return resource
        return None

    def attribute(self, resource: Resource, name: str) -> str:
        """``Fn::GetAtt`` of ``resource``'s attribute ``name``, rendered."""
        return str(self._attribute(resource.stack, resource.logical_id, name))

    def arn_of(self, resource: Resource) -> str:
        kind = resource.type
        if kind == "AWS::SNS::Topic":
            return str(self._ref(resource.stack, resource.logical_id))
        return str(self._attribute(resource.stack, resource.logical_id, "Arn"))

    def find_key(self, stack: str, key_id: Any) -> Resource | None:
        """The KMS key that ``key_id`` (key ARN, id, alias name or alias ARN) names in ``stack``'s region."""
        rendered = str(self.render(stack, key_id))
        region = rendered.split(":")[3] if rendered.startswith("arn:") else self.region(stack)
        alias = (
            rendered.split(":", 5)[5] if rendered.startswith("arn:") and ":alias/" in rendered else rendered
        )
        for resource in self.resources("AWS::KMS::Key", "AWS::KMS::Alias"):
            if self.region(resource.stack) != region:
                continue
            if (
                resource.type == "AWS::KMS::Alias"
                and self.render(resource.stack, resource.properties["AliasName"]) == alias
            ):
                target = str(self.render(resource.stack, resource.properties["TargetKeyId"]))
                return self.find_key(resource.stack, target)
            if resource.type == "AWS::KMS::Key" and rendered in (
                self._ref(resource.stack, resource.logical_id),
                self._attribute(resource.stack, resource.logical_id, "Arn"),
            ):
                return resource
        return None

    def depends_on(self, stack: str, logical_id: str, target: str) -> bool:
        """Whether CloudFormation creates ``target`` before ``logical_id``: DependsOn, Ref or GetAtt, transitively."""
        seen: set[str] = set()
        pending = [logical_id]
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            body = self.stacks[stack].resources[current]
            depends = body.get("DependsOn", [])
            direct = set([depends] if isinstance(depends, str) else depends)
            direct |= _references(body.get("Properties", {}))
            if target in direct:
                return True
            pending.extend(d for d in direct if d in self.stacks[stack].resources)
        return False


def _references(value: Any) -> set[str]:
    """Logical ids that ``value`` refers to with Ref, GetAtt or Sub."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= _references(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                found.add(item[0] if isinstance(item, list) else item.split(".")[0])
            elif key == "Fn::Sub":
                text = item if isinstance(item, str) else item[0]
                for part in text.split("${")[1:]:
                    found.add(part.split("}")[0].split(".")[0])
                found |= _references(item)
            else:
                found |= _references(item)
    return found


# ---------------------------------------------------------------------- policies
@dataclass(frozen=True)
class Request:
    """One call as AWS authorizes it: who, what, on which resource, with which context keys."""

    principal: str  # a role ARN, or a service principal such as ``cloudwatch.amazonaws.com``
    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()

    def context_value(self, key: str) -> str | None:
        return {k.lower(): v for k, v in self.context}.get(key.lower())


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _matches(patterns: Any, value: str) -> bool:
    return any(fnmatch.fnmatchcase(value.lower(), str(p).lower()) for p in _as_list(patterns))


def _principal_matches(principal: Any, request: Request, account: str) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    for kind, values in principal.items():
        for value in _as_list(values):
            value = str(value)
            if kind == "Service" and value == request.principal:
                return True
            if kind == "AWS" and (
                value in ("*", request.principal)
                or value in (account, f"arn:{PARTITION}:iam::{account}:root")
                and request.principal.startswith(f"arn:{PARTITION}:iam::{account}:")
            ):
                return True
    return False


_OPERATORS = {
    "StringEquals": lambda actual, expected: actual == expected,
    "StringLike": lambda actual, expected: fnmatch.fnmatchcase(actual, expected),
    "ArnEquals": lambda actual, expected: actual == expected,
    "ArnLike": lambda actual, expected: fnmatch.fnmatchcase(actual, expected),
    "Bool": lambda actual, expected: actual.lower() == str(expected).lower(),
}


def _conditions_hold(conditions: dict[str, Any], request: Request) -> bool:
    """Every condition of a statement holds for ``request``; an unknown operator or key does not."""
    for operator, tests in conditions.items():
        compare = _OPERATORS.get(operator)
        if compare is None:
            return False
        for key, expected in tests.items():
            actual = request.context_value(key)
            if actual is None or not any(compare(actual, str(e)) for e in _as_list(expected)):
                return False
    return True


def statements_allow(
    statements: list[dict[str, Any]], request: Request, *, account: str, resource_policy: bool
) -> tuple[bool, bool]:
    """(allowed, denied) for ``request`` by ``statements``; resource policies match on Principal."""
    allowed = denied = False
    for statement in statements:
        if resource_policy and not _principal_matches(statement.get("Principal"), request, account):
            continue
        if not _matches(statement.get("Action", []), request.action):
            continue
        if not _matches(statement.get("Resource", "*"), request.resource):
            continue
        if not _conditions_hold(statement.get("Condition", {}), request):
            continue
        if statement["Effect"] == "Deny":
            denied = True
        else:
            allowed = True
    return allowed, denied


def tls(*context: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    """Context keys of a call made over TLS, as every AWS SDK and service makes them."""
    return (("aws:SecureTransport", "true"), *context)
