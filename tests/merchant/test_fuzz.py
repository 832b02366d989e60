"""Hostile input at the terminal's HTTP endpoints (hypothesis, over real
sockets): arbitrary bytes and JSON, and single-field mutations of a valid
payment (non-canonical hex, the identity element, scalars >= q, wrong types,
missing and extra keys). Every one is refused with problem details and a
stable code, never a 5xx, and stores nothing: afterwards the genuine coins
still pay (a fresh request, when a refused payment decided the first one)."""

from __future__ import annotations

import copy
import json

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecash.crypto import group
from ecash.merchant.refusal_limit import Rate, RefusalLimiter
from ecash.merchant.schema import REFUSALS_KEPT
from ecash.wire import json as wj

from ..bankkit import pay_request
from .kit import counts, serving

REFUSALS = {400, 404, 413, 422}
Q_HEX = group.q.to_bytes(32, "little").hex()
IDENTITY_HEX = "00" * 32
FUZZ = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=4),
    max_leaves=12)

# (path inside one spend, replacement): what a careless or hostile wallet sends
FIELDS = [("coin", k) for k in ("key_id", "A", "B", "z", "a", "b", "r")] + \
         [("request", k) for k in ("merchant_id", "amount", "currency", "timestamp_ms",
                                   "nonce")] + [(k,) for k in ("r1", "r2")]


def replacements(original: object) -> st.SearchStrategy:
    hexy = isinstance(original, str) and all(c in "0123456789abcdef" for c in original)
    options = [st.just(None), st.integers(), st.text(max_size=70), st.just([original]),
               st.just(True)]
    if hexy:
        s = str(original)
        options += [
            st.just(s.upper()), st.just(s[:-2]), st.just(s + "00"), st.just(IDENTITY_HEX),
            st.just(Q_HEX), st.just("ff" * (len(s) // 2)),
            st.integers(0, len(s) - 1).map(
                lambda i: s[:i] + ("0" if s[i] != "0" else "1") + s[i + 1:]),
            st.integers(0, len(s) // 2 - 1).map(  # the top bit of an element (ECASH-1 1)
                lambda i: s[:2 * i] + f"{int(s[2 * i:2 * i + 2], 16) ^ 0x80:02x}" + s[2 * i + 2:]),
        ]
    if isinstance(original, int):
        options += [st.just(original + 1), st.just(-1), st.just(2**53), st.just(float(original))]
    return st.one_of(*options)


def _check_refusal(r: httpx.Response) -> None:
    assert r.status_code in REFUSALS, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == r.status_code and body["code"]


def test_hostile_payments_are_refused_and_change_nothing(bank, terminal, holder):
    env = terminal.create_request(7)
    rid = env.request.request_id
    coins = holder.withdraw([4, 2, 1])
    spends = pay_request(holder, coins, env.request)
    genuine = {"spends": [wj.spend_to_json(s) for s in spends]}
    before = counts(terminal)
    unlimited = RefusalLimiter(Rate(1e9, 1e9), Rate(1e9, 1e9))
    with serving(terminal, refusal_limiter=unlimited) as url, \
            httpx.Client(base_url=url, timeout=30) as http:
        pay = f"/pay/{rid.hex()}"

        def post(content: bytes) -> httpx.Response:
            return http.post(pay, content=content, headers={"content-type": "application/json"})

        @FUZZ
        @given(st.binary(max_size=400))
        def raw_bytes(body):
            _check_refusal(post(body))

        @FUZZ
        @given(json_values)
        def any_json(value):
            _check_refusal(post(json.dumps(value).encode()))

        @FUZZ
        @given(st.data())
        def one_field_changed(data):
            body = copy.deepcopy(genuine)
            spend = body["spends"][data.draw(st.integers(0, len(spends) - 1))]
            path = data.draw(st.sampled_from(FIELDS))
            parent = spend
            for k in path[:-1]:
                parent = parent[k]
            action = data.draw(st.sampled_from(["replace", "delete", "extra"]))
            if action == "replace":
                new = data.draw(replacements(parent[path[-1]]))
                if new == parent[path[-1]] and type(new) is type(parent[path[-1]]):
                    return
                parent[path[-1]] = new
            elif action == "delete":
                del parent[path[-1]]
            else:
                parent["extra"] = parent[path[-1]]
            _check_refusal(post(json.dumps(body).encode()))

        @FUZZ
        @given(st.text(alphabet="0123456789abcdefABCDEF-_.~%", max_size=70))
        def unknown_request_ids(hex_id):
            r = http.post(f"/pay/{hex_id}", json=genuine)
            assert r.status_code in {404, 405}, (r.status_code, r.text)

        raw_bytes()
        any_json()
        one_field_changed()
        unknown_request_ids()
        oversized = post(b'{"spends": [' + b" " * (2 * 1024 * 1024) + b"]}")
        _check_refusal(oversized)
        assert oversized.status_code == 413

        # nothing was stored; a payment that decoded and was refused decided the
        # request (ECASH-1 5.1), a body that was no payment did not; the log stays small
        assert counts(terminal) == before
        assert terminal.store.request(rid).status in ("open", "refused")
        log = terminal.store.refusal_log(rid)
        assert len(log.last) == REFUSALS_KEPT < log.count
        fresh = terminal.create_request(7)
        r = http.post(f"/pay/{fresh.request.request_id.hex()}", json={
            "spends": [wj.spend_to_json(s) for s in pay_request(holder, coins, fresh.request)]})
        assert r.status_code == 200 and r.json()["status"] == "paid"
        assert counts(terminal) == (before[0] + 3, before[1] + 1)


def test_hostile_cashier_requests_never_fail(bank, terminal):
    with serving(terminal) as url, httpx.Client(base_url=url, timeout=30) as http:
        opened = []

        @FUZZ
        @given(json_values)
        def new_request(value):
            r = http.post("/api/requests", content=json.dumps(value).encode(),
                          headers={"content-type": "application/json"})
            if r.status_code == 200:  # only {"amount": n} with a payable n opens one
                assert isinstance(value, dict) and set(value) == {"amount"}
                opened.append(r.json()["request_id"])
            else:
                _check_refusal(r)

        new_request()
        for rid in opened:
            assert http.get(f"/api/requests/{rid}").json()["status"] == "open"
