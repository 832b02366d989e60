"""Paying from a phone: the till's ``ecash:`` link, fetched from a real terminal
over HTTP by a real wallet; the sale's signed description shown and kept; the
terminal taking the customer's ``ecpay1:`` text instead."""

from __future__ import annotations

import json

import httpx
import pytest
import segno

from ecash.merchant.requests import create_request, description_of
from ecash.serving.threaded import free_port
from ecash.wallet.errors import RequestRefused
from ecash.wallet.request_source import BadRequestText, RequestUnreachable, resolve_request
from ecash.wire import json as wj
from ecash.wire.description import sign_description
from ecash.wire.uri import offline_text, parse_payment_uri, payment_uri

from ..wallet.kit import holder
from .kit import new_terminal, serving


@pytest.fixture
def shop(bank, tmp_path):
    t = new_terminal(bank, tmp_path / "shop.db")
    with serving(t, public_url=None) as url:
        yield t, url
    t.close()


def test_scan_fetch_pay_and_see_what_was_bought(bank, shop, tmp_path):
    t, url = shop
    h = holder(bank)
    w = h.wallet(tmp_path / "w.db")
    try:
        w.load(10_000)
        env = create_request(t, 2048, pos_base=url, description="2 coffees, 1 croissant")
        record = t.store.request(env.request.request_id)
        assert record.description == "2 coffees, 1 croissant"
        uri = payment_uri(env, description_of(t, record))
        assert uri.startswith("ecash+http://pay/127.0.0.1:")
        assert segno.make(uri, error="m").version <= 10

        got = resolve_request(uri)
        assert got.envelope == env and got.source == "link"
        assert got.description == "2 coffees, 1 croissant" and got.description_problem is None
        p = w.pay(got.envelope, description=got.description)
        assert p.status == "confirmed" and p.to_json()["description"] == got.description
        paid = [e for e in w.history() if e["kind"] == "pay"]
        assert [e["description"] for e in paid] == ["2 coffees, 1 croissant"]
        assert w.payments()[0]["description"] == "2 coffees, 1 croissant"
        assert all("description" in e for e in w.history())
        assert t.store.request(env.request.request_id).status == "paid"

        # a sale without a description: the link, the fetch and the history say none
        plain = create_request(t, 16, pos_base=url)
        got = resolve_request(payment_uri(plain))
        assert got.envelope == plain and got.description is None
        w.pay(got.envelope, description=got.description)
        paid = [e["description"] for e in w.history() if e["kind"] == "pay"]
        assert sorted(paid, key=str) == ["2 coffees, 1 croissant", None]
        body = httpx.get(f"{url}/r/{plain.request.request_id.hex()}").json()
        assert body == {"envelope": wj.envelope_to_json(plain), "description": None}
    finally:
        h.close()


def test_a_link_must_name_exactly_what_the_terminal_sends(bank, shop):
    t, url = shop
    env = create_request(t, 500, pos_base=url, description="lunch set")
    uri = payment_uri(env, description_of(t, t.store.request(env.request.request_id)))
    # the same request without its description: another hash (stripping it is seen)
    with pytest.raises(RequestRefused) as info:
        resolve_request(payment_uri(env))
    assert info.value.code == "request_mismatch" and "do not pay it" in str(info.value)
    # another request of the same terminal under this request's hash
    other = create_request(t, 50_000, pos_base=url)
    forged = uri.replace(uri.split("/")[-2], payment_uri(other).split("/")[-2])
    with pytest.raises(RequestRefused) as info:
        resolve_request(forged)
    assert info.value.code == "request_mismatch"
    # a request the terminal never made
    unknown = uri.replace(uri.split("/")[-2], "A" * 42 + "E")
    with pytest.raises(RequestRefused) as info:
        resolve_request(unknown)
    assert info.value.code == "unknown_request"
    # a terminal that does not answer: try again (exit 3 in the CLI)
    gone = uri.replace(url.split("//")[1], f"127.0.0.1:{free_port()}")
    with pytest.raises(RequestUnreachable) as info:
        resolve_request(gone, timeout=2)
    assert info.value.code == "request_unreachable" and "127.0.0.1" in str(info.value)
    # a link that is not one
    with pytest.raises(BadRequestText) as info:
        resolve_request(uri[:-1])
    assert info.value.code == "bad_request_text" and "22 characters" in str(info.value)


def test_an_expired_request_is_gone(bank, shop):
    t, url = shop
    env = create_request(t, 500, pos_base=url, ttl_s=60)
    uri = payment_uri(env)
    assert parse_payment_uri(uri).fetch_url == f"{url}/r/{env.request.request_id.hex()}"
    bank.clock.advance(61)
    r = httpx.get(parse_payment_uri(uri).fetch_url)
    assert r.status_code == 410 and r.json()["code"] == "request_expired"
    with pytest.raises(RequestRefused) as info:
        resolve_request(uri)
    assert info.value.code == "request_expired" and "new one" in str(info.value)


def test_offline_forms_and_a_description_the_terminal_did_not_sign(bank, shop):
    t, _ = shop
    env = create_request(t, 300, description="拿铁 ×2")
    d = description_of(t, t.store.request(env.request.request_id))
    assert payment_uri(env, d) is None  # no terminal URL: the offline form only
    text = offline_text(env, d)
    wrapped = "\n".join(text[i:i + 60] for i in range(0, len(text), 60))
    got = resolve_request(wrapped)
    assert got.envelope == env and got.description == "拿铁 ×2" and got.source == "text"
    # the JSON bundle of the fetch route, with words someone else signed
    forged = sign_description(new_key(), env.request.request_id, "free")
    bundle = json.dumps({"envelope": wj.envelope_to_json(env), "description": forged.to_json(),
                         "x-unknown-extension": 1})
    got = resolve_request(bundle)
    assert got.envelope == env and got.description is None and got.source == "json"
    assert "not signed by the terminal" in got.description_problem
    # the bare section 8 envelope
    assert resolve_request(json.dumps(wj.envelope_to_json(env))).envelope == env
    with pytest.raises(BadRequestText) as info:
        resolve_request(text[:100])
    assert "this text is cut short" in str(info.value)
    with pytest.raises(BadRequestText):
        resolve_request("   ")


def new_key():
    from ecash.crypto.sign import SigningKey

    return SigningKey.generate()


def test_the_till_takes_the_customers_payment_text(bank, shop, tmp_path):
    """A phone that cannot reach the till pays offline; the cashier pastes (or
    scans) the customer's ecpay1: text and the till posts it to /pay/<id>."""
    t, url = shop
    h = holder(bank)
    w = h.wallet(tmp_path / "w.db")
    try:
        w.load(1_000)
        env = create_request(t, 700, pos_base=url, description="book")
        got = resolve_request(offline_text(env, description_of(
            t, t.store.request(env.request.request_id))))
        p = w.pay(got.envelope, send=False, description=got.description)
        assert p.status == "answered"
        pay_url = f"{url}/pay/{env.request.request_id.hex()}"
        wrapped = "\n".join(p.text[i:i + 76] for i in range(0, len(p.text), 76))
        r = httpx.post(pay_url, content=wrapped.encode(), headers={"content-type": "text/plain"})
        assert r.status_code == 200, r.text
        assert r.json()["receipt"]["amount"] == 700
        assert t.store.request(env.request.request_id).status == "paid"
        # the same text again: the same receipt
        assert httpx.post(pay_url, content=p.text.encode()).json() == r.json()
        # a cut text is refused in words, and the request stays payable
        other = create_request(t, 5, pos_base=url)
        r = httpx.post(f"{url}/pay/{other.request.request_id.hex()}",
                       content=p.text[:150].encode())
        assert r.status_code == 422 and "cut short" in r.json()["detail"]
        assert t.store.request(other.request.request_id).status == "open"
    finally:
        h.close()


def test_a_description_is_checked_before_anything_is_signed(bank, shop):
    from ecash.merchant.errors import MerchantError

    t, url = shop
    for bad, words in (("free\u202e", "U+202E"), ("x" * 141, "at most 140"), ("", "empty")):
        with pytest.raises(MerchantError) as info:
            create_request(t, 5, pos_base=url, description=bad)
        assert info.value.code == "bad_description" and words in info.value.detail
    assert t.report()["payments"]["open"] == 0  # nothing was stored
