"""Schemathesis against the running local API, from the checked-in OpenAPI document.

Generated requests, valid and invalid (wrong types, missing fields, huge numbers, unicode,
oversized strings), go over HTTP to `chalice local`. Every response must be documented, never a
5xx, and every 4xx must be a JSON error that names what was wrong. Requests without the API key
must be refused (schemathesis' ``ignored_auth`` check).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi import checks as openapi_checks

from localenv.environment import LocalEnvironment
from tests.integration.conftest import PRIMARY

pytestmark = pytest.mark.integration

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
# TRACE and QUERY never reach the app behind API Gateway, and `chalice local`'s HTTP server
# answers them with its own 501 page; every other undeclared method is tried.
CONFIG = SchemathesisConfig.from_dict(
    {"phases": {"coverage": {"unexpected-methods": ["get", "put", "post", "delete", "options", "patch"]}}}
)
schema = schemathesis.openapi.from_path(OPENAPI, config=CONFIG)
# Answered before any route runs, in the gateway's or the framework's own format: a missing API
# key (API Gateway: {"message": "Forbidden"}) and a method the route does not have (Chalice:
# {"Code": "MethodNotAllowedError", "Message": ...}).
FRAMEWORK_STATUSES = {403: "message", 405: "Message"}


def names_the_problem(ctx: Any, response: Any, case: Any) -> bool:
    """Every 4xx is JSON listing each problem with the field it concerns and a message."""
    if not 400 <= response.status_code < 500:
        return True
    body = response.json()
    if "errors" not in body and FRAMEWORK_STATUSES.get(response.status_code) in body:
        return True
    problems = body.get("errors")
    assert isinstance(problems, list) and problems, f"{response.status_code} without an errors list: {body}"
    for problem in problems:
        assert problem.get("field") and problem.get("message"), (
            f"a problem without field or message: {problem}"
        )
    return True


CHECKS = [
    checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.ignored_auth,
    names_the_problem,
]


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_api_honours_its_contract(case: Any, environment: LocalEnvironment) -> None:
    case.call_and_validate(
        base_url=environment.api_url(PRIMARY), headers={"x-api-key": environment.api_key}, checks=CHECKS
    )
