"""What a wallet restore needs from the bank (ECASH-1 9.4, 9.7): the record
of every answered withdrawal, and the k-anonymous spent-serial range query."""

from __future__ import annotations

import hashlib

from ecash.crypto import group
from ecash.crypto.withdrawal import WithdrawalState, user_finish

from ..bankkit import raw, refused


def test_withdrawal_records_rebuild_every_coin(env):
    alice = env.holder("Alice", funds=10_000)
    bob = env.holder("Bob", funds=10_000)
    bob.withdraw([1])
    saved, coins = [], []
    for values in ([1, 2], [4], [8, 16, 32]):
        offer, states = alice.start(values)
        answers = alice.client.answer(alice.account_id, offer["session_id"],
                                      [s.challenges for s in states])
        saved.append((offer["session_id"], [s.to_dict() for s in states], answers))
        coins += [user_finish(s, r, b) for s, (b, r) in zip(states, answers, strict=True)]
    alice.start([64])  # open, never answered: not in the record
    offer, states = alice.start([2], exchange=alice.pay(coins[:1], "bank"))
    answers = alice.client.answer(alice.account_id, offer["session_id"],
                                  [s.challenges for s in states])
    saved.append((offer["session_id"], [s.to_dict() for s in states], answers))
    coins += [user_finish(s, r, b) for s, (b, r) in zip(states, answers, strict=True)]

    records = {r["session_id"]: r for r in alice.client.withdrawal_records(alice.account_id)}
    assert sorted(records) == sorted(sid for sid, _, _ in saved)
    assert [records[sid]["kind"] for sid, _, _ in saved] == ["withdraw"] * 3 + ["exchange"]
    rebuilt = []
    for sid, dicts, answers in saved:
        record = records[sid]
        assert len(record["coins"]) == len(dicts)
        for rc, d, (beta, r) in zip(record["coins"], dicts, answers, strict=True):
            state = WithdrawalState.from_dict(d)
            assert rc["key_id"] == state.key_id.hex()
            assert rc["commitments"] == [x.hex() for br in state.branches
                                         for x in (br.commitment.a, br.commitment.b)]
            assert rc["challenges"] == [group.encode_scalar(c).hex() for c in state.challenges]
            assert (rc["beta"], rc["r"]) == (beta, group.encode_scalar(r).hex())
            rebuilt.append(user_finish(state, group.decode_scalar(bytes.fromhex(rc["r"])),
                                       rc["beta"]))
    assert rebuilt == coins
    with refused(403, "forbidden"):
        bob.client.withdrawal_records(alice.account_id)
    assert len(bob.client.withdrawal_records(bob.account_id)) == 1


def prefix_of(serial: bytes, bits: int = 8) -> int:
    return int.from_bytes(hashlib.sha256(serial).digest()[:4], "big") >> (32 - bits)


def test_spent_range(env):
    alice = env.holder("Alice", funds=100_000)
    shop = env.merchant("shop")
    coins = alice.withdraw([1] * 24)
    spent, kept = coins[:16], coins[16:]
    shop.deposit(alice.pay(spent[:12], "shop"))
    alice.client.redeem(alice.account_id, alice.pay(spent[12:], "bank"))
    spent_serials = {c.A for c, _ in spent}
    by_prefix: dict[int, set[bytes]] = {}
    for s in spent_serials:
        by_prefix.setdefault(prefix_of(s), set()).add(s)
    asked = sorted(set(list(by_prefix)[:5] + [prefix_of(c.A) for c, _ in kept[:4]]
                       + [0, 255]))
    r = raw(env, "POST", "/v1/spent-range", json_body={"generation": 1, "prefixes": asked})
    assert r.status_code == 200  # no credential
    out = r.json()
    assert (out["generation"], out["prefix_bits"], out["closed"]) == (1, 8, False)
    expected = sorted(s.hex() for s in spent_serials if prefix_of(s) in asked)
    assert out["serials"] == expected
    assert len(expected) >= 5
    everything = env.operator.spent_range(1, list(range(256)))["serials"]
    assert everything == sorted(s.hex() for s in spent_serials)
    missing = [p for p in range(256) if p not in by_prefix]
    assert env.operator.spent_range(1, missing[:50])["serials"] == []
    with refused(422, "bad_prefixes"):
        env.operator.spent_range(1, [256])
    with refused(422, "bad_prefixes"):
        env.operator.spent_range(1, [])
    with refused(422, "bad_prefixes"):
        env.operator.spent_range(1, [*range(256), 0])
    with refused(404, "unknown_generation"):
        env.operator.spent_range(7, [0])
