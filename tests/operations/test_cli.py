"""``payments-dr`` from the command line, against a local environment's state file."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from localenv.provision import RegionResources
from operations.cli import _target, build_parser, main
from tests.conftest import REGION, SUFFIX


@pytest.fixture
def state_file(tmp_path: Path, local_aws: str, resources: RegionResources) -> Path:
    path = tmp_path / "state.json"
    path.write_text(
        json.dumps(
            {
                "environment_suffix": SUFFIX,
                "regions": [REGION, "us-east-2"],
                "endpoint_url": local_aws,
                "api_urls": {},
                "api_key": "k",
            }
        )
    )
    return path


def test_every_command_has_help() -> None:
    parser = build_parser()
    commands = next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))

    for name in commands:
        result = subprocess.run(
            [sys.executable, "-m", "operations.cli", name, "--help"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, name
        assert "usage: payments-dr" in result.stdout


def test_redrive_dry_run_on_the_local_environment(
    state_file: Path, aws: Any, resources: RegionResources, capsys: pytest.CaptureFixture[str]
) -> None:
    aws("sqs").send_message(QueueUrl=resources.payment_dlq_url, MessageBody="{}")

    code = main(["--local", "--state-file", str(state_file), "redrive", "--region", REGION, "--dry-run"])

    assert code == 0
    assert "1 message(s) in the dead-letter queue; dry run, nothing moved" in capsys.readouterr().out


def test_local_without_a_running_environment_says_how_to_start_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--local", "--state-file", str(tmp_path / "absent.json"), "redrive"])

    assert code == 2
    assert "make run" in capsys.readouterr().err


def test_the_canarys_key_belongs_to_the_stacks_and_payments_dr_will_not_rotate_or_revoke_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for action in (["rotate", "canary"], ["revoke", "canary"]):
        assert main(["clients", *action]) == 2
        assert "belongs to the stacks" in capsys.readouterr().err


def test_a_client_name_that_cannot_name_its_keys_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["clients", "create", "Acme Corp"]) == 2
    assert "lowercase" in capsys.readouterr().err


def test_api_url_names_where_a_regions_health_is_probed_and_nothing_else_moves_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An emulator's or a VPC endpoint's AWS_ENDPOINT_URL says where AWS's APIs answer, not the payment API.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    args = build_parser().parse_args(
        ["--api-url", "us-east-2=http://127.0.0.1:4566/_aws/execute-api/abc/prod/", "status"]
    )

    target = _target(args)

    assert target.api_url("us-east-2") == "http://127.0.0.1:4566/_aws/execute-api/abc/prod"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--api-url", "us-east-2", "status"])
