"""``ecash merchant`` end to end: the console script as a real subprocess
against a real bank. Amounts in major units; exit codes 0 done, 1 refused,
2 usage or unreadable input, 3 pending or unreachable; errors are one line
(or one JSON object), never a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import httpx

from ecash.money import format_money
from ecash.serving.threaded import free_port
from ecash.wallet.request_source import resolve_request
from ecash.wire.fingerprint import master_key_fingerprint
from ecash.wire.json import keyset_fingerprint
from ecash.wire.text import any_request_from_text, payment_to_text, request_from_text
from ecash.wire.uri import payment_uri

from ..bankkit import pay_request
from .kit import counts, credential, decompose, ecash_command, new_terminal, run_cli


def description_of_text(text: str):
    return any_request_from_text(text)[1]


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
    assert again.returncode == 2 and "already" in again.stderr
    _clean(again)

    r = run_cli(["merchant", "request", "12.50", "--store", store, "--pos-url",
                 "http://127.0.0.1:8480"])
    assert r.returncode == 0, r.stderr
    assert "▄" in r.stdout or "█" in r.stdout  # the QR code
    assert format_money(1250, "CNY") in r.stdout
    link = next(line for line in r.stdout.splitlines() if line.startswith("ecash+http:"))
    text = next(line for line in r.stdout.splitlines() if line.startswith("ecreq1:"))
    env = request_from_text(text)
    env.verify(bytes.fromhex(master), now=int(bank.clock()))
    assert env.pos_url == f"http://127.0.0.1:8480/pay/{env.request.request_id.hex()}"
    assert link == payment_uri(env)
    payment = payment_to_text(pay_request(holder, holder.withdraw(decompose(1250)), env.request))

    r = run_cli(["merchant", "accept", "--store", store, payment])
    assert r.returncode == 0, r.stderr
    assert "PAID" in r.stdout and format_money(1250, "CNY") in r.stdout
    (tmp_path / "payment.txt").write_text(payment + "\n")
    r = run_cli(["merchant", "accept", "--store", store, str(tmp_path / "payment.txt"), "--json"])
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    receipt = out["receipt"]
    assert receipt["request_id"] == env.request.request_id.hex() and receipt["amount"] == 1250
    assert out["amount"] == 1250 and out["amount_unit"] == "minor" and out["currency"] == "CNY"

    r = run_cli(["merchant", "request", "0.07", "--store", store, "--json"])
    second = request_from_text(json.loads(r.stdout)["text"])
    assert json.loads(r.stdout)["pos_url"] == "" and json.loads(r.stdout)["uri"] is None
    assert json.loads(r.stdout)["amount"] == 7 and json.loads(r.stdout)["amount_unit"] == "minor"
    wrong = payment_to_text(pay_request(holder, holder.withdraw([4, 2]), second.request))
    r = run_cli(["merchant", "accept", "--store", store], input=wrong)  # stdin
    assert r.returncode == 1 and "refused (amount_mismatch)" in r.stderr
    _clean(r)
    r = run_cli(["merchant", "accept", "--store", store, "--json", "-"], input=wrong)
    assert r.returncode == 1 and json.loads(r.stdout)["error"] == "amount_mismatch"
    assert json.loads(r.stdout)["exit"] == 1 and "refusal" in json.loads(r.stdout)

    r = run_cli(["merchant", "request", "1", "--store", store, "--json", "--description",
                 "2 coffees", "--pos-url", "https://till.example.com"])
    out = json.loads(r.stdout)
    assert out["amount"] == 100 and out["description"] == "2 coffees"
    assert out["uri"].startswith("ecash://pay/till.example.com/")
    assert out["text"].startswith("ecreqd1:")
    resolved = resolve_request(out["text"])
    assert resolved.description == "2 coffees"
    assert payment_uri(resolved.envelope, description_of_text(out["text"])) == out["uri"]
    r = run_cli(["merchant", "request", "1", "--store", store, "--description", "2 coffees",
                 "--no-qr"])
    assert "for: 2 coffees" in r.stdout and "offline code" in r.stdout

    r = run_cli(["merchant", "deposit", "--store", store, "--json"])
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["accepted"] == 5
    assert json.loads(r.stdout)["credited"] == 1250
    assert json.loads(r.stdout)["amount_unit"] == "minor"
    r = run_cli(["merchant", "report", "--store", store, "--json"])
    rep = json.loads(r.stdout)
    assert rep["credited"] == {"count": 5, "value": 1250}
    assert rep["payments"]["refused"]["codes"] == {"amount_mismatch": 2}
    r = run_cli(["merchant", "report", "--store", store])
    assert r.returncode == 0 and "Credited by the bank" in r.stdout
    assert format_money(1250, "CNY") in r.stdout


def test_errors_are_one_clear_line(bank, holder, tmp_path):
    nothing = str(tmp_path / "nothing.db")
    for cmd in (["report"], ["request", "0.05"]):
        r = run_cli(["merchant", *cmd, "--store", nothing])
        assert r.returncode == 2 and "ecash merchant init" in r.stderr, r.stderr
        _clean(r)
    # a database that is down: try again (3); a --store that is no store: usage (2)
    r = run_cli(["merchant", "report", "--store", f"postgresql://u@127.0.0.1:{free_port()}/x",
                 "--json"])
    assert r.returncode == 3 and json.loads(r.stdout)["error"] == "store_unreachable"
    assert "database is running" in r.stderr
    _clean(r)
    r = run_cli(["merchant", "report", "--store", "foo://bar"])
    assert r.returncode == 2 and "unsupported store URL" in r.stderr
    _clean(r)
    store = str(tmp_path / "shop.db")
    init = ["merchant", "init", "--bank", bank.url, "--store", store]
    r = run_cli(init, stdin=subprocess.DEVNULL)  # no credential anywhere
    assert r.returncode == 2 and "no credential" in r.stderr
    r = run_cli(init, extra_env={"ECASH_MERCHANT_CREDENTIAL": "ecm_wrong"})
    assert r.returncode == 1 and "the bank said 401" in r.stderr
    (tmp_path / "cred").write_text(credential(bank, "shop-9") + "\n")
    r = run_cli([*init, "--credential-file", str(tmp_path / "cred"), "--master-key", "ab" * 32])
    assert r.returncode == 1 and "master" in r.stderr
    # both keys' whole fingerprints, as `ecash bank init` prints the bank's
    master = bank.bank.master_public_key
    assert master_key_fingerprint(master) in r.stderr
    assert master_key_fingerprint(bytes.fromhex("ab" * 32)) in r.stderr
    r = run_cli(["merchant", "init", "--bank", f"http://127.0.0.1:{free_port()}", "--store",
                 store, "--credential-file", str(tmp_path / "cred")])
    assert r.returncode == 3 and "bank unreachable" in r.stderr and "try again" in r.stderr
    r = run_cli(["merchant", "accept", "--store", store, "ecpay1:!!"])
    assert r.returncode == 2 and "'!' at position 8" in r.stderr  # unreadable input
    assert not (tmp_path / "nothing.db").exists()  # a typo creates no empty store

    t = new_terminal(bank, tmp_path / "t.db")
    env = t.create_request(3)
    t.accept(env.request.request_id, pay_request(holder, holder.withdraw([2, 1]), env.request))
    t.store.set_settings({"bank_url": f"http://127.0.0.1:{free_port()}"})  # the bank is gone
    r = run_cli(["merchant", "deposit", "--store", str(tmp_path / "t.db")])
    assert r.returncode == 3 and "deposit stopped: bank_unreachable" in r.stderr
    _clean(r)
    r = run_cli(["merchant", "deposit", "--store", str(tmp_path / "t.db"), "--json"])
    out = json.loads(r.stdout)
    assert r.returncode == 3 and out["error"] == "deposit_stopped" and out["exit"] == 3
    assert out["result"]["sent"] == 0
    r = run_cli(["merchant", "accept", "--store", str(tmp_path / "t.db"), "ecpay1:AAAA"])
    assert r.returncode == 2 and "cut short" in r.stderr
    r = run_cli(["merchant", "accept", "--store", str(tmp_path / "t.db"),
                 str(tmp_path / "missing.txt")])
    assert r.returncode == 2 and "cannot read" in r.stderr
    for amount, words in (("0", "more than zero"), ("1.005", "at most 2 decimals"),
                          ("1,00", "not an amount"), ("$5", "not '$'")):
        r = run_cli(["merchant", "request", amount, "--store", str(tmp_path / "t.db")])
        assert r.returncode == 2 and words in r.stderr, (amount, r.stderr)
        _clean(r)
    r = run_cli(["merchant", "request", "1.005", "--store", str(tmp_path / "t.db"), "--json"])
    assert r.returncode == 2 and json.loads(r.stdout)["error"] == "bad_amount"
    r = run_cli(["merchant", "request", "5", "--description", "a\tb", "--store",
                 str(tmp_path / "t.db")])
    assert r.returncode == 2 and "U+0009" in r.stderr
    assert counts(t) == (2, 1)
    t.close()


def _serve(store: str, *args: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([*ecash_command(), "merchant", "serve", "--store", store, "--port",
                             str(port), "--deposit-every", "0", "--sync-every", "0",
                             "--log-level", "warning", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    return proc, port


def _stop(proc: subprocess.Popen) -> tuple[str, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()


def _wait_health(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("the terminal did not start: " + "".join(_stop(proc)))


def test_serve_never_shows_a_link_phones_cannot_reach(bank, tmp_path):
    store = str(tmp_path / "t.db")
    new_terminal(bank, store).close()

    # no --public-url: the till's page only, and it says so
    proc, port = _serve(store)
    _wait_health(f"http://127.0.0.1:{port}", proc)
    out, err = _stop(proc)
    assert "for this computer's till only" in out and "not a payment link" in out, out + err

    # a public URL that does not answer: one line, exit 3, the server stopped
    dead = f"http://127.0.0.1:{free_port()}"
    proc, port = _serve(store, "--public-url", dead)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, out + err
    assert f"{dead}/health does not answer" in err and "--no-check-public-url" in err
    assert "Traceback" not in out + err

    # ... unless the check is skipped (a proxy that is not up yet)
    proc, port = _serve(store, "--public-url", dead, "--no-check-public-url")
    _wait_health(f"http://127.0.0.1:{port}", proc)
    out, err = _stop(proc)
    assert f"phones pay at {dead} (not checked)" in out, out + err

    # a public URL that reaches this terminal: served, and printed
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([*ecash_command(), "merchant", "serve", "--store", store, "--port",
                             str(port), "--deposit-every", "0", "--sync-every", "0",
                             "--log-level", "warning"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "200",
                                 "ECASH_MERCHANT_PUBLIC_URL": public})
    _wait_health(public, proc)
    time.sleep(1.0)  # the check runs once the server listens
    assert proc.poll() is None
    out, err = _stop(proc)
    assert f"phones pay at {public} (checking it answers)" in out, out + err

    r = run_cli(["merchant", "serve", "--store", store, "--public-url", "shop.example.com"])
    assert r.returncode == 2 and "must start with https://" in r.stderr


def test_help_shows_defaults_and_environment_variables():
    for cmd, wanted in ((["request"], ["ECASH_MERCHANT_STORE", "ECASH_MERCHANT_PUBLIC_URL",
                                       "major unit", "--description", "600"]),
                        (["serve"], ["8480", "127.0.0.1", "ECASH_MERCHANT_PUBLIC_URL",
                                     "--no-check-public-url", "ECASH_TERMINAL"]),
                        (["init"], ["ECASH_MERCHANT_CREDENTIAL", "ECASH_MERCHANT_STORE"])):
        r = run_cli(["merchant", *cmd, "--help"], extra_env={"COLUMNS": "200"})
        assert r.returncode == 0
        for w in wanted:
            assert w in r.stdout, (cmd, w, r.stdout)
