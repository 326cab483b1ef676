"""cdk-nag, cfn-lint and checkov over the synthesized stacks: clean, and proven able to fail."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sqs as sqs
from aws_cdk import cx_api
from aws_cdk.assertions import Template
from cfnlint.api import lint_all

from stacks.application import build_app
from stacks.synthesis import INFRASTRUCTURE, default_context, packaging_alone


def lint_errors(template: Mapping[str, Any]) -> list[str]:
    """cfn-lint errors (not warnings) for ``template``, with the SAM transform expanded."""
    return [str(match) for match in lint_all(json.dumps(template)) if match.rule.id.startswith("E")]


def test_both_stacks_pass_cdk_nag_aws_solutions(templates: dict[str, Template]) -> None:
    # The `templates` fixture synthesized with AwsSolutionsChecks as a validation plugin; an
    # unacknowledged finding fails synthesis, so reaching here with both stacks means none.
    assert set(templates) == {
        "PaymentsApiGatewayAccount-us-east-1",
        "PaymentsApiGatewayAccount-us-east-2",
        "PaymentsDevKeyPrimary",
        "PaymentsDevKeySecondary",
        "PaymentsDevPrimary",
        "PaymentsDevSecondary",
    }


def test_cdk_nag_fails_synthesis_on_an_unacknowledged_finding(tmp_path: Path) -> None:
    # The app as the project builds it: proves build_app attaches the AwsSolutions checks,
    # so the clean synthesis above means something.
    previous = os.getcwd()
    os.chdir(tmp_path)  # Chalice packages into ./chalice.out
    try:
        with packaging_alone():
            app = build_app(cdk.App(context=default_context(), outdir=str(tmp_path / "cdk.out")))
            stack = cdk.Stack.of(app.node.find_child("PaymentsDevPrimary"))
            sqs.Queue(stack, "PlainQueue")  # no dead-letter queue, no TLS-only policy
            with pytest.raises(Exception, match="AwsSolutions-SQS3"):
                app.synth()
    finally:
        os.chdir(previous)


def test_every_acknowledged_nag_rule_gives_a_reason() -> None:
    sources = "\n".join(p.read_text() for p in (INFRASTRUCTURE / "stacks").glob("*.py"))

    assert "NagSuppressions" not in sources
    assert sources.count("acknowledge(") >= 3


@pytest.mark.parametrize("stack", ["PaymentsDevPrimary", "PaymentsDevSecondary"])
def test_synthesized_templates_have_no_cfn_lint_errors(templates: dict[str, Template], stack: str) -> None:
    template = templates[stack].to_json()

    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    assert lint_errors(template) == []


@pytest.mark.parametrize("stack", ["PaymentsDevKeyPrimary", "PaymentsDevKeySecondary"])
def test_key_stacks_have_no_cfn_lint_errors(templates: dict[str, Template], stack: str) -> None:
    assert lint_errors(templates[stack].to_json()) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("MisspeltProperty",), 1),
        (("Timeout",), "sixty"),
    ],
)
def test_cfn_lint_catches_a_broken_serverless_function(
    templates: dict[str, Template], path: tuple[str, ...], value: object
) -> None:
    # cfn-lint 1.x validates SAM resources against SAM's schema (types, unknown properties),
    # not by expanding the transform, so it does not check numeric ranges on them.
    template = templates["PaymentsDevPrimary"].to_json()
    [name] = [
        k
        for k, r in template["Resources"].items()
        if r["Type"] == "AWS::Serverless::Function"
        and r["Properties"]["FunctionName"] == "payment-processor-dev"
    ]
    target = template["Resources"][name]["Properties"]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value

    assert lint_errors(template)


# ---------------------------------------------------------------------------------------- checkov
CHECKOV = Path(__file__).resolve().parents[2] / ".venv-checkov" / "bin" / "checkov"


def checkov(directory: Path) -> dict[str, Any]:
    """checkov's CloudFormation report on every template in ``directory`` (its pinned venv: make test)."""
    assert CHECKOV.exists(), "checkov is installed by `make test` (.venv-checkov); run the suite through it"
    completed = subprocess.run(
        [
            str(CHECKOV),
            "-d",
            str(directory),
            "--framework",
            "cloudformation",
            "--skip-download",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    report = json.loads(completed.stdout)
    return report if isinstance(report, dict) else report[0]


def test_checkov_finds_nothing_unexplained_in_the_synthesized_stacks(assembly: cx_api.CloudAssembly) -> None:
    report = checkov(Path(assembly.directory))
    skipped = report["results"]["skipped_checks"]

    assert report["summary"]["failed"] == 0, [
        (f["check_id"], f["resource"]) for f in report["results"]["failed_checks"]
    ]
    assert report["summary"]["passed"] > 300
    # Every skip says why, on the resource it is about (stacks/nag.py, stacks/api.py).
    assert skipped and all(len(s["check_result"]["suppress_comment"]) > 40 for s in skipped)


def test_checkov_fails_a_function_whose_reason_is_removed(
    assembly: cx_api.CloudAssembly, tmp_path: Path
) -> None:
    template = json.loads((Path(assembly.directory) / "PaymentsDevPrimary.template.json").read_text())
    api_function = template["Resources"]["APIHandler"]
    api_function["Metadata"]["checkov"]["skip"] = [
        s for s in api_function["Metadata"]["checkov"]["skip"] if s["id"] != "CKV_AWS_115"
    ]
    (tmp_path / "PaymentsDevPrimary.template.json").write_text(json.dumps(template))

    report = checkov(tmp_path)

    assert [(f["check_id"], f["resource"]) for f in report["results"]["failed_checks"]] == [
        ("CKV_AWS_115", "AWS::Serverless::Function.APIHandler")
    ]
