"""``ecash wallet`` as a real subprocess: every command, ``--json``, and clear
errors (never a traceback) for bad input, a wrong passphrase, a damaged file,
an unreachable bank and a forged request. The bank engine does not matter to
the CLI, so these run on SQLite only."""

from __future__ import annotations

import dataclasses
import json
import os
import stat

import pytest

from ecash.wire import text

from ..bankkit import running_bank
from .kit import Terminal, holder, run_cli


@pytest.fixture
def env(tmp_path):
    with running_bank("sqlite", tmp_path) as e:
        yield e


def ok(r) -> dict:
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    return json.loads(r.stdout) if r.stdout.strip().startswith("{") else {}


def refused(r, code: str | None = None, exit_code: int = 1) -> dict:
    assert r.returncode == exit_code, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout
    assert r.stderr.strip().startswith("error:") or exit_code != 1, r.stderr
    out = json.loads(r.stdout) if r.stdout.strip().startswith("{") else {}
    if out:  # the contract's error object, the same words as stderr's line
        words = " ".join(out["message"].split())
        assert out["exit"] == exit_code and words in " ".join(r.stderr.split()), out
    if code is not None:
        assert out.get("error") == code, (out, r.stderr)
    return out


def test_every_command_end_to_end(env, tmp_path):
    h = holder(env)
    shop = Terminal(env, "shop")
    path = tmp_path / "w.db"
    w = ["--wallet", str(path), "--json"]
    cred = {"ECASH_WALLET_CREDENTIAL": h.credential}
    try:
        out = ok(run_cli(["init", "--kdf", "interactive", *w]))
        assert len(out["phrase"].split()) == 24
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        refused(run_cli(["init", *w]), "wallet_exists", 2)
        refused(run_cli(["load", "1", *w]), "not_registered")
        # a master key other than the bank's is refused (and nothing is pinned)
        refused(run_cli(["register", "--bank", env.url, "--account", h.account_id,
                         "--master-key", "11" * 32, *w], env_extra=cred),
                "master_key_changed")
        refused(run_cli(["register", "--bank", "http://127.0.0.1:1", "--account",
                         h.account_id, *w], env_extra=cred), "bank_unreachable", 3)
        out = ok(run_cli(["register", "--bank", env.url, "--account", h.account_id, *w],
                         env_extra=cred))
        assert out["account_id"] == h.account_id and len(out["keyset_fingerprint"]) == 16
        refused(run_cli(["load", "999999999", *w]), "holding_limit")
        out = ok(run_cli(["load", "30", *w]))  # yuan; --json counts fen
        assert out["amount"] == 3000 and out["state"] == "done"
        assert (out["currency"], out["amount_unit"]) == ("CNY", "minor")
        bal = ok(run_cli(["balance", *w]))
        assert bal["spendable"] == 3000 and bal["currency"] == "CNY"

        # offline payment: the text form to a file; the merchant deposits it
        envelope = shop.request(1234, pos=False)
        out_file = tmp_path / "payment.txt"
        out = ok(run_cli(["pay", text.request_to_text(envelope), "--out", str(out_file), *w]))
        assert out["status"] == "answered"
        spends = text.payment_from_text(out_file.read_text())
        assert {v["status"] for v in shop.deposit(spends)} == {"accepted"}
        # to a terminal, the request on stdin; then the identical payment again
        envelope = shop.request(66)
        req_text = text.request_to_text(envelope)
        first = ok(run_cli(["pay", "-", *w], input_text=req_text))
        assert first["status"] == "confirmed" and first["receipt"]["amount"] == 66
        again = ok(run_cli(["pay", req_text, *w]))
        assert again["repeated"] and again["payment"] == first["payment"]
        # a forged request, a malformed one
        forged = dataclasses.replace(shop.request(10), signature=bytes(64))
        refused(run_cli(["pay", text.request_to_text(forged), *w]), "bad_signature")
        refused(run_cli(["pay", "ecreq1:AAAA", *w]), "bad_request_text", 2)
        refused(run_cli(["pay", "hello", "--json", "--wallet", str(path)]),
                "bad_request_text", 2)

        ok(run_cli(["sync", *w]))
        assert ok(run_cli(["balance", *w]))["spendable"] == 3000 - 1234 - 66
        out = ok(run_cli(["break", *w]))
        assert sum(out["into"]) == out["broken"]
        out = ok(run_cli(["renew", *w]))
        assert out["renewed_coins"] == 0  # nothing near its deadline
        hist = ok(run_cli(["history", *w]))
        assert {e["kind"] for e in hist["events"]} >= {"load", "pay", "break", "sync"}
        assert ok(run_cli(["check", *w]))["ok"]
        # human output works too
        r = run_cli(["balance", "--wallet", str(path)])
        assert r.returncode == 0 and "Spendable" in r.stdout

        # wrong passphrase, damaged file, no file
        refused(run_cli(["balance", *w], env_extra={"ECASH_WALLET_PASSPHRASE": "nope"}),
                "wrong_passphrase")
        refused(run_cli(["balance", "--wallet", str(tmp_path / "none.db"), "--json"]),
                "no_wallet", 2)
        bad = tmp_path / "bad.db"
        bad.write_bytes(b"SQLite format 3\0" + os.urandom(4096))
        os.chmod(bad, 0o600)
        refused(run_cli(["balance", "--wallet", str(bad), "--json"]), "corrupt_wallet")

        # needs --yes without a terminal
        refused(run_cli(["close", "--wallet", str(path)]), exit_code=2)
        out = ok(run_cli(["close", "--yes", *w]))
        assert out["account"]["status"] == "closed"
        assert out["redeemed"]["value"] == 3000 - 1234 - 66
        assert env.operator.audit()["ok"]
    finally:
        shop.close()


def test_restore_from_the_command_line(env, tmp_path):
    h = holder(env)
    src = h.wallet(tmp_path / "w.db")
    src.load(500)
    phrase_file = tmp_path / "phrase.txt"
    phrase_file.write_text(src.phrase)
    h.close()
    w = ["--wallet", str(tmp_path / "r.db"), "--json"]
    out = ok(run_cli(["restore", "--bank", env.url, "--account", h.account_id,
                      "--phrase-file", str(phrase_file), "--kdf", "interactive", *w],
                     env_extra={"ECASH_WALLET_CREDENTIAL": h.credential}))
    assert out["pending_value"] == 500 and out["unrecognised"] == 0
    bal = ok(run_cli(["balance", *w]))
    assert bal["pending"] == 500 and bal["spendable"] == 0
    phrase_file.write_text("abandon " * 24)
    refused(run_cli(["restore", "--bank", env.url, "--account", h.account_id,
                     "--phrase-file", str(phrase_file), "--wallet", str(tmp_path / "x.db"),
                     "--json"], env_extra={"ECASH_WALLET_CREDENTIAL": h.credential}),
            "bad_phrase")
    assert not (tmp_path / "x.db").exists()


def test_a_till_that_does_not_confirm_is_exit_3_and_a_signed_refusal_exit_1(env, tmp_path):
    """The two outcomes of ``pay`` that are not "paid": no answer from the till
    (the coins stay pending: exit 3, and the payment text is still given to the
    holder), and a refusal the till signed (the coins come back: exit 1)."""
    h = holder(env)
    shop = Terminal(env, "shop")
    path = tmp_path / "w.db"
    w = ["--wallet", str(path), "--json"]
    try:
        ok(run_cli(["init", "--kdf", "interactive", *w]))
        ok(run_cli(["register", "--bank", env.url, "--account", h.account_id, *w],
                   env_extra={"ECASH_WALLET_CREDENTIAL": h.credential}))
        ok(run_cli(["load", "20", *w]))
        envelope = shop.request(250)
        shop.go_offline()
        out = refused(run_cli(["pay", text.request_to_text(envelope), *w]),
                      "terminal_unreachable", 3)
        assert out["outcome"] == "pending" and out["payment"]["amount"] == 250
        assert (out["payment"]["currency"], out["payment"]["amount_unit"]) == ("CNY", "minor")
        human = run_cli(["pay", text.request_to_text(envelope), "--wallet", str(path)])
        assert human.returncode == 3, human.stderr
        assert human.stderr.splitlines()[-1].startswith("pending: could not reach"), human.stderr
        assert human.stdout.startswith("ecpay1:")  # the holder can still hand it over
        assert ok(run_cli(["balance", *w]))["pending"] == 250
        shop.come_back()

        shop.refuse, shop.refusal_key = "out_of_stock", shop.key
        out = refused(run_cli(["pay", text.request_to_text(shop.request(300)), *w]),
                      "out_of_stock", 1)
        assert out["outcome"] == "released" and out["payment"]["status"] == "released"
        assert ok(run_cli(["balance", *w]))["spendable"] == 2000 - 250
    finally:
        shop.close()
        h.close()


def test_pay_by_the_tills_link_shows_and_keeps_what_was_bought(env, tmp_path):
    """The phone's way: the QR code's ``ecash:`` link, resolved against a real
    terminal over HTTP; a cancelled request and a till that is down, in words."""
    from ecash.merchant.cancel import cancel_request
    from ecash.merchant.requests import description_of
    from ecash.wire import uri

    from ..merchant.kit import new_terminal, serving

    h = holder(env)
    path = tmp_path / "w.db"
    w = ["--wallet", str(path), "--json"]
    t = new_terminal(env, tmp_path / "till.db", "cafe")
    try:
        ok(run_cli(["init", "--kdf", "interactive", *w]))
        ok(run_cli(["register", "--bank", env.url, "--account", h.account_id, *w],
                   env_extra={"ECASH_WALLET_CREDENTIAL": h.credential}))
        ok(run_cli(["load", "50", *w]))

        def link(amount: int, what: str, base: str) -> str:
            envelope = t.create_request(amount, pos_base=base, description=what)
            record = t.store.request(envelope.request.request_id)
            return uri.payment_uri(envelope, description_of(t, record))

        with serving(t) as url:
            out = ok(run_cli(["pay", link(1_800, "a flat white", url), "--yes", *w]))
            assert (out["status"], out["amount"], out["description"]) == \
                ("confirmed", 1_800, "a flat white")
            human = run_cli(["pay", link(450, "a biscuit", url), "--yes", "--wallet",
                             str(path)])
            assert human.returncode == 0, human.stderr
            assert "Paid CNY\xa04.50 to cafe for 'a biscuit'" in human.stdout
            cancelled = link(300, "a cancelled scone", url)
            cancel_request(t, uri.parse_payment_uri(cancelled).request_id)
            refused(run_cli(["pay", cancelled, "--yes", *w]), "request_cancelled")
            gone = link(300, "a scone", url)
        refused(run_cli(["pay", gone, "--yes", *w]), "request_unreachable", 3)
        hist = ok(run_cli(["history", *w]))
        assert [p["description"] for p in hist["payments"] if p["kind"] == "pay"] == \
            ["a biscuit", "a flat white"]
        table = run_cli(["history", "--wallet", str(path)])
        assert "a flat white" in table.stdout and "CNY\xa018.00" in table.stdout
    finally:
        t.close()
        h.close()
