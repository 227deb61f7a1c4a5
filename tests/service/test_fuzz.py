"""Property-based fuzzing of the whole API from its OpenAPI document (schemathesis), with an admin token.

Every operation gets a bounded number of generated requests (valid and invalid): no answer may be a 5xx,
and answers must conform to the schema. Requests go through the test's own ``client`` so that they run
inside its rolled-back transaction like every service test.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings

from service.app import create_app

MAX_EXAMPLES = 12

# The schema only: this app is never started (no database is touched at import).
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app())


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
    response = client.request(**kwargs)
    assert response.status_code < 500, f"{case.method} {kwargs['url']}: {response.status_code} {response.text[:500]}"
    case.validate_response(response, headers=headers, transport_kwargs=kwargs)
