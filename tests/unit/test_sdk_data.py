"""The trimmed botocore data the functions' clients are built from (``make sdk-data``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore import xform_name

from chalicelib import adapters, sdk
from tools import sdk_data

REGIONS = (
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "eu-west-1",
    "ap-southeast-2",
    "cn-north-1",
    "us-gov-west-1",
)


def called_operations(source: str, receivers: str) -> set[str]:
    """Client method names called in ``source`` on receivers matching the ``receivers`` pattern."""
    return set(re.findall(rf"(?:{receivers})\.([a-z][a-z_]*)\(", source))


def test_the_committed_data_is_what_the_pinned_botocore_generates(tmp_path: Path) -> None:
    sdk_data.generate(tmp_path)

    assert sdk_data.differences(sdk.SDK_DATA, tmp_path) == []


def test_every_operation_the_adapters_call_is_listed() -> None:
    listed = {service: {xform_name(name) for name in names} for service, names in sdk.SDK_OPERATIONS.items()}
    adapter_files = Path(adapters.__file__).parent.glob("*.py")
    ours = called_operations(
        "".join(path.read_text() for path in adapter_files),
        r"self\._client|self\._dynamodb|self\._sqs|self\._client\(region\)",
    )

    assert ours >= {
        "put_item",
        "send_message",
        "publish_batch",
        "get_parameter",
    }  # the scan sees them
    assert ours <= set().union(*listed.values())


def test_clients_are_built_from_the_trimmed_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sdk, "_session", sdk.sdk_session())

    sqs = sdk.make_client("sqs", "us-east-1")

    assert hasattr(sqs, "send_message")
    assert not hasattr(sqs, "create_queue")


@pytest.mark.parametrize("service", sorted(sdk.SDK_OPERATIONS))
def test_endpoints_resolve_as_with_botocores_own_data(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setattr(sdk, "_session", sdk.sdk_session())
    full = botocore.session.get_session()

    for region in REGIONS:
        ours = sdk.make_client(service, region)
        theirs = full.create_client(service, region_name=region, config=sdk.CLIENT_CONFIG)
        assert ours.meta.endpoint_url == theirs.meta.endpoint_url, region
        assert ours.meta.partition == theirs.meta.partition, region


def test_a_trimmed_model_keeps_only_what_its_operations_reach() -> None:
    model: dict[str, Any] = {
        "version": "2.0",
        "documentation": "the service",
        "metadata": {"protocol": "json"},
        "operations": {
            "Wanted": {
                "name": "Wanted",
                "input": {"shape": "In"},
                "errors": [{"shape": "Oops"}],
                "documentation": "d",
            },
            "Unwanted": {"name": "Unwanted", "input": {"shape": "Other"}},
        },
        "shapes": {
            "In": {
                "type": "structure",
                "members": {
                    "documentation": {"shape": "Text", "documentation": "a member may be called anything"},
                    "Nested": {"shape": "Tree"},
                },
                "documentation": "input",
            },
            "Tree": {"type": "map", "key": {"shape": "Text"}, "value": {"shape": "Tree"}},
            "Oops": {"type": "structure", "members": {}, "exception": True},
            "Text": {"type": "string"},
            "Other": {"type": "structure", "members": {"Unused": {"shape": "Unused"}}},
            "Unused": {"type": "list", "member": {"shape": "Text"}},
        },
    }

    trimmed = sdk_data.trimmed_model(model, ["Wanted"])

    assert set(trimmed["operations"]) == {"Wanted"}
    assert set(trimmed["shapes"]) == {"In", "Tree", "Oops", "Text"}
    assert trimmed["shapes"]["In"]["members"] == {
        "documentation": {"shape": "Text"},
        "Nested": {"shape": "Tree"},
    }
    assert "documentation" not in trimmed and "documentation" not in trimmed["operations"]["Wanted"]
    assert trimmed["metadata"] == {"protocol": "json"}


def test_credentials_in_the_environment_are_what_clients_sign_with(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDLAMBDAROLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "role-secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "role-token")

    credentials = sdk.sdk_session().get_credentials()

    assert (credentials.method, credentials.access_key, credentials.token) == (
        "env",
        "AKIDLAMBDAROLE",
        "role-token",
    )


def test_without_environment_credentials_the_whole_chain_is_asked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    shared = tmp_path / "credentials"
    shared.write_text("[default]\naws_access_key_id = AKIDFROMFILE\naws_secret_access_key = file-secret\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(shared))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))

    credentials = sdk.sdk_session().get_credentials()

    assert (credentials.method, credentials.access_key) == ("shared-credentials-file", "AKIDFROMFILE")


@pytest.mark.parametrize(
    ("version", "readable"),
    [(botocore.__version__, True), ("1.99.0", True), ("2.0.0", True), ("1.0.0", False), ("0.99.99", False)],
)
def test_only_botocore_as_new_as_the_generator_reads_the_trimmed_data(version: str, readable: bool) -> None:
    assert sdk.sdk_data_readable_by(version) is readable


def test_an_older_botocore_builds_clients_from_its_own_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(botocore, "__version__", "1.0.0")  # as a Lambda runtime older than the pin
    monkeypatch.setattr(sdk, "_session", sdk.sdk_session())

    sqs = sdk.make_client("sqs", "us-east-1")

    assert hasattr(sqs, "send_message") and hasattr(sqs, "create_queue")
