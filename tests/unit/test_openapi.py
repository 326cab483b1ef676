"""The checked-in OpenAPI document describes exactly the routes the app serves."""

from __future__ import annotations

from pathlib import Path

import yaml

from app import app

OPENAPI = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"


def documented() -> dict[str, dict[str, dict]]:
    return yaml.safe_load(OPENAPI.read_text())["paths"]


def test_every_route_is_documented_and_every_documented_route_exists() -> None:
    served = {(path, method.lower()) for path, methods in app.routes.items() for method in methods}
    described = {(path, method) for path, methods in documented().items() for method in methods}

    assert described == served


def test_the_document_and_the_app_agree_on_which_routes_need_an_api_key() -> None:
    spec = yaml.safe_load(OPENAPI.read_text())
    default_security = spec["security"]
    for path, methods in documented().items():
        for method, operation in methods.items():
            needs_key = operation.get("security", default_security) != []
            assert needs_key == bool(app.routes[path][method.upper()].api_key_required), (path, method)


def test_the_document_loads_as_openapi_3() -> None:
    import schemathesis

    schema = schemathesis.openapi.from_path(OPENAPI)

    # The payment routes, /health, and the five of webhook endpoints.
    assert len(list(schema.get_all_operations())) == 10


def test_the_document_is_valid_openapi_so_client_generators_can_use_it() -> None:
    from openapi_spec_validator import validate
    from openapi_spec_validator.readers import read_from_filename

    document, _ = read_from_filename(str(OPENAPI))

    validate(document)
    timestamp = document["components"]["schemas"]["PaymentRecord"]["properties"]["timestamp"]
    assert set(timestamp) == {"type", "description"}
