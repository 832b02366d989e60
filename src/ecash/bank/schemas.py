"""JSON schemas of the API's bodies, published in ``/openapi.json``.

The handlers decode with the strict ``ecash.wire`` decoders; these schemas
describe the same shapes for clients and for schema-driven fuzzing.
"""

from __future__ import annotations

from typing import Any


def hexs(n: int) -> dict:
    return {"type": "string", "pattern": f"^[0-9a-f]{{{2 * n}}}$"}


INT = {"type": "integer", "minimum": 0, "maximum": 2**53 - 1}
STR = {"type": "string"}


def obj(**props: Any) -> dict:
    return {"type": "object", "properties": props, "required": list(props),
            "additionalProperties": False}


COIN = obj(key_id=hexs(32), A=hexs(32), B=hexs(32), z=hexs(32), a=hexs(32), b=hexs(32),
           r=hexs(32))
REQUEST = obj(merchant_id={"type": "string", "minLength": 1, "maxLength": 64}, amount=INT,
              currency={"type": "string", "pattern": "^[A-Z]{3}$"}, timestamp_ms=INT,
              nonce=hexs(16))
SPEND = obj(coin=COIN, request=REQUEST, r1=hexs(32), r2=hexs(32))
KEY = obj(key_id=hexs(32), h=hexs(32), value=INT, currency=STR, withdraw_start=INT,
          withdraw_end=INT, deposit_end=INT, signature=hexs(64))
POLICY = obj(currency=STR, deposit_window_s=INT, floor_limit=INT, holding_limit=INT,
             single_payment_limit=INT, daily_offline_limit=INT, consecutive_offline_limit=INT,
             issued_at=INT)
KEYSET = obj(master_public_key=hexs(32), keys={"type": "array", "items": KEY}, policy=POLICY,
             policy_signature=hexs(64))
SPENDS = obj(spends={"type": "array", "items": SPEND, "minItems": 1, "maxItems": 1000})
KEY_IDS = {"type": "array", "items": hexs(32), "minItems": 1, "maxItems": 256}
WITHDRAW = obj(key_ids=KEY_IDS)
EXCHANGE = obj(spends={"type": "array", "items": SPEND, "minItems": 1, "maxItems": 256},
               key_ids=KEY_IDS)
CHALLENGES = obj(challenges={"type": "array", "minItems": 1, "maxItems": 256, "items": {
    "type": "array", "items": hexs(32), "minItems": 2, "maxItems": 2}})
REGISTRATION = obj(I=hexs(32), t=hexs(32), p=hexs(32))
SPENT_RANGE = obj(generation=INT, prefix_bits={"type": "integer", "minimum": 0, "maximum": 20},
                  prefixes={"type": "array", "items": INT, "minItems": 1, "maxItems": 64,
                            "uniqueItems": True},
                  after={"oneOf": [hexs(32), {"type": "null"}]})
PUBLIC_KEY = obj(public_key=hexs(32))
OPEN_ACCOUNT = obj(holder={"type": "string", "minLength": 1, "maxLength": 200})
CREDIT = obj(amount=INT, reference={"type": "string", "minLength": 1, "maxLength": 64})
STATUS = obj(status={"type": "string", "enum": ["active", "frozen"]})
MERCHANT = obj(merchant_id={"type": "string", "minLength": 1, "maxLength": 64})
CERTIFICATE = obj(merchant_id={"type": "string", "minLength": 1, "maxLength": 64},
                  public_key=hexs(32), valid_until=INT, signature=hexs(64))
ENVELOPE = obj(request=REQUEST, pos_url=STR, certificate=CERTIFICATE, signature=hexs(64))
REFUSAL = obj(request_id=hexs(32), payment_digest=hexs(32),
              code={"type": "string", "pattern": "^[a-z0-9_]{1,64}$"}, signature=hexs(64))
DISPUTE = obj(envelope=ENVELOPE, spends={"type": "array", "items": SPEND, "minItems": 1,
                                         "maxItems": 256}, refusal=REFUSAL)


def body(schema: dict) -> dict:
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": schema}}}}


def response(schema: dict) -> dict:
    return {"responses": {"200": {"description": "OK", "content": {"application/json": {
        "schema": schema}}}}}


PROBLEM = {"type": "object", "required": ["type", "title", "status", "detail", "code"],
           "properties": {"type": STR, "title": STR, "status": {"type": "integer"},
                          "detail": STR, "code": STR}}
PROBLEM_RESPONSES: dict[int | str, dict] = {
    status: {"description": "Problem details (RFC 9457) with a stable `code`",
             "content": {"application/problem+json": {"schema": PROBLEM}}}
    for status in (400, 401, 402, 403, 404, 405, 409, 410, 413, 422, 429, 503)}
