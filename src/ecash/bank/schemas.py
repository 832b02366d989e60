"""The error half of the contract: which problem ``code``s each operation can
answer, by HTTP status, published in ``/openapi.json`` as an enum on the
``code`` of each error response (the bodies themselves are ``models``).

A code missing here is a drift between the bank and its document: the tests
validate every recorded response, problems included, against these enums.
"""

from __future__ import annotations

from typing import Any

PROBLEM_MEDIA = "application/problem+json"

ROLE_TEXT = {
    "holder": "a holder's credential, for its own account",
    "merchant": "a merchant's credential",
    "operator": "the operator's credential",
}

AUTH: dict[int, set[str]] = {401: {"unauthenticated"}, 403: {"forbidden"},
                             429: {"rate_limited"}}
ALWAYS: dict[int, set[str]] = {
    429: {"rate_limited"},  # per client address, before anything else
    500: {"internal"},
    503: {"database_unavailable", "signer_unavailable", "busy"},
}
SHAPE = {"missing_key", "unknown_key", "bad_type", "bad_hex", "wrong_length", "out_of_range",
         "duplicate_key", "bad_value"}
"""What a body's shape can be refused for (the mapping of pydantic's errors
and of the JSON parser's, in ``api.validation_code``)."""
BODY: dict[int, set[str]] = {400: {"not_json"}, 413: {"body_too_large"}, 422: SHAPE}
CANONICAL = {"non_canonical_element", "identity_element", "non_canonical_scalar",
             "zero_scalar"}
SPENDS = CANONICAL | {"request_malformed", "bad_currency", "too_large"}
PARAMETER: dict[int, set[str]] = {422: {"bad_parameter"}}
ACCOUNT: dict[int, set[str]] = {404: {"not_found"}}

OPERATION_CODES: dict[str, dict[int, set[str]]] = {
    "spent_range": {404: {"unknown_generation"},
                    422: {"bad_prefixes", "bad_prefix_bits", "bad_cursor"}},
    "register": {409: {"identity_registered", "identity_taken"},
                 422: CANONICAL | {"proof_invalid", "bad_identity"}},
    "start_withdrawal": {402: {"insufficient_funds"}, 403: {
        "account_not_active", "account_frozen", "daily_load_limit", "net_load_limit"},
        409: {"identity_not_registered"},
        422: {"unknown_key", "key_not_withdrawable", "bad_coin_count", "account_closed"},
        429: {"too_many_open_commitments"}},
    "start_exchange": {402: {"insufficient_funds"}, 403: {"account_not_active",
                                                          "account_frozen"},
                       409: {"identity_not_registered", "coin_already_spent",
                             "redemption_refused"},
                       422: SPENDS | {"unknown_key", "key_not_withdrawable", "bad_coin_count",
                                      "redemption_refused", "bad_redemption",
                                      "account_closed"},
                       429: {"too_many_open_commitments"}},
    "answer_withdrawal": {402: {"insufficient_funds"}, 403: {
        "account_not_active", "account_frozen", "daily_load_limit", "net_load_limit"},
                          404: {"not_found"}, 409: {"challenges_mismatch", "redemption_refused",
                                                    "bad_nonce", "coin_already_spent"},
                          410: {"session_expired"},
                          422: CANONICAL | {"bad_challenges", "redemption_refused"}},
    "redeem": {403: {"account_not_active"}, 409: {"account_frozen"}, 413: {"batch_too_large"},
               422: SPENDS | {"account_closed"}},
    "close": {409: {"account_frozen"}, 422: {"account_closed"}},
    "dispute": {422: SPENDS | {"bad_dispute", "bad_currency"}},
    "certificate": {422: {"bad_public_key"}},
    "deposit": {403: {"account_not_active"}, 413: {"batch_too_large"}, 422: SPENDS},
    "open_account": {422: {"bad_holder", "bad_text"}},
    "credit": {409: {"reference_reused"},
               422: {"bad_amount", "bad_reference", "bad_text", "account_closed"}},
    "set_status": {422: {"bad_status", "bad_text", "account_closed"}},
    "set_policy": {422: {"bad_policy"}},
    "register_merchant": {409: {"already_merchant", "merchant_id_taken"},
                          422: {"bad_merchant_id", "bad_text"}},
    "fraud_case": {404: {"not_found"}},
    "dispute_info": {404: {"not_found"}},
}


def _merge(*tables: dict[int, set[str]]) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    for table in tables:
        for status, codes in table.items():
            out.setdefault(status, set()).update(codes)
    return out


def problem_schema(codes: set[str]) -> dict:
    return {"type": "object", "additionalProperties": False,
            "required": ["type", "title", "status", "detail", "code"],
            "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                           "status": {"type": "integer"}, "detail": {"type": "string"},
                           "code": {"type": "string", "enum": sorted(codes)},
                           # members some problems carry (account_frozen, bad_policy)
                           "reason": {"type": "string"},
                           "case": {"type": ["integer", "null"]},
                           "key": {"type": "string"}}}


def error_responses(name: str, *, role: str | None, body: bool,
                    path_params: bool) -> dict[int | str, dict[str, Any]]:
    """The operation's error responses: each status with its problem codes."""
    tables = [ALWAYS, OPERATION_CODES.get(name, {})]
    if role is not None:
        tables.append(AUTH)
    if body:
        tables.append(BODY)
    if path_params:
        tables += [PARAMETER, ACCOUNT]
    out: dict[int | str, dict[str, Any]] = {}
    for status, codes in sorted(_merge(*tables).items()):
        out[status] = {
            "description": "Problem details (RFC 9457); `code` is one of: "
                           + ", ".join(f"`{c}`" for c in sorted(codes)),
            "content": {PROBLEM_MEDIA: {"schema": problem_schema(codes)}}}
    return out


def operation_extra(role: str | None) -> dict[str, Any]:
    """``x-role``: who may call the operation (the bearer credential's role)."""
    return {"x-role": role or "public"}
