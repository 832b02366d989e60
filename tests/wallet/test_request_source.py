"""The sale's description in the wallet's history, and wallet files written by
older code (format 2: no description column) opening and gaining it."""

from __future__ import annotations

import sqlite3

from ecash.wallet import Wallet
from ecash.wallet.store import FORMAT, FORMAT_2

from .kit import PASS, Terminal, holder


def test_description_is_kept_and_an_older_wallet_file_still_opens(env, tmp_path):
    h = holder(env)
    path = tmp_path / "w.db"
    w = h.wallet(path)
    shop = Terminal(env, "shop")
    try:
        w.load(10_000)
        first = w.pay(shop.request(3))
        assert first.status == "confirmed" and first.description is None
        w.close()
        # the file as format 2 wrote it: no description column
        conn = sqlite3.connect(path)
        conn.execute("ALTER TABLE payments DROP COLUMN description")
        conn.execute("UPDATE meta SET value = ? WHERE name = 'format'", (FORMAT_2,))
        conn.commit()
        conn.close()

        w = Wallet.open(path, PASS, clock=env.clock)
        h.wallets.append(w)
        assert w.store.meta("format") == FORMAT
        assert [e["description"] for e in w.history() if e["kind"] == "pay"] == [None]
        second = w.pay(shop.request(5), description="two coffees")
        assert second.status == "confirmed" and second.description == "two coffees"
        assert w.pay(shop.request(5)).description is None
        pays = [(e["amount"], e["description"]) for e in w.history() if e["kind"] == "pay"]
        assert sorted(pays, key=str) == sorted([(3, None), (5, None), (5, "two coffees")], key=str)
        by_amount = {(p["amount"], p["description"]) for p in w.payments()}
        assert (5, "two coffees") in by_amount
        # asked again for the same request, the stored payment keeps its description
        again = w.stored_payment(second.request_id)
        assert again is not None and again.description == "two coffees"
        assert w.audit()["ok"]
    finally:
        shop.close()
        h.close()
