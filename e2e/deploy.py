"""Deploy a synthesized cloud assembly (``cdk.out``) as ``cdk deploy --all`` does.

Per region, the bootstrap the CDK expects: the asset bucket ``cdk-hnb659fds-assets-<account>-<region>``
and the SSM parameter ``/cdk-bootstrap/hnb659fds/version`` that every template's
``CheckBootstrapVersion`` rule reads. Then each stack in dependency order, in its own region:
its asset manifest's files uploaded (directories zipped), the template created from its
``stackTemplateAssetObjectUrl`` and waited for. What the emulator cannot take is handed to
:mod:`e2e.emulator_gaps` on the way, never changed in ``cdk.out``.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BOOTSTRAP_QUALIFIER = "hnb659fds"
# What `cdk bootstrap` of CDK v2 writes today; templates require at least 6.
BOOTSTRAP_VERSION = "30"
STACK_TIMEOUT_SECONDS = 300


@dataclass(frozen=True)
class StackArtifact:
    """One stack of the assembly: where it goes, what it needs first, its assets."""

    name: str
    region: str
    dependencies: tuple[str, ...]
    template_url: str
    asset_manifest: Path


def stacks_in_deploy_order(assembly: Path) -> list[StackArtifact]:
    """The assembly's stacks, each after the stacks it depends on (as ``cdk deploy --all`` orders them)."""
    artifacts = json.loads((assembly / "manifest.json").read_text())["artifacts"]
    stacks = {}
    for name, artifact in artifacts.items():
        if artifact["type"] != "aws:cloudformation:stack":
            continue
        properties = artifact["properties"]
        stacks[name] = StackArtifact(
            name=name,
            region=artifact["environment"].rsplit("/", 1)[1],
            dependencies=tuple(
                d
                for d in artifact.get("dependencies", [])
                if artifacts[d]["type"] == "aws:cloudformation:stack"
            ),
            template_url=properties["stackTemplateAssetObjectUrl"],
            asset_manifest=assembly
            / next(d for d in artifact["dependencies"] if d.endswith(".assets")).replace(
                ".assets", ".assets.json"
            ),
        )
    ordered: list[StackArtifact] = []
    while len(ordered) < len(stacks):
        ready = [
            s
            for s in stacks.values()
            if s not in ordered and all(stacks[d] in ordered for d in s.dependencies)
        ]
        if not ready:
            raise ValueError("the stacks depend on each other in a cycle")
        ordered.extend(sorted(ready, key=lambda s: s.name))
    return ordered


def _substitute(text: str, account: str, region: str) -> str:
    return (
        text.replace("${AWS::AccountId}", account)
        .replace("${AWS::Region}", region)
        .replace("${AWS::Partition}", "aws")
    )


def bootstrap(client: Callable[[str, str], Any], account: str, region: str) -> None:
    """What ``cdk bootstrap aws://<account>/<region>`` leaves behind that a deploy reads."""
    bucket = f"cdk-{BOOTSTRAP_QUALIFIER}-assets-{account}-{region}"
    s3 = client("s3", region)
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    client("ssm", region).put_parameter(
        Name=f"/cdk-bootstrap/{BOOTSTRAP_QUALIFIER}/version",
        Value=BOOTSTRAP_VERSION,
        Type="String",
        Overwrite=True,
    )


def publish_assets(
    client: Callable[[str, str], Any],
    stack: StackArtifact,
    account: str,
    rewrite_template: Callable[[StackArtifact, dict[str, Any]], dict[str, Any]],
) -> None:
    """Upload the stack's file assets; its own template goes up as ``rewrite_template`` returns it."""
    manifest = json.loads(stack.asset_manifest.read_text())
    root = stack.asset_manifest.parent
    for asset in manifest.get("files", {}).values():
        source = root / asset["source"]["path"]
        if asset["source"].get("packaging") == "zip" or source.is_dir():
            body = _zip_directory(source)
        elif source.name.endswith(".template.json"):
            body = json.dumps(rewrite_template(stack, json.loads(source.read_text()))).encode()
        else:
            body = source.read_bytes()
        for destination in asset["destinations"].values():
            region = destination["region"]
            client("s3", region).put_object(
                Bucket=_substitute(destination["bucketName"], account, region),
                Key=_substitute(destination["objectKey"], account, region),
                Body=body,
            )


def _zip_directory(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory).as_posix())
    return buffer.getvalue()


def create_stack(client: Callable[[str, str], Any], stack: StackArtifact, account: str) -> dict[str, str]:
    """Create ``stack`` from its uploaded template and wait for it; returns its outputs."""
    return _deploy(client, stack, account, "create_stack", "CREATE_COMPLETE")


def update_stack(client: Callable[[str, str], Any], stack: StackArtifact, account: str) -> dict[str, str]:
    """Update ``stack`` to its uploaded template (a later ``cdk deploy``) and wait; returns its outputs."""
    return _deploy(client, stack, account, "update_stack", "UPDATE_COMPLETE")


def _deploy(
    client: Callable[[str, str], Any], stack: StackArtifact, account: str, operation: str, done: str
) -> dict[str, str]:
    cloudformation = client("cloudformation", stack.region)
    bucket, key = _substitute(stack.template_url, account, stack.region).removeprefix("s3://").split("/", 1)
    getattr(cloudformation, operation)(
        StackName=stack.name,
        # Path style, as the CDK CLI writes it.
        TemplateURL=f"https://s3.{stack.region}.amazonaws.com/{bucket}/{key}",
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    deadline = time.monotonic() + STACK_TIMEOUT_SECONDS
    while True:
        [described] = cloudformation.describe_stacks(StackName=stack.name)["Stacks"]
        status = described["StackStatus"]
        if status == done:
            return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}
        if not status.endswith("IN_PROGRESS") or time.monotonic() > deadline:
            events = cloudformation.describe_stack_events(StackName=stack.name)["StackEvents"]
            failed = [
                f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}"
                for e in events
                if e["ResourceStatus"].endswith("FAILED")
            ]
            raise RuntimeError(f"{stack.name} ended in {status}: {'; '.join(failed[:5])}")
        time.sleep(0.2)
