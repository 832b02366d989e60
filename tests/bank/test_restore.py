"""What a wallet restore needs from the bank (ECASH-1 9.4, 9.7): the record
of every answered withdrawal, and the spent-set query by bucket."""

from __future__ import annotations

from ecash.crypto import group
from ecash.crypto.withdrawal import WithdrawalState, user_finish
from ecash.wire.redemption import redemption_request
from ecash.wire.spentset import bucket_of, prefix_of

from ..bankkit import pay_request, raw, refused


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


def test_spent_range(env):
    """Deposited and redeemed coins are in the spent set under their coin_id,
    asked for by bucket (the caps and pages: test_spent_range.py)."""
    alice = env.holder("Alice", funds=100_000)
    shop = env.merchant("shop")
    coins = alice.withdraw([1] * 24)
    spent, kept = coins[:16], coins[16:]
    shop.deposit(alice.pay(spent[:12], "shop"))
    request = redemption_request(alice.account_id, 4, "CNY", int(env.clock() * 1000))
    alice.client.redeem(alice.account_id, pay_request(alice, spent[12:], request))
    spent_ids = {c.coin_id for c, _ in spent}
    by_prefix: dict[int, set[bytes]] = {}
    for s in spent_ids:
        by_prefix.setdefault(prefix_of(s, 8), set()).add(s)
    asked = sorted(set(list(by_prefix)[:5] + [prefix_of(c.coin_id, 8) for c, _ in kept[:4]]
                       + [0, 255]))
    r = raw(env, "POST", "/v1/spent-range", json_body={"generation": 1, "prefix_bits": 8,
                                                        "prefixes": asked, "after": None})
    assert r.status_code == 200  # no credential
    out = r.json()
    assert (out["generation"], out["closed"], out["next"]) == (1, False, None)
    in_order = sorted(spent_ids, key=lambda c: (bucket_of(c), c))
    assert out["coin_ids"] == [c.hex() for c in in_order if prefix_of(c, 8) in asked]
    assert len(out["coin_ids"]) >= 5
    assert env.operator.spent_range(1, 0, [0])["coin_ids"] == [c.hex() for c in in_order]
    missing = [p for p in range(256) if p not in by_prefix]
    assert env.operator.spent_range(1, 8, missing[:50])["coin_ids"] == []
    with refused(422, "bad_prefixes"):
        env.operator.spent_range(1, 8, [256])
    with refused(404, "unknown_generation"):
        env.operator.spent_range(7, 8, [0])
