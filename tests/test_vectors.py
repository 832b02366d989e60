"""Every value of ``tests/vectors`` reproduced byte for byte (ECASH-1)."""

from __future__ import annotations

import pytest

from ecash.crypto import (
    Coin,
    CoinSecrets,
    Commitment,
    DenominationKey,
    SigningKey,
    certify_merchant,
    coin_challenge,
    group,
    identify,
    make_receipt,
    make_spend,
    sign_request,
    spend_challenge,
    user_blind,
    user_finish,
    verify_coin,
    verify_double_spend,
    verify_spend,
)
from ecash.crypto import registration as reg
from ecash.crypto.hashing import H_bytes, H_group, H_scalar, preimage
from ecash.crypto.keys import Keyset, compute_key_id, denomination_message, make_denomination_key
from ecash.crypto.params import g, g1, g2
from ecash.crypto.payment import receipt_message, request_message
from ecash.crypto.withdrawal import bank_commit, bank_respond
from ecash.wire import binary, text
from ecash.wire import json as wj

from .conftest import load_vector

DEN = load_vector("denomination.json")
REG = load_vector("registration.json")
WD = load_vector("withdrawal.json")
PAY = load_vector("payment.json")
SIG = load_vector("signatures.json")


def sc(h: str) -> int:
    return group.decode_scalar(bytes.fromhex(h))


def el(h: str) -> bytes:
    return bytes.fromhex(h)


def key_of(i: int) -> DenominationKey:
    d = DEN["denominations"][i]
    return DenominationKey(el(d["key_id"]), el(d["h"]), d["value"], d["currency"],
                           d["withdraw_start"], d["withdraw_end"], d["deposit_end"],
                           el(d["master_signature"]))


def test_generators_and_hashes(vectors):
    gen = vectors["generators"]
    assert group.q == int(gen["q"])
    assert (g.hex(), g1.hex(), g2.hex()) == (gen["g"], gen["g1"], gen["g2"])
    for ex in gen["examples"]:
        fields = [bytes.fromhex(f) for f in ex["fields_hex"]]
        assert preimage(ex["tag"], *fields).hex() == ex["preimage_hex"]
        assert H_bytes(ex["tag"], *fields).hex() == ex["H_bytes"]
        assert group.encode_scalar(H_scalar(ex["tag"], *fields)).hex() == ex["H_scalar"]
        assert H_group(ex["tag"], *fields).hex() == ex["H_group"]


@pytest.mark.parametrize("i", [0, 1])
def test_denomination_keys(i):
    d = DEN["denominations"][i]
    master = SigningKey.from_seed(el(DEN["master_seed"]))
    assert master.public_key.hex() == DEN["master_public_key"]
    secret = make_denomination_key(master, sc(d["x"]), d["value"], d["currency"],
                                   d["withdraw_start"], d["withdraw_end"], d["deposit_end"])
    k = secret.public
    assert k.h.hex() == d["h"]
    assert preimage("denomination", k.h, (d["value"]).to_bytes(8, "big"), b"EUR",
                    d["withdraw_start"].to_bytes(8, "big"), d["withdraw_end"].to_bytes(8, "big"),
                    d["deposit_end"].to_bytes(8, "big")).hex() == d["key_id_preimage_hex"]
    assert k.key_id.hex() == d["key_id"]
    assert denomination_message(k.key_id).hex() == d["master_signed_message_hex"]
    assert k.signature.hex() == d["master_signature"]
    key_of(i).check_signature(master.public_key)
    assert compute_key_id(k.h, k.value, k.currency, k.withdraw_start, k.withdraw_end,
                          k.deposit_end) == k.key_id


def test_registration():
    u1, k = sc(REG["u1"]), sc(REG["k"])
    proof = reg.prove(u1, REG["account_id"], k=k)
    assert proof.I.hex() == REG["I"]
    assert group.add(proof.I, g2).hex() == REG["I_g2"]
    assert proof.t.hex() == REG["t"]
    assert group.encode_scalar(proof.p).hex() == REG["p"]
    assert group.encode_scalar(H_scalar("register", proof.I, proof.t, b"acct-0001")).hex() \
        == REG["e"]
    reg.verify(proof, REG["account_id"])


@pytest.mark.parametrize("i", range(3))
def test_plain_withdrawal(i):
    w = WD["withdrawals"][i]
    key = key_of(w["denomination"])
    I = el(w["I"])
    I_g2 = group.add(I, g2)
    x, wn = sc(w["x"]), sc(w["w"])
    z = group.mul(I_g2, x)
    assert z.hex() == w["z"]
    cm = bank_commit(I_g2, wn)
    assert (cm.a.hex(), cm.b.hex()) == (w["a"], w["b"])
    state = user_blind(key, I, z, [cm], CoinSecrets(sc(w["s"]), sc(w["x1"]), sc(w["x2"])),
                       [(sc(w["u"]), sc(w["v"]))])
    br = state.branches[0]
    assert (state.A.hex(), state.B.hex(), state.z_prime.hex()) == (w["A"], w["B"], w["z_prime"])
    assert (br.a_prime.hex(), br.b_prime.hex()) == (w["a_prime"], w["b_prime"])
    assert group.encode_scalar(br.c_prime).hex() == w["c_prime"]
    assert group.encode_scalar(br.c).hex() == w["c"]
    r = bank_respond(x, wn, br.c)
    assert group.encode_scalar(r).hex() == w["r"]
    # the state survives a round trip through its serialised form
    from ecash.crypto.withdrawal import WithdrawalState
    state = WithdrawalState.from_dict(state.to_dict())
    coin, _ = user_finish(state, r)
    assert group.encode_scalar(coin.r).hex() == w["r_prime"]
    assert wj.coin_to_json(coin) == w["coin"]
    assert binary.coin_to_bytes(coin).hex() == w["coin_binary"]
    assert binary.coin_from_bytes(el(w["coin_binary"])) == coin
    assert wj.coin_from_json(w["coin"]) == coin
    assert coin_challenge(key.key_id, coin.A, coin.B, coin.z, coin.a, coin.b) == br.c_prime
    verify_coin(coin, key)


def test_clause_withdrawal():
    w = WD["clause"]
    key = key_of(w["denomination"])
    I = el(w["I"])
    I_g2 = group.add(I, g2)
    x = sc(w["x"])
    z = group.mul(I_g2, x)
    assert z.hex() == w["z"]
    cms = []
    for br in w["branches"]:
        cm = bank_commit(I_g2, sc(br["w"]))
        assert (cm.a.hex(), cm.b.hex()) == (br["a"], br["b"])
        cms.append(cm)
    state = user_blind(key, I, z, cms, CoinSecrets(sc(w["s"]), sc(w["x1"]), sc(w["x2"])),
                       [(sc(b["u"]), sc(b["v"])) for b in w["branches"]])
    assert (state.A.hex(), state.B.hex(), state.z_prime.hex()) == (w["A"], w["B"], w["z_prime"])
    for mine, theirs in zip(state.branches, w["branches"], strict=True):
        assert (mine.a_prime.hex(), mine.b_prime.hex()) == (theirs["a_prime"], theirs["b_prime"])
        assert group.encode_scalar(mine.c_prime).hex() == theirs["c_prime"]
        assert group.encode_scalar(mine.c).hex() == theirs["c"]
    beta = w["beta"]
    r = bank_respond(x, sc(w["branches"][beta]["w"]), state.branches[beta].c)
    assert group.encode_scalar(r).hex() == w["r_beta"]
    coin, _ = user_finish(state, r, beta)
    assert group.encode_scalar(coin.r).hex() == w["r_prime"]
    assert wj.coin_to_json(coin) == w["coin"]
    assert binary.coin_to_bytes(coin).hex() == w["coin_binary"]
    verify_coin(coin, key)


def test_requests():
    for r in PAY["requests"]:
        req = wj.request_from_json({k: r[k] for k in wj.REQUEST_KEYS})
        assert preimage("request", r["merchant_id"].encode(), r["amount"].to_bytes(8, "big"),
                        r["currency"].encode(), r["timestamp_ms"].to_bytes(8, "big"),
                        req.nonce).hex() == r["request_id_preimage_hex"]
        assert req.request_id.hex() == r["request_id"]
    for b in SIG["binary_requests"]:
        req = wj.request_from_json(b["request"])
        assert binary.request_to_bytes(req).hex() == b["binary_hex"]
        assert binary.request_from_bytes(el(b["binary_hex"])) == req


@pytest.mark.parametrize("i", range(len(PAY["spends"])))
def test_spends(i):
    sp = PAY["spends"][i]
    req_v = PAY["requests"][sp["request"]]
    req = wj.request_from_json({k: req_v[k] for k in wj.REQUEST_KEYS})
    wname = sp["coin"]
    w = WD["clause"] if "clause" in wname else WD["withdrawals"][int(wname.split()[-1])]
    coin = wj.coin_from_json(w["coin"])
    key = DenominationKey(el(sp["key_id"]), el(sp["h"]), 0, req.currency, 0, 1, 1)
    spend = make_spend(coin, CoinSecrets(sc(w["s"]), sc(w["x1"]), sc(w["x2"])), sc(REG["u1"]),
                       req)
    assert req.request_id.hex() == sp["request_id"]
    assert group.encode_scalar(spend_challenge(coin.A, coin.B, req.request_id)).hex() == sp["d"]
    assert group.encode_scalar(spend.r1).hex() == sp["r1"]
    assert group.encode_scalar(spend.r2).hex() == sp["r2"]
    assert wj.spend_to_json(spend) == sp["spend"]
    assert wj.spend_from_json(sp["spend"]) == spend
    assert binary.spend_to_bytes(spend).hex() == sp["spend_binary"]
    assert binary.spend_from_bytes(el(sp["spend_binary"]), req) == spend
    verify_spend(spend, key)


def test_double_spend(vectors):
    ds = vectors["double_spend"]
    key = DenominationKey(el(ds["key_id"]), el(ds["h"]), 0, "EUR", 0, 1, 1)
    s1 = wj.spend_from_json(ds["transcript_1"]["spend"])
    s2 = wj.spend_from_json(ds["transcript_2"]["spend"])
    for t, s in ((ds["transcript_1"], s1), (ds["transcript_2"], s2)):
        assert s.request.request_id.hex() == t["request_id"]
        assert group.encode_scalar(verify_spend(s, key)).hex() == t["d"]
    found = verify_double_spend(key, s1, s2)
    assert group.encode_scalar(found.s).hex() == ds["recovered_s"]
    assert group.encode_scalar(found.u1).hex() == ds["recovered_u1"]
    assert found.I.hex() == ds["recovered_I"] == ds["registered_I"]
    assert identify(s2, s1).I == found.I


def test_certificate_envelopes_receipt():
    master = SigningKey.from_seed(el(SIG["master_seed"]))
    merchant = SigningKey.from_seed(el(SIG["merchant_seed"]))
    assert merchant.public_key.hex() == SIG["merchant_public_key"]
    c = SIG["certificate"]
    cert = certify_merchant(master, c["merchant_id"], merchant.public_key, c["valid_until"])
    assert cert.message().hex() == SIG["certificate_message_hex"]
    assert wj.certificate_to_json(cert) == c
    assert wj.certificate_from_json(c) == cert
    cert.verify(master.public_key)
    for e in SIG["envelopes"]:
        req = wj.request_from_json(e["envelope"]["request"])
        assert req.request_id.hex() == SIG["request_id"]
        assert request_message(req.request_id, e["pos_url"]).hex() == e["message_hex"]
        env = sign_request(merchant, cert, req, e["pos_url"])
        assert wj.envelope_to_json(env) == e["envelope"]
        parsed = wj.envelope_from_json(e["envelope"])
        assert parsed == env
        parsed.verify(master.public_key)
        assert text.request_from_text(text.request_to_text(env)) == env
    req = wj.request_from_json(SIG["envelopes"][0]["envelope"]["request"])
    rc = make_receipt(merchant, req)
    assert receipt_message(rc.request_id, rc.amount).hex() == SIG["receipt_message_hex"]
    assert wj.receipt_to_json(rc) == SIG["receipt"]
    assert wj.receipt_from_json(SIG["receipt"]) == rc
    rc.verify(merchant.public_key)


def test_policy_and_keyset():
    master = SigningKey.from_seed(el(SIG["master_seed"]))
    policy = wj.policy_from_json(SIG["policy"])
    assert policy.canonical_json().decode() == SIG["policy_canonical_json"]
    assert policy.message().hex() == SIG["policy_message_hex"]
    assert policy.sign(master).hex() == SIG["policy_signature"]
    assert wj.policy_to_json(policy) == SIG["policy"]
    ks = wj.keyset_from_json(SIG["keyset"])
    assert ks == Keyset(master.public_key, (key_of(0), key_of(1)), policy,
                        el(SIG["policy_signature"]))
    assert wj.keyset_to_json(ks) == SIG["keyset"]
    from ecash.crypto.keys import canonical_json
    assert canonical_json(wj.keyset_to_json(ks)).decode() == SIG["keyset_canonical_json"]
    assert wj.keyset_fingerprint(ks) == SIG["keyset_fingerprint"]
    ks.check(master.public_key)


def test_coin_dataclass_is_plain_data():
    w = WD["withdrawals"][0]
    coin = wj.coin_from_json(w["coin"])
    assert isinstance(coin, Coin) and coin.serial == coin.coin_id != coin.A
    assert Commitment(el(w["a"]), el(w["b"])).a.hex() == w["a"]
