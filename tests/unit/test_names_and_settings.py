"""Names and settings: one source for the runtime, the Chalice config and the stacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chalicelib.names import EnvVar, ResourceNames
from chalicelib.settings import Settings, SettingsError
from stacks.functions import FUNCTIONS

CHALICE_CONFIG = Path(__file__).resolve().parents[2] / "runtime" / ".chalice" / "config.json"


def test_resource_names_follow_the_spec() -> None:
    names = ResourceNames("dev")

    assert names.payments_table == "payments-dev"
    assert names.payment_queue == "payment-queue-dev"
    assert names.payment_dlq == "payment-dlq-dev"
    assert names.rest_api == "payment-api-dev"
    assert names.dashboard("us-east-2") == "payment-dr-dev-us-east-2"


def test_chalice_config_sizes_every_function_as_the_spec_says() -> None:
    config = json.loads(CHALICE_CONFIG.read_text())

    assert set(config["stages"]) == {"local", "prod"}
    functions = config["lambda_functions"]
    assert {name: (f["lambda_memory_size"], f["lambda_timeout"]) for name, f in functions.items()} == {
        name: (s.memory_mb, s.timeout_seconds) for name, s in FUNCTIONS.items()
    }
    assert {(s.memory_mb, s.timeout_seconds) for s in FUNCTIONS.values()} == {
        (512, 30),
        (1024, 60),
        (256, 60),
        (256, 30),  # the canary: beyond the seed
    }


def test_settings_derive_names_from_the_suffix_and_take_explicit_ones() -> None:
    settings = Settings.from_environment(
        {EnvVar.REGION: "us-east-2", EnvVar.ENVIRONMENT_SUFFIX: "qa", EnvVar.PAYMENT_QUEUE_URL: "http://q"}
    )

    assert settings.region == "us-east-2"
    assert settings.payments_table == "payments-qa"
    assert settings.payment_queue_url == "http://q"


def test_settings_without_a_region_fail_clearly() -> None:
    with pytest.raises(SettingsError, match="AWS_REGION"):
        Settings.from_environment({})
