"""``ecash.crypto.batch.verify_spends``: per-item verdicts, in input order,
the same in-process and across a process pool."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ecash.crypto import (
    CoinSecrets,
    PaymentRequest,
    SigningKey,
    group,
    make_denomination_key,
    make_spend,
    registration,
    spend_challenge,
    user_blind,
    user_finish,
    verify_spend,
    withdrawal,
)
from ecash.crypto.batch import Verdict, make_pool, verify_one, verify_spends
from ecash.crypto.params import g2

MASTER = SigningKey.from_seed(bytes([7]) * 32)
U1 = 0x1234_5678_9ABC
EUR = make_denomination_key(MASTER, 0xE0E0_0001, 100, "EUR", 1_000, 2_000, 3_000)
EUR_OTHER = make_denomination_key(MASTER, 0xE0E0_0002, 200, "EUR", 1_000, 2_000, 3_000)
USD = make_denomination_key(MASTER, 0xD0D0_0001, 100, "USD", 1_000, 2_000, 3_000)
USD_OTHER = make_denomination_key(MASTER, 0xD0D0_0002, 500, "USD", 1_000, 2_000, 3_000)


def _coin(key, i: int, branches: int = 2):
    I = registration.identity_of(U1)
    I_g2 = group.add(I, g2)
    ws = [0xAB_0000 + 10 * i + j for j in range(branches)]
    cms = [withdrawal.bank_commit(I_g2, w) for w in ws]
    state = user_blind(key.public, I, withdrawal.holder_z(I_g2, key.x), cms,
                       CoinSecrets(0x5_0000 + i, 0x6_0000 + i, 0x7_0000 + i),
                       [(0x8_0000 + 10 * i + j, 0x9_0000 + j) for j in range(branches)])
    beta = i % branches
    r = withdrawal.bank_respond(key.x, ws[beta], state.challenges[beta])
    return user_finish(state, r, beta)


def _request(i: int, currency: str = "EUR") -> PaymentRequest:
    return PaymentRequest("Bäckerei Ölberg", 100 + i, currency, 1_700_000_000_000 + i,
                          i.to_bytes(16, "big"))


def _items(n: int):
    """``n`` valid (spend, key) pairs: distinct coins, keys and requests, so each d differs."""
    out = []
    for i in range(n):
        key = (EUR, EUR_OTHER, USD)[i % 3]
        coin, secrets = _coin(key, i, branches=1 + i % 2)
        out.append((make_spend(coin, secrets, U1, _request(i, key.public.currency)), key.public))
    return out


GOOD = _items(12)
EXPECTED_D = [spend_challenge(s.coin.A, s.coin.B, s.request.request_id) for s, _ in GOOD]


def test_fixture_spends_are_valid_and_distinct():
    assert [verify_spend(s, k) for s, k in GOOD] == EXPECTED_D
    assert len(set(EXPECTED_D)) == len(GOOD)
    assert all(d != 0 for d in EXPECTED_D)


def test_empty_batch():
    assert verify_spends([]) == []
    assert verify_spends([], processes=0) == []
    assert verify_spends([], processes=2) == []


@pytest.mark.parametrize("mode", ["in_process", "processes_1", "processes_2", "pool_2"])
def test_all_good_verdicts_in_input_order(mode):
    out = _run(GOOD, mode)
    assert out == [Verdict(True, "ok", "", d) for d in EXPECTED_D]


def _run(items, mode):
    if mode == "in_process":
        return verify_spends(items, processes=0)
    if mode == "processes_1":
        return verify_spends(items, processes=1)
    if mode == "processes_2":
        return verify_spends(items, processes=2)
    with make_pool(2) as pool:
        first = verify_spends(items, pool=pool)
        assert verify_spends(items, pool=pool) == first  # a pool is reusable across batches
        return first


def _tweak_r1(item):
    spend, key = item
    return replace(spend, r1=(spend.r1 + 1) % group.q), key


def _wrong_key(item):
    spend, key = item
    """Another real key of the same currency (so only the key itself is wrong)."""
    same = [k.public for k in (EUR, EUR_OTHER, USD, USD_OTHER)
            if k.public.currency == key.currency and k.public.key_id != key.key_id]
    return spend, same[0]


def _tweak_coin_r(item):
    spend, key = item
    return replace(spend, coin=replace(spend.coin, r=(spend.coin.r + 1) % group.q)), key


def _r2_not_canonical(item):
    spend, key = item
    return replace(spend, r2=group.q + 5), key


def _other_currency(item):
    spend, key = item
    return spend, replace(key, currency="USD" if key.currency != "USD" else "EUR")


def _bad_request(item):
    spend, key = item
    return replace(spend, request=replace(spend.request, nonce=b"short")), key


BAD = {
    "r1_tweaked": (_tweak_r1, "spend_equation"),
    "wrong_key": (_wrong_key, "key_mismatch"),
    "coin_r_tweaked": (_tweak_coin_r, "coin_equation"),
    "r2_not_canonical": (_r2_not_canonical, "non_canonical_scalar"),
    "other_currency": (_other_currency, "currency_mismatch"),
    "bad_request": (_bad_request, "request_malformed"),
}


@pytest.mark.parametrize("bad", sorted(BAD))
@pytest.mark.parametrize("where", [0, 5, 11])
def test_one_bad_item_fails_alone(bad, where):
    tweak, code = BAD[bad]
    items = list(GOOD)
    items[where] = tweak(items[where])
    expected = [Verdict(True, d=d) for d in EXPECTED_D]
    local = verify_spends(items, processes=0)
    for i, v in enumerate(local):
        if i == where:
            assert not v.ok
            assert v.code == code
            assert v.reason  # a message for the log
            assert v.d == 0
        else:
            assert v == expected[i]
    assert verify_spends(items, processes=2) == local


def test_pool_and_in_process_agree_on_a_mixed_batch():
    items = list(GOOD) * 2  # 24 items: several chunks per worker
    codes = {}
    for i, name in zip((1, 4, 9, 14, 17, 22), sorted(BAD), strict=True):
        tweak, code = BAD[name]
        items[i] = tweak(items[i])
        codes[i] = code
    local = verify_spends(items, processes=0)
    assert [v.ok for v in local] == [i not in codes for i in range(len(items))]
    assert {i: v.code for i, v in enumerate(local) if not v.ok} == codes
    assert [v.d for v in local] == [0 if i in codes else EXPECTED_D[i % len(GOOD)]
                                    for i in range(len(items))]
    with make_pool(2) as pool:
        assert verify_spends(items, pool=pool) == local
        assert verify_spends(items, pool=pool, processes=0) == local  # 0 wins: in-process
    assert verify_spends(items, processes=2) == local


def test_single_item_is_verified_in_process():
    assert verify_spends(GOOD[:1], processes=2) == [Verdict(True, d=EXPECTED_D[0])]
    bad = _tweak_r1(GOOD[0])
    assert verify_spends([bad], processes=2)[0].code == "spend_equation"
    assert verify_one(bad) == verify_spends([bad])[0]
