"""Property-based requests from the OpenAPI schema: no input may cause a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Err
from schemathesis.python.asgi import shutdown_lifespans

from lookalike.api.app import create_app
from lookalike.config import Settings
from tests.api.conftest import AUTH

pytestmark = pytest.mark.dataset
EXAMPLES = 20


def test_no_server_errors(api_settings: Settings) -> None:
    # Its own app: schemathesis runs (and keeps) the lifespan of the app it is given.
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", create_app(api_settings))
    checked = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):  # an operation the schema cannot describe: a bug here
            raise result.err()
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case) -> None:  # type: ignore[no-untyped-def]
            # Writes carry the key, so the authorised code paths are exercised too.
            headers = AUTH if case.method in ("POST", "PUT", "DELETE") else {}
            response = case.call(headers=headers)
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
            )

        run()
        checked.append(f"{operation.method.upper()} {operation.path}")
    shutdown_lifespans()
    assert len(checked) >= 12, checked
