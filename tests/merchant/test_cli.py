"""``ecash merchant`` end to end: the console script as a real subprocess
against a real bank. Exit codes: 0 done, 1 refused, 2 could not do its work;
errors are one line, never a traceback."""

from __future__ import annotations

import json
import subprocess

from ecash.serving.threaded import free_port
from ecash.wire.fingerprint import master_key_fingerprint
from ecash.wire.json import keyset_fingerprint
from ecash.wire.text import payment_to_text, request_from_text

from ..bankkit import pay_request
from .kit import counts, credential, decompose, new_terminal, run_cli


def _clean(r: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr


def test_init_request_accept_deposit_report(bank, holder, tmp_path):
    store = str(tmp_path / "shop.db")
    master = bank.bank.master_public_key.hex()
    cred = {"ECASH_MERCHANT_CREDENTIAL": credential(bank, "shop-1")}
    r = run_cli(["merchant", "init", "--bank", bank.url, "--store", store, "--master-key",
                 master, "--json"], extra_env=cred)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["merchant_id"] == "shop-1" and info["master_key_pinned"] == "given"
    assert info["master_key_fingerprint"] == master_key_fingerprint(bytes.fromhex(master))
    assert info["keyset_fingerprint"] == keyset_fingerprint(bank.operator.keyset())
    human = run_cli(["merchant", "init", "--bank", bank.url, "--store", str(tmp_path / "b.db"),
                     "--master-key", master], extra_env=cred)
    assert human.returncode == 0, human.stderr
    assert master_key_fingerprint(bytes.fromhex(master)) in human.stdout
    again = run_cli(["merchant", "init", "--bank", bank.url, "--store", store], extra_env=cred)
    assert again.returncode == 2 and "already_initialised" in again.stderr
    _clean(again)

    r = run_cli(["merchant", "request", "1250", "--store", store, "--pos-url",
                 "http://127.0.0.1:8480"])
    assert r.returncode == 0, r.stderr
    assert "▄" in r.stdout or "█" in r.stdout  # the QR code
    assert "12.50 CNY" in r.stdout
    text = next(line for line in r.stdout.splitlines() if line.startswith("ecreq1:"))
    env = request_from_text(text)
    env.verify(bytes.fromhex(master), now=int(bank.clock()))
    assert env.pos_url == f"http://127.0.0.1:8480/pay/{env.request.request_id.hex()}"
    payment = payment_to_text(pay_request(holder, holder.withdraw(decompose(1250)), env.request))

    r = run_cli(["merchant", "accept", "--store", store, payment])
    assert r.returncode == 0, r.stderr
    assert "paid" in r.stdout and "12.50 CNY" in r.stdout
    (tmp_path / "payment.txt").write_text(payment + "\n")
    r = run_cli(["merchant", "accept", "--store", store, str(tmp_path / "payment.txt"), "--json"])
    assert r.returncode == 0, r.stderr
    receipt = json.loads(r.stdout)["receipt"]
    assert receipt["request_id"] == env.request.request_id.hex() and receipt["amount"] == 1250

    r = run_cli(["merchant", "request", "7", "--store", store, "--json"])
    second = request_from_text(json.loads(r.stdout)["text"])
    assert json.loads(r.stdout)["pos_url"] == ""
    wrong = payment_to_text(pay_request(holder, holder.withdraw([4, 2]), second.request))
    r = run_cli(["merchant", "accept", "--store", store], input=wrong)  # stdin
    assert r.returncode == 1 and "refused: amount_mismatch" in r.stderr
    _clean(r)
    r = run_cli(["merchant", "accept", "--store", store, "--json", "-"], input=wrong)
    assert r.returncode == 1 and json.loads(r.stdout)["code"] == "amount_mismatch"

    r = run_cli(["merchant", "deposit", "--store", store, "--json"])
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["accepted"] == 5
    r = run_cli(["merchant", "report", "--store", store, "--json"])
    rep = json.loads(r.stdout)
    assert rep["credited"] == {"count": 5, "value": 1250}
    assert rep["payments"]["refused"]["codes"] == {"amount_mismatch": 2}
    r = run_cli(["merchant", "report", "--store", store])
    assert r.returncode == 0 and "Credited by the bank" in r.stdout and "12.50 CNY" in r.stdout


def test_errors_are_one_clear_line(bank, holder, tmp_path):
    nothing = str(tmp_path / "nothing.db")
    for cmd in (["report"], ["request", "5"]):
        r = run_cli(["merchant", *cmd, "--store", nothing])
        assert r.returncode == 2 and "not_initialised" in r.stderr, r.stderr
        _clean(r)
    store = str(tmp_path / "shop.db")
    init = ["merchant", "init", "--bank", bank.url, "--store", store]
    r = run_cli(init, stdin=subprocess.DEVNULL)  # no credential anywhere
    assert r.returncode == 2 and "no credential" in r.stderr
    r = run_cli(init, extra_env={"ECASH_MERCHANT_CREDENTIAL": "ecm_wrong"})
    assert r.returncode == 2 and "bank_refused" in r.stderr
    (tmp_path / "cred").write_text(credential(bank, "shop-9") + "\n")
    r = run_cli([*init, "--credential-file", str(tmp_path / "cred"), "--master-key", "ab" * 32])
    assert r.returncode == 2 and "master_key_changed" in r.stderr
    # both keys' whole fingerprints, as `ecash bank init` prints the bank's
    master = bank.bank.master_public_key
    assert master_key_fingerprint(master) in r.stderr
    assert master_key_fingerprint(bytes.fromhex("ab" * 32)) in r.stderr
    r = run_cli(["merchant", "init", "--bank", f"http://127.0.0.1:{free_port()}", "--store",
                 store, "--credential-file", str(tmp_path / "cred")])
    assert r.returncode == 2 and "bank_unreachable" in r.stderr
    r = run_cli(["merchant", "accept", "--store", store, "ecpay1:!!"])
    assert r.returncode == 2 and "not_initialised" in r.stderr  # still nothing there
    assert not (tmp_path / "nothing.db").exists()  # a typo creates no empty store

    t = new_terminal(bank, tmp_path / "t.db")
    env = t.create_request(3)
    t.accept(env.request.request_id, pay_request(holder, holder.withdraw([2, 1]), env.request))
    t.store.set_settings({"bank_url": f"http://127.0.0.1:{free_port()}"})  # the bank is gone
    r = run_cli(["merchant", "deposit", "--store", str(tmp_path / "t.db")])
    assert r.returncode == 2 and "deposit stopped: bank_unreachable" in r.stderr
    _clean(r)
    r = run_cli(["merchant", "accept", "--store", str(tmp_path / "t.db"), "ecpay1:!!"])
    assert r.returncode == 1 and "refused: bad_base64" in r.stderr
    r = run_cli(["merchant", "accept", "--store", str(tmp_path / "t.db"),
                 str(tmp_path / "missing.txt")])
    assert r.returncode == 2 and "cannot read" in r.stderr
    r = run_cli(["merchant", "request", "0", "--store", str(tmp_path / "t.db")])
    assert r.returncode == 2 and "bad_amount" in r.stderr
    assert counts(t) == (2, 1)
    t.close()
