"""Hostile input on every endpoint: each is refused with a 4xx problem
details document (``application/problem+json`` with a ``code``), never a
5xx, and changes nothing in the database."""

from __future__ import annotations

import copy
import json
import socket
from collections.abc import Iterator

import httpx
import pytest

from ecash.bank.ratelimit import RateLimiter
from ecash.bank.routing import MAX_BODY
from ecash.crypto import group
from ecash.crypto import registration as reg
from ecash.wire import json as wj

from ..bankkit import raw, running_bank, state_snapshot, token_of

NOT_CANONICAL = [(group.q).to_bytes(32, "little").hex(), "ff" * 32,
                 (group.q + 5).to_bytes(32, "little").hex()]
IDENTITY = "00" * 32
NON_CANONICAL_ELEMENT = "ff" * 32  # bit 255 set
WRONG_TYPES = [None, True, 1.5, -1, "x", [], {}]


def _hex_mutations(value: str, *, scalar: bool = False, element: bool = False) -> list:
    out = [value.upper() if value.upper() != value else "G" + value[1:],
           value[:-2], value + "00", " " + value[1:], "0x" + value[2:]]
    if scalar:
        out += NOT_CANONICAL
    if element:
        out += [IDENTITY, NON_CANONICAL_ELEMENT]
    return out


def _paths(obj: object, prefix: tuple = ()) -> Iterator[tuple]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:1]):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


def _set(obj: object, path: tuple, value: object) -> object:
    obj = copy.deepcopy(obj)
    cur = obj
    for p in path[:-1]:
        cur = cur[p]
    if value is _DELETE:
        del cur[path[-1]]
    else:
        cur[path[-1]] = value
    return obj


_DELETE = object()
SCALARS = {"r", "r1", "r2", "p"}
ELEMENTS = {"A", "B", "z", "a", "b", "I", "t"}


def mutations(valid: dict, *, elements: set[str] = ELEMENTS) -> Iterator[tuple[str, object]]:
    """Malformed variants of a valid body: every key missing, an extra key at
    every level, wrong types, bad hex, non-canonical scalars, the identity."""
    yield "extra key", {**valid, "extra": 1}
    for path in _paths(valid):
        name = ".".join(map(str, path))
        parent = valid
        for p in path[:-1]:
            parent = parent[p]
        current = parent[path[-1]]
        if isinstance(parent, dict):
            yield f"{name} missing", _set(valid, path, _DELETE)
            if isinstance(current, dict):
                yield f"{name} extra key", _set(valid, path, {**current, "Extra": "00"})
        for bad in WRONG_TYPES:
            if type(bad) is not type(current) or isinstance(bad, bool):
                yield f"{name} = {bad!r}", _set(valid, path, bad)
        if isinstance(current, str) and len(current) >= 32 and all(
                c in "0123456789abcdef" for c in current):
            key = path[-1] if isinstance(path[-1], str) else ""
            scalar = key in SCALARS or "challenges" in path
            for bad in _hex_mutations(current, scalar=scalar,
                                      element=key in elements):
                yield f"{name} = {bad!r}", _set(valid, path, bad)
        if isinstance(current, int) and not isinstance(current, bool):
            for bad in (-1, 2**53, 10**30, float(current)):
                yield f"{name} = {bad!r}", _set(valid, path, bad)


MALFORMED = [b"", b"{", b"null", b"[]", b'"x"', b"1", b"{'a': 1}", b"\xff\xfe",
             b'{"a": NaN}', b"[" * 50_000, b'{"x": 1, "x": 1}']


@pytest.fixture
def world(env):
    alice = env.holder("Alice", funds=10_000)
    shop = env.merchant("shop")
    coins = alice.withdraw([1, 2])
    offer, states = alice.start([4])
    spend = wj.spend_to_json(alice.pay(coins[:1], "shop")[0])
    redeem = wj.spend_to_json(alice.pay(coins[1:], "bank")[0])
    unregistered, token = env.operator.open_account("Bob")
    env.operator.credit(unregistered, 10, "r")
    proof = reg.prove(group.random_scalar(), unregistered)
    key_id = env.operator.keyset().keys[0].key_id.hex()
    return {
        "env": env, "alice": alice.account_id, "bob": unregistered,
        "tokens": {"holder": token_of(alice.client), "merchant": token_of(shop),
                   "operator": token_of(env.operator), "bob": token, None: None},
        "session": offer["session_id"],
        "challenges": [[group.encode_scalar(c).hex() for c in s.challenges] for s in states],
        "spend": spend, "redeem": redeem, "key_id": key_id,
        "proof": {"I": proof.I.hex(), "t": proof.t.hex(),
                  "p": group.encode_scalar(proof.p).hex()},
    }


def endpoints(w: dict) -> list[tuple[str, str, str | None, dict]]:
    """Every endpoint that takes a body: (method, path, credential, a valid body)."""
    a, s = w["alice"], w["session"]
    return [
        ("POST", "/v1/spent-range", None, {"generation": 1, "prefix_bits": 8, "prefixes": [0, 7],
                                           "after": None}),
        ("POST", f"/v1/accounts/{w['bob']}/identity", "bob", w["proof"]),
        ("POST", f"/v1/accounts/{a}/withdrawals", "holder", {"key_ids": [w["key_id"]]}),
        ("POST", f"/v1/accounts/{a}/exchanges", "holder",
         {"spends": [w["redeem"]], "key_ids": [w["key_id"]]}),
        ("POST", f"/v1/accounts/{a}/withdrawals/{s}", "holder",
         {"challenges": w["challenges"]}),
        ("POST", f"/v1/accounts/{a}/redemptions", "holder", {"spends": [w["redeem"]]}),
        ("POST", "/v1/merchant/certificate", "merchant", {"public_key": "11" * 32}),
        ("POST", "/v1/merchant/deposits", "merchant", {"spends": [w["spend"]]}),
        ("POST", "/v1/operator/accounts", "operator", {"holder": "Carol"}),
        ("POST", f"/v1/operator/accounts/{a}/credit", "operator",
         {"amount": 5, "reference": "ref-1"}),
        ("POST", f"/v1/operator/accounts/{a}/status", "operator",
         {"status": "active", "text": "checked"}),
        ("POST", f"/v1/operator/accounts/{w['bob']}/merchant", "operator",
         {"merchant_id": "bobs"}),
    ]


EXTRA_BAD_VALUES = {  # values of the right type that are still wrong
    "holder": ["", " ", "x" * 201, "a\x00b", "\ud800"],
    "reference": ["", "r" * 65, "\x00", "\udfff"],
    "status": ["closed", "", "ACTIVE", "\x00"],
    "text": ["", "x" * 501, "a\x00b", "\ud800"],
    "merchant_id": ["", " bobs", "x" * 65, "ä" * 33, "\x00", "\ud800", "bank", "shop"],
    "amount": [0, 2**53 - 1 + 1],
    "prefixes": [[], [256], [-1], [0] * 257, [True], ["0"]],
    "generation": [0, 2, 2**31, 2**53 - 1],
    "key_ids": [[], ["00" * 32], ["11" * 32] * 257],
    "challenges": [[], [["00" * 32, "00" * 32]], [["01" + "00" * 31]],
                   [["01" + "00" * 31] * 3], [["01" + "00" * 31] * 2] * 2],
    "spends": [[]],
    "public_key": ["11" * 31, "11" * 33],
}


def _problem(r, label: str, failures: list[str]) -> None:
    ok = 400 <= r.status_code < 500
    if ok:
        ok = r.headers.get("content-type", "").startswith("application/problem+json")
    if ok:
        body = r.json()
        ok = isinstance(body.get("code"), str) and body.get("status") == r.status_code
    if not ok:
        failures.append(f"{label}: {r.status_code} {r.headers.get('content-type')} "
                        f"{r.text[:200]}")


def _check(env, label, failures, before, **kw) -> None:
    r = raw(env, **kw)
    _problem(r, label, failures)
    if state_snapshot(env) != before:
        failures.append(f"{label}: the database changed")


def test_hostile_bodies(world):
    env = world["env"]
    before = state_snapshot(env)
    failures: list[str] = []
    for method, path, role, valid in endpoints(world):
        token = world["tokens"][role]
        for raw_body in MALFORMED:
            _check(env, f"{path} {raw_body[:10]!r}", failures, before, method=method,
                   path=path, token=token, content=raw_body)
        cases = list(mutations(valid))
        for key, bads in EXTRA_BAD_VALUES.items():
            if key in valid:
                cases += [(f"{key} = {b!r}"[:80], {**valid, key: b}) for b in bads]
        for label, body in cases:
            try:
                content = json.dumps(body).encode()
            except ValueError:  # a lone surrogate: send it as a JSON escape
                content = json.dumps(body, ensure_ascii=True).encode()
            _check(env, f"{path} {label}", failures, before, method=method, path=path,
                   token=token, content=content)
    assert failures == [], "\n".join(failures)


def test_valid_bodies_are_accepted(world):
    """The bodies the hostile test mutates are good ones: each is accepted."""
    env = world["env"]
    for method, path, role, valid in endpoints(world):
        r = raw(env, method, path, world["tokens"][role], json_body=valid)
        assert r.status_code == 200, (path, r.text)


def test_hostile_paths_and_methods(world):
    env = world["env"]
    t = world["tokens"]
    a = world["alice"]
    before = state_snapshot(env)
    failures: list[str] = []
    body = {"challenges": world["challenges"]}
    cases = [
        ("POST", f"/v1/accounts/{a}/withdrawals/{world['session'].upper()}", "holder", body),
        ("POST", f"/v1/accounts/{a}/withdrawals/{world['session'][:-2]}", "holder", body),
        ("POST", f"/v1/accounts/{a}/withdrawals/zz{world['session'][2:]}", "holder", body),
        ("POST", f"/v1/accounts/{a}/withdrawals/{'ab' * 16}", "holder", body),
        ("GET", "/v1/accounts/acct-nobody", "holder", None),
        ("GET", "/v1/accounts/%00", "holder", None),
        ("GET", "/v1/accounts/%ED%A0%80", "holder", None),
        ("GET", "/v1/accounts/" + "x" * 1000, "holder", None),
        ("GET", "/v1/operator/accounts/%00", "operator", None),
        ("POST", "/v1/operator/accounts/%00/credit", "operator",
         {"amount": 1, "reference": "x"}),
        ("POST", "/v1/operator/accounts/%00/status", "operator",
         {"status": "frozen", "text": "x"}),
        ("POST", "/v1/operator/accounts/%00/merchant", "operator", {"merchant_id": "z"}),
        ("GET", "/v1/operator/fraud/abc", "operator", None),
        ("GET", "/v1/operator/fraud/1", "operator", None),
        ("GET", "/v1/operator/fraud/-1", "operator", None),
        ("GET", "/v1/operator/fraud/9223372036854775808", "operator", None),
        ("GET", "/v1/operator/fraud/" + "9" * 40, "operator", None),
        ("GET", "/v1/nothing-here", None, None),
        ("DELETE", "/v1/keyset", None, None),
        ("PUT", f"/v1/accounts/{a}/withdrawals", "holder", None),
        ("GET", "/v1/merchant/deposits", "merchant", None),
    ]
    for method, path, role, b in cases:
        _check(env, f"{method} {path[:60]}", failures, before, method=method, path=path,
               token=t[role], json_body=b)
    for header in ("Bearer", "Basic " + t["holder"], "Bearer " + "x" * 300,
                   "Bearer " + t["holder"] + " x", t["holder"]):
        _check(env, f"authorization {header[:20]!r}", failures, before, method="GET",
               path=f"/v1/accounts/{a}", headers={"authorization": header})
    assert failures == [], "\n".join(failures)


def test_oversized_bodies(world):
    env = world["env"]
    before = state_snapshot(env)
    big = json.dumps({"spends": [world["spend"]] * 3000}).encode()
    assert len(big) > 2 * 1024 * 1024
    r = raw(env, "POST", "/v1/merchant/deposits", world["tokens"]["merchant"], content=big)
    assert r.status_code == 413 and r.json()["code"] == "body_too_large"
    assert r.headers["content-type"].startswith("application/problem+json")

    def chunks() -> Iterator[bytes]:  # no content-length: counted while read
        for i in range(0, len(big), 65536):
            yield big[i:i + 65536]

    r = raw(env, "POST", "/v1/merchant/deposits", world["tokens"]["merchant"],
            content=chunks())
    assert r.status_code == 413 and r.json()["code"] == "body_too_large"
    r = raw(env, "POST", "/v1/operator/accounts", world["tokens"]["operator"],
            content=b'{"holder": "' + b"x" * (2 * 1024 * 1024) + b'"}')
    assert r.status_code == 413
    assert state_snapshot(env) == before
    # just under the limit is read (and refused for what it says, not its size)
    body = b'{"holder": "' + b"x" * (2 * 1024 * 1024 - 20) + b'"}'
    r = raw(env, "POST", "/v1/operator/accounts", world["tokens"]["operator"], content=body)
    assert (r.status_code, r.json()["code"]) == (422, "bad_holder")
    # a batch larger than the deposit limit
    many = {"spends": [world["spend"]] * (env.bank.config.max_deposit_batch + 1)}
    r = raw(env, "POST", "/v1/merchant/deposits", world["tokens"]["merchant"], json_body=many)
    assert 400 <= r.status_code < 500 and "code" in r.json()
    assert state_snapshot(env) == before


# --- one code path per endpoint: what the hot routes guaranteed, kept ----------

def _post(env, path: str, token: str | None, content: bytes):
    return raw(env, "POST", path, token, content=content,
               headers={"content-type": "application/json"})


def test_each_shape_error_has_the_wire_code(env):
    """The models keep section 8's strictness, with its codes: a repeated key,
    NaN, a string or float for an integer, upper-case or short hex, an unknown
    or a missing key, and a non-canonical scalar (left to the wire decoder)."""
    op = token_of(env.operator)
    alice = env.holder("Alice", funds=100)
    holder = token_of(alice.client)
    key = env.operator.keyset().keys[0].key_id.hex()
    credit = f"/v1/operator/accounts/{alice.account_id}/credit"
    withdraw = f"/v1/accounts/{alice.account_id}/withdrawals"
    cases = [
        (credit, op, b'{"amount": 1, "amount": 2, "reference": "r"}', 422, "duplicate_key"),
        (credit, op, b'{"amount": NaN, "reference": "r"}', 400, "not_json"),
        (credit, op, b"", 400, "not_json"),
        (credit, op, b'{"amount": "1", "reference": "r"}', 422, "bad_type"),
        (credit, op, b'{"amount": 1.0, "reference": "r"}', 422, "bad_type"),
        (credit, op, b'{"amount": true, "reference": "r"}', 422, "bad_type"),
        (credit, op, b'{"amount": -1, "reference": "r"}', 422, "out_of_range"),
        (credit, op, b'{"amount": 1}', 422, "missing_key"),
        (credit, op, b'{"amount": 1, "reference": "r", "x": 1}', 422, "unknown_key"),
        (credit, op, b'{"amount": 1, "reference": "a\\u0000b"}', 422, "bad_text"),
        (credit, op, b'{"amount": 1, "reference": "\\ud800"}', 422, "bad_text"),
        (withdraw, holder, b'{"key_ids": ["%s"]}' % key.upper().encode(), 422, "bad_hex"),
        (withdraw, holder, b'{"key_ids": ["%s"]}' % key[:-2].encode(), 422, "wrong_length"),
        (withdraw, holder, b'{"key_ids": []}', 422, "bad_type"),
        ("/v1/spent-range", None, b'{"generation": 1, "prefix_bits": 21, "prefixes": [0],'
                                  b' "after": null}', 422, "bad_prefix_bits"),
    ]
    before = state_snapshot(env)
    for path, token, body, status, code in cases:
        r = _post(env, path, token, body)
        assert (r.status_code, r.json()["code"]) == (status, code), (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    assert state_snapshot(env) == before
    offer, _ = alice.start([1])
    answer = f"/v1/accounts/{alice.account_id}/withdrawals/{offer['session_id']}"
    q = group.q.to_bytes(32, "little").hex()
    r = _post(env, answer, holder, json.dumps({"challenges": [[q, q]]}).encode())
    assert (r.status_code, r.json()["code"]) == (422, "non_canonical_scalar"), r.text


def test_an_unexpected_error_is_a_500_problem(tmp_path, monkeypatch):
    with running_bank("sqlite", tmp_path) as env:
        alice = env.holder("Alice", funds=100)

        def broken(*_a, **_k):
            raise RuntimeError("a bug")

        monkeypatch.setattr(env.bank, "start_withdrawal", broken)
        key = env.operator.keyset().keys[0].key_id.hex()
        r = raw(env, "POST", f"/v1/accounts/{alice.account_id}/withdrawals",
                token_of(alice.client), json_body={"key_ids": [key]})
        assert r.status_code == 500 and r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "internal" and "a bug" not in r.text
        monkeypatch.undo()
        assert alice.withdraw([1, 2])  # the server goes on serving


def test_other_methods_and_paths_are_problems(tmp_path):
    with running_bank("sqlite", tmp_path) as env:
        r = raw(env, "GET", "/v1/merchant/deposits")
        assert r.status_code == 405 and r.json()["code"] == "method_not_allowed"
        r = raw(env, "POST", "/v1/merchant/deposits/extra", json_body={})
        assert r.status_code == 404 and r.json()["code"] == "not_found"


def test_a_credential_is_rate_limited_before_its_body_is_judged(tmp_path):
    """Per authenticated principal: an unknown credential is refused, not
    given a bucket of its own."""
    limiter = RateLimiter(per_credential=1.0, per_address=1e6, burst=3)
    with running_bank("sqlite", tmp_path, rate_limit=limiter) as env:
        shop = token_of(env.merchant("shop"))
        statuses = [httpx.post(f"{env.url}/v1/merchant/deposits", json={"spends": []},
                               headers={"authorization": f"Bearer {shop}"}).status_code
                    for _ in range(6)]
        assert statuses[:3] == [422] * 3 and statuses[3:] == [429] * 3
        assert httpx.post(f"{env.url}/v1/merchant/deposits", json={"spends": []}, headers={
            "authorization": "Bearer nobody"}).status_code == 401


def test_a_body_declared_too_large_is_refused_unread(tmp_path):
    with running_bank("sqlite", tmp_path) as env:
        host, port = env.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as s:
            s.sendall(b"POST /v1/merchant/deposits HTTP/1.1\r\nhost: x\r\n"
                      b"content-type: application/json\r\n"
                      b"content-length: %d\r\n\r\n" % (MAX_BODY + 1))
            s.settimeout(10)
            head = s.recv(65536)
        assert head.startswith(b"HTTP/1.1 413 ") and b"body_too_large" in head


def test_a_chunked_body_is_read(tmp_path):
    with running_bank("sqlite", tmp_path) as env:
        alice = env.holder("Alice", funds=100)
        key = env.operator.keyset().keys[0].key_id.hex()
        body = b'{"key_ids": ["%s"]}' % key.encode()

        def pieces():
            yield body[:7]
            yield body[7:]

        r = raw(env, "POST", f"/v1/accounts/{alice.account_id}/withdrawals",
                token_of(alice.client), content=pieces(),
                headers={"content-type": "application/json"})
        assert r.status_code == 200, r.text
        assert len(r.json()["coins"]) == 1
