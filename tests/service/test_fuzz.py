"""Property-based fuzzing of the whole API from its OpenAPI document (schemathesis), with an admin token.

Every operation gets a bounded number of generated requests (valid and invalid): no answer may be a 5xx,
and answers must conform to the schema. Requests go through the test's own ``client`` so that they run
inside its rolled-back transaction like every service test.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.app import create_app

MAX_EXAMPLES = 12
# What an answer must be. Not checked: whether the handler's own semantic checks are expressible in the schema
# (schemathesis' positive/negative data acceptance) — e.g. a self-intersecting polygon is valid JSON Schema.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]

# The schema only: this app is never started (no database is touched at import).
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app())


def _as_bytes(part: tuple) -> tuple:
    """Generated form parts may hold numbers; the test client sends bytes, as a browser would."""
    name, value = part
    if isinstance(value, tuple):
        filename, content, *rest = value
        if not isinstance(content, (bytes, str)):
            content = str(content)
        return name, (filename, content, *rest)
    return name, value if isinstance(value, (bytes, str)) else str(value)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
    derandomize=True,
)
def test_no_5xx_and_answers_conform(case, client, auth) -> None:  # noqa: ANN001
    headers = auth("admin", name="fuzzer")
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
    kwargs.pop("cookies", None)
    if kwargs.get("files"):
        kwargs["files"] = [_as_bytes(part) for part in kwargs["files"]]
    response = client.request(**kwargs)
    response.request.read()
    assert response.status_code < 500, f"{case.method} {kwargs['url']}: {response.status_code} {response.text[:500]}"
    case.validate_response(response, checks=CHECKS, headers=headers, transport_kwargs=kwargs)
