"""``/openapi.json`` says everything an independent client needs: each
operation's request and response bodies, its role and bearer security, the
problem codes of each error; every response the bank suite provokes is
validated against it (``bankkit.running_bank``), and schemathesis fuzzes a
live bank with it."""

from __future__ import annotations

import json
import time

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from ecash.bank.api import create_app
from ecash.bank.config import BankConfig
from ecash.bank.models import Verdicts
from ecash.bank.ratelimit import RateLimiter
from ecash.serving.threaded import ThreadedServer

from ..bankkit import running_bank, token_of
from ..openapi_contract import Recorded, violations

PUBLIC = {"/v1/health", "/v1/keyset", "/v1/generations", "/v1/spent-range"}


@pytest.fixture(scope="module")
def doc(tmp_path_factory):
    with running_bank("sqlite", tmp_path_factory.mktemp("doc")) as env:
        return env.client().http.get("/openapi.json").json()


def operations(doc: dict):
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield path, method, op


def _resolve(doc: dict, schema: dict) -> dict:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = doc["components"]["schemas"][name]
    return schema


def test_every_operation_documents_its_bodies(doc):
    seen = 0
    for path, method, op in operations(doc):
        seen += 1
        ok = op["responses"]["200"]["content"]["application/json"]["schema"]
        body = _resolve(doc, ok)
        assert body.get("properties"), f"{method} {path}: empty response schema"
        if method == "post" and path not in ("/v1/accounts/{account_id}/close",
                                             "/v1/operator/maintenance"):
            req = op["requestBody"]["content"]["application/json"]["schema"]
            model = _resolve(doc, req)
            assert model.get("properties") and model.get("additionalProperties") is False, path
            assert op["requestBody"]["required"] is True, path
    assert seen == 29  # with the operator policy (GET and PUT)


def test_every_operation_states_its_role_and_security(doc):
    scheme = doc["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for path, method, op in operations(doc):
        if path in PUBLIC:
            assert op["x-role"] == "public" and "security" not in op, path
            continue
        assert op["security"] == [{"bearer": []}], f"{method} {path}"
        assert op["x-role"] in ("holder", "merchant", "operator"), path
        assert f"Role: **{op['x-role']}**" in op["description"], path
        assert {"401", "403", "429"} <= set(op["responses"]), path


def test_every_error_response_lists_its_codes(doc):
    for path, method, op in operations(doc):
        errors = {s: r for s, r in op["responses"].items() if s[0] in "45"}
        assert {"429", "500", "503"} <= set(errors), f"{method} {path}"
        for status, r in errors.items():
            schema = r["content"]["application/problem+json"]["schema"]
            codes = schema["properties"]["code"]["enum"]
            assert codes and all(f"`{c}`" in r["description"] for c in codes), (path, status)
        assert {"signer_unavailable", "database_unavailable"} <= set(
            errors["503"]["content"]["application/problem+json"]["schema"]["properties"]
            ["code"]["enum"])


def test_the_caps_and_the_commitment_order_are_stated(doc, tmp_path):
    """The caps are this bank's (its BankConfig), as maxItems and in words."""
    caps = BankConfig(max_coins_per_session=7, max_outstanding_coins=11, max_deposit_batch=9)
    with running_bank("sqlite", tmp_path, caps) as env:
        own = env.client().http.get("/openapi.json").json()
    schemas = own["components"]["schemas"]
    key_ids = schemas["WithdrawalStart"]["properties"]["key_ids"]
    assert key_ids["maxItems"] == 7 and "at most 11 (max_outstanding_coins)" in \
        key_ids["description"]
    assert schemas["Spends"]["properties"]["spends"]["maxItems"] == 9
    assert schemas["WithdrawalAnswer"]["properties"]["challenges"]["maxItems"] == 7
    assert schemas["WithdrawalOffer"]["properties"]["coins"]["maxItems"] == 7
    assert schemas["Verdicts"]["properties"]["verdicts"]["maxItems"] == 9
    assert doc["components"]["schemas"]["Spends"]["properties"]["spends"]["maxItems"] == \
        BankConfig().max_deposit_batch
    schemas = doc["components"]["schemas"]
    order = schemas["OfferedCoin"]["properties"]["commitments"]
    assert order["minItems"] == order["maxItems"] == 4 and "a0, b0, a1, b1" in \
        order["description"]
    proof = schemas["FraudProof"]["properties"]
    assert {"spend1", "spend2", "key"} <= set(proof)


def test_a_drifted_response_is_reported(doc):
    """The check the bank suite runs on every response can fail: a verdict
    with a key the document does not have, a status it does not list, a
    problem code it does not list."""
    good = {"verdicts": [{"status": "accepted", "replay": False, "credited": 1,
                          "amount": 1}]}
    Verdicts.model_validate(good)
    path = "/v1/merchant/deposits"
    ok = Recorded("POST", path, 200, "application/json", json.dumps(good).encode())
    assert violations(doc, [ok]) == []
    drifted = {"verdicts": [{**good["verdicts"][0], "extra": 1}]}
    bad = [Recorded("POST", path, 200, "application/json", json.dumps(drifted).encode()),
           Recorded("POST", path, 418, "application/json", b"{}"),
           Recorded("POST", path, 422, "application/problem+json", json.dumps(
               {"type": "t", "title": "x", "status": 422, "detail": "", "code": "nope"}
           ).encode())]
    found = violations(doc, bad)
    assert len(found) == 3 and "extra" in found[0] and "418" in found[1] and \
        "nope" in found[2], found


def test_schemathesis_finds_no_server_error_and_no_schema_violation(tmp_path):
    """Generated requests of every operation, with the credential of its role,
    against a live bank: no 5xx, every response as documented."""
    with running_bank("sqlite", tmp_path) as env:
        alice = env.holder("Alice", funds=1000)
        shop = env.merchant("shop")
        tokens = {"holder": token_of(alice.client), "merchant": token_of(shop),
                  "operator": token_of(env.operator)}
        app = create_app(env.bank, rate_limit=RateLimiter(1e6, 1e6))
        schema = schemathesis.openapi.from_dict(app.openapi())
        deadline = time.monotonic() + 45
        with ThreadedServer(app) as url:
            for result in schema.get_all_operations():
                operation = result.ok()
                role = operation.definition.raw.get("x-role", "public")
                headers = {"authorization": f"Bearer {tokens[role]}"} if role in tokens else {}
                path_parameters = ({"account_id": alice.account_id}
                                   if "{account_id}" in operation.path and role == "holder"
                                   else {})
                strategy = operation.as_strategy(path_parameters=path_parameters or None,
                                                 headers=headers or None)

                @settings(max_examples=12, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck))
                @given(case=strategy)
                def fuzz(case) -> None:
                    case.call_and_validate(base_url=url, checks=[
                        not_a_server_error, response_schema_conformance])

                fuzz()
                assert time.monotonic() < deadline, "schemathesis run over its time budget"
