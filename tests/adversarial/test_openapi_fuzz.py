"""Schema-driven fuzzing of the bank's HTTP API (schemathesis strategies driven
by hypothesis, over real sockets): no 5xx, and every status, content type and
body as documented in ``/openapi.json``, for each role's credential."""

from __future__ import annotations

from collections import Counter

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode, checks

from ..bankkit import running_bank

CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_schema_conformance]


def test_bank_api_never_fails_and_matches_its_schema(tmp_path):
    with running_bank("sqlite", tmp_path) as env:
        holder = env.holder("fuzz holder")
        creds = [{}, {"authorization": holder.client.http.headers["authorization"]},
                 {"authorization": env.operator.http.headers["authorization"]},
                 {"authorization": env.merchant("fuzz-shop").http.headers["authorization"]}]
        schema = schemathesis.openapi.from_url(env.url + "/openapi.json")
        operations = [r.ok() for r in schema.get_all_operations()]
        assert len(operations) >= 20
        statuses: Counter[int] = Counter()
        for op in operations:
            cases = st.one_of(op.as_strategy(GenerationMode.POSITIVE),
                              op.as_strategy(GenerationMode.NEGATIVE))

            @given(case=cases)
            @settings(max_examples=12, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            def fuzz(case):
                for headers in creds:
                    statuses[case.call_and_validate(headers=headers,
                                                    checks=CHECKS).status_code] += 1

            fuzz()
        # the run reached the handlers: refusals of every kind, and some successes
        assert {200, 401, 403, 404, 422} <= set(statuses), statuses
        assert env.operator.audit()["ok"]
