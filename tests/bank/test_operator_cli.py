"""``ecash bank`` as an operator uses it: the same commands on the bank's own
database and, with the operator credential, against the bank over HTTP (its
responses checked against /openapi.json by ``running_bank``); amounts in major
units; a fraud case's proof that ``ecash verify double-spend`` checks; freezes
with their reasons. The console script runs as a real subprocess."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ecash.bank.service import Bank
from ecash.crypto.keys import Policy
from ecash.money import format_money

from ..bankkit import running_bank, token_of

ECASH = Path(sys.executable).with_name("ecash")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(ECASH), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


def ok_json(*args: str, env: dict[str, str] | None = None) -> dict:
    r = run(*args, "--json", env=env)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    return json.loads(r.stdout)


@pytest.fixture
def env(tmp_path):
    with running_bank("sqlite", tmp_path) as e:
        yield e


def local(env) -> list[str]:
    return ["--db", env.db_url, "--keys", str(env.keys_dir)]


def remote(env) -> tuple[list[str], dict[str, str]]:
    """The same bank over HTTP, the credential in the environment (never argv)."""
    return ["--bank", env.url], {"ECASH_OPERATOR_CREDENTIAL": token_of(env.operator)}


def double_spend(env):  # type: ignore[no-untyped-def]
    """Alice pays one coin to two shops: the second deposit opens a case naming her."""
    alice = env.holder("Alice", funds=1000)
    coins = alice.withdraw([16])
    shop1, shop2 = env.merchant("shop-one"), env.merchant("shop-two")
    assert shop1.deposit(alice.pay(coins, "shop-one"))[0]["status"] == "accepted"
    [verdict] = shop2.deposit(alice.pay(coins, "shop-two"))
    assert verdict["status"] == "double_spent"
    return alice, verdict["fraud_case"]


def test_every_operator_command_gives_the_same_result_locally_and_over_http(env):
    args, cred = remote(env)
    opened = ok_json("bank", "open-account", "--holder", "Li Lei", *args, env=cred)
    account = opened["account_id"]
    credited = ok_json("bank", "credit", account, "1,000.00", "--reference", "pay-in-1", *args,
                       env=cred)
    assert (credited["amount"], credited["balance"]) == (100_000, 100_000)
    assert (credited["amount_unit"], credited["currency"]) == ("minor", "CNY")
    again = ok_json("bank", "credit", account, "1000", "--reference", "pay-in-1", *local(env))
    assert again["balance"] == 100_000  # the same reference credits once, either way
    shop = ok_json("bank", "open-account", "--holder", "Shop", *local(env))["account_id"]
    merchant = ok_json("bank", "register-merchant", shop, "--merchant-id", "shop-42", *args,
                       env=cred)
    assert merchant["credential"].startswith("ecm_")
    _, case = double_spend(env)
    for command in (["account", account], ["policy", "show"], ["fraud", "list"],
                    ["fraud", "show", str(case)], ["dispute", "list"], ["audit"],
                    ["keys", "list"]):
        here = ok_json("bank", *command, *local(env))
        there = ok_json("bank", *command, *args, env=cred)
        assert here == there, command
    human = run("bank", "account", account, *args, env=cred)
    assert human.returncode == 0 and format_money(100_000, "CNY") in human.stdout, human.stderr
    audit = run("bank", "audit", *args, env=cred)
    assert audit.returncode == 0 and "balanced" in audit.stdout
    # Li Lei's CNY 1,000.00 and Alice's CNY 10.00
    assert "cash in" in audit.stdout and format_money(101_000, "CNY") in audit.stdout


def test_keys_rotate_stays_on_the_banks_machine(env):
    args, cred = remote(env)
    r = run("bank", "keys", "rotate", *args, "--json", env=cred)
    assert r.returncode == 2
    assert json.loads(r.stdout)["error"] == "local_only"
    assert "key directory" in r.stderr
    assert ok_json("bank", "keys", "rotate", *local(env))["generation"] == 2


def test_a_wrong_credential_or_an_unreachable_bank_says_what_to_do(env, tmp_path):
    args, _ = remote(env)
    wrong = run("bank", "audit", *args, "--json",
                env={"ECASH_OPERATOR_CREDENTIAL": "eco_" + "A" * 43})
    assert wrong.returncode == 2 and json.loads(wrong.stdout)["error"] == "unauthenticated"
    cred_file = tmp_path / "operator.credential"
    cred_file.write_text(token_of(env.operator) + "\n")
    assert ok_json("bank", "audit", *args, "--credential-file", str(cred_file))["ok"] is True
    none = run("bank", "audit", *args, env={"ECASH_OPERATOR_CREDENTIAL": ""})
    assert none.returncode == 2 and "ECASH_OPERATOR_CREDENTIAL" in none.stderr
    from ecash.serving.threaded import free_port

    down = run("bank", "audit", "--bank", f"http://127.0.0.1:{free_port()}", "--json",
               env={"ECASH_OPERATOR_CREDENTIAL": token_of(env.operator)})
    assert down.returncode == 3 and json.loads(down.stdout)["error"] == "bank_unreachable"
    assert "Traceback" not in down.stderr and len(down.stderr.strip().splitlines()) == 1


def test_credit_takes_major_units_and_refuses_a_bad_amount(env):
    account = ok_json("bank", "open-account", "--holder", "A", *local(env))["account_id"]
    out = run("bank", "credit", account, "20.48", *local(env))
    assert out.returncode == 0 and f"credited {format_money(2048, 'CNY')}" in out.stdout, out.stderr
    assert env.bank.account_info(account)["balance"] == 2048
    for bad in ("1.005", "abc", "0", "JPY 5", "1,00"):
        r = run("bank", "credit", account, bad, *local(env), "--json")
        assert r.returncode == 2, (bad, r.stdout, r.stderr)
        assert json.loads(r.stdout)["error"] == "bad_amount"
    assert env.bank.account_info(account)["balance"] == 2048


def test_freeze_reason_and_unfreeze_note_are_recorded_and_shown(env):
    alice = env.holder("Alice", funds=1000)
    args, cred = remote(env)
    missing = run("bank", "freeze", alice.account_id, *args, env=cred)
    assert missing.returncode == 2  # --reason is required
    frozen = ok_json("bank", "freeze", alice.account_id, "--reason", "card reported [stolen]",
                     *args, env=cred)
    assert frozen["frozen_reason"] == "card reported [stolen]"
    seen = alice.client.account(alice.account_id)  # what the holder's wallet reads
    assert (seen["frozen_reason"], seen["frozen_case"]) == ("card reported [stolen]", None)
    shown = run("bank", "account", alice.account_id, *local(env))
    assert "card reported [stolen]" in shown.stdout  # brackets survive Rich markup
    ok_json("bank", "unfreeze", alice.account_id, "--note", "found in a drawer", *local(env))
    events = ok_json("bank", "account", alice.account_id, *args, env=cred)["events"]
    assert [(e["action"], e["text"]) for e in events] == [
        ("frozen", "card reported [stolen]"), ("unfrozen", "found in a drawer")]


def test_fraud_show_out_writes_what_verify_double_spend_takes(env, tmp_path):
    alice, case = double_spend(env)
    out = tmp_path / "proof"
    args, cred = remote(env)
    shown = run("bank", "fraud", "show", str(case), "--out", str(out), *args, env=cred)
    assert shown.returncode == 0, shown.stderr
    assert "ecash verify double-spend" in shown.stdout
    files = [out / "spend1.json", out / "spend2.json", out / "key.json"]
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
    master = env.bank.master_public_key.hex()
    verified = run("verify", "double-spend", str(files[0]), str(files[1]), "--key",
                   str(files[2]), "--master", master)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.strip() == alice.I.hex()
    # the automatic freeze says which case froze the account
    seen = alice.client.account(alice.account_id)
    assert (seen["status"], seen["frozen_case"]) == ("frozen", case)
    assert seen["frozen_reason"] == f"double spending: case {case}"


def test_policy_set_signs_a_new_policy_and_refuses_a_bad_file_whole(env, tmp_path):
    args, cred = remote(env)
    before = ok_json("bank", "policy", "show", *args, env=cred)
    shown = run("bank", "policy", "show", *local(env)).stdout
    assert 'single_payment_limit = "500.00"' in shown
    good = tmp_path / "policy.toml"
    good.write_text('[limits]\nsingle_payment_limit = "800.00"\nfloor_limit = 100\n'
                    '[coins]\ndenominations = ["0.10", "1", "5", "10", "50", "100"]\n')
    after = ok_json("bank", "policy", "set", str(good), *args, env=cred)
    assert (after["single_payment_limit"], after["floor_limit"]) == (80_000, 10_000)
    assert after["denominations"] == [10, 100, 500, 1000, 5000, 10_000]
    assert after["issued_at"] > before["issued_at"]
    assert sorted(after["changed"]) == ["denominations", "floor_limit", "single_payment_limit"]
    # the keyset every wallet fetches carries the new policy, signed by the master key
    ks = env.operator.keyset()
    assert ks.policy.single_payment_limit == 80_000
    ks.policy.verify(ks.master_public_key, ks.policy_signature)
    # a refused file changes nothing and names the key (exit 2)
    for text, key in (('[limits]\nsingle_paymnt_limit = "1"\n', "limits.single_paymnt_limit"),
                      ('[limits]\nholding_limit = "50"\n', "limits.holding_limit"),
                      ('[limits]\nfloor_limit = "0.001"\n', "limits.floor_limit"),
                      ('[caps]\nmax_deposit_batch = "10"\n', "caps.max_deposit_batch"),
                      ('[fees]\nwithdrawal = "0.10"\n', "fees"),
                      ('currency = "JPY"\n', "currency")):
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        for where, extra in ((local(env), None), (args, cred)):
            r = run("bank", "policy", "set", str(bad), *where, "--json", env=extra)
            assert r.returncode == 2, (text, r.stdout, r.stderr)
            assert json.loads(r.stdout)["key"] == key, (text, r.stdout)
            assert key in r.stderr
    still = ok_json("bank", "policy", "show", *local(env))
    assert (still["issued_at"], still["single_payment_limit"]) == (after["issued_at"], 80_000)
    # new denominations from the next generation on; the current one keeps its coins
    current = {k.key_id for k in ks.keys}
    ok_json("bank", "keys", "rotate", *local(env))
    values = {k.value for k in env.operator.keyset().keys if k.key_id not in current}
    assert values == {10, 100, 500, 1000, 5000, 10_000}


def test_a_running_worker_picks_up_a_policy_set_elsewhere(env, tmp_path, monkeypatch):
    """The CLI changes the database directly; the served bank re-reads it
    within ``policy.RELOAD_S`` (here forced at once)."""
    good = tmp_path / "policy.toml"
    good.write_text('[limits]\nholding_limit = "3000.00"\n')
    ok_json("bank", "policy", "set", str(good), *local(env))
    env.bank._settings_read_at = 0.0  # as if RELOAD_S had passed
    assert env.operator.keyset().policy.holding_limit == 300_000


def test_every_tunable_number_is_in_the_policy_file_and_reads_back():
    """Nothing is settable only in Python: each field of BankConfig but the two
    fixed at init has a key, and a shown policy reads back to the same numbers."""
    from dataclasses import fields

    from ecash.bank.config import BankConfig
    from ecash.bank.policy_file import SETTINGS, PolicyError, parse_policy, policy_toml

    assert set(SETTINGS) == {f.name for f in fields(BankConfig)} - {"currency",
                                                                    "bank_merchant_id"}
    cny = BankConfig()
    assert parse_policy(policy_toml(cny), cny) == cny
    kwd = parse_policy('currency = "KWD"\n[coins]\ndenominations = ["0.005", "0.010"]\n'
                       '[limits]\nfloor_limit = "1.500"\n', BankConfig(currency="KWD"))
    assert (kwd.denominations, kwd.floor_limit) == ([5, 10], 1500)  # three decimals
    assert parse_policy(policy_toml(kwd), kwd) == kwd
    with pytest.raises(PolicyError) as why:
        parse_policy('[coins]\ndenominations = ["1", "1.00"]\n', cny)
    assert why.value.key == "coins.denominations" and "twice" in str(why.value)


def test_init_with_a_policy_file(tmp_path):
    policy = tmp_path / "jpy.toml"
    policy.write_text('currency = "JPY"\n[limits]\nfloor_limit = 2000\nholding_limit = 100000\n'
                      'single_payment_limit = 30000\ndaily_offline_limit = 50000\n'
                      'daily_load_limit = 200000\nnet_load_limit = 500000\n'
                      '[coins]\ndenominations = [1, 5, 10, 50, 100, 500, 1000, 5000, 10000]\n')
    db = ["--db", f"sqlite:///{tmp_path / 'b.db'}", "--keys", str(tmp_path / "k")]
    init = ok_json("bank", "init", "--policy", str(policy), *db)
    assert init["currency"] == "JPY"
    shown = ok_json("bank", "policy", "show", *db)
    assert (shown["currency"], shown["holding_limit"], shown["denominations"][-1]) == (
        "JPY", 100_000, 10_000)
    bank = Bank.open(db[1], tmp_path / "k")
    try:
        policy_signed: Policy = bank.keyset().policy
        assert (policy_signed.currency, policy_signed.floor_limit) == ("JPY", 2000)
        assert sorted(k.value for k in bank.keyset().keys) == [1, 5, 10, 50, 100, 500, 1000,
                                                               5000, 10_000]
    finally:
        bank.engine.dispose()
    bad = tmp_path / "bad.toml"
    bad.write_text("[limits]\nfloor_limit = true\n")
    r = run("bank", "init", "--policy", str(bad), "--db", f"sqlite:///{tmp_path / 'c.db'}",
            "--keys", str(tmp_path / "k2"))
    assert r.returncode == 2 and "limits.floor_limit" in r.stderr
    assert not (tmp_path / "k2").exists()


@pytest.mark.parametrize(("db", "exit_code", "words"), [
    ("nonsense", 2, "not a database URL"),
    ("sqlite:////no/such/dir/x.db", 2, "no bank database"),
    ("mysql://u@h/db", 2, "not a database URL"),
    ("postgresql://ecash:ecash@127.0.0.1:1/ecash", 3, "not answering"),
])
def test_bad_db_values_say_what_to_do(tmp_path, db, exit_code, words):
    for command in (["audit"], ["fraud", "list"], ["policy", "show"]):
        r = run("bank", *command, "--db", db, "--keys", str(tmp_path), "--json")
        assert r.returncode == exit_code, (command, r.stdout, r.stderr)
        assert json.loads(r.stdout)["exit"] == exit_code
        assert words in r.stderr and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1


def test_a_postgresql_that_refuses_the_password_says_so(tmp_path):
    from ..bankkit import PG_URL

    wrong = PG_URL.replace("ecash:ecash@", "ecash:not-the-password@")
    if wrong == PG_URL:
        pytest.skip("the test database URL has no password to get wrong")
    r = run("bank", "audit", "--db", wrong, "--keys", str(tmp_path))
    assert r.returncode == 2, r.stderr
    assert "password" in r.stderr and "not-the-password" not in r.stderr
    assert "Traceback" not in r.stderr


def test_help_shows_defaults_and_environment_variables():
    flat = " ".join(run("bank", "credit", "--help").stdout.replace("│", " ").split())
    for words in ("ECASH_BANK_DB", "ECASH_BANK_KEYS", "ECASH_BANK_URL", "ECASH_BANK_CACERT",
                  "ECASH_OPERATOR_CREDENTIAL", "major unit"):
        assert words in flat, words
    flat = " ".join(run("bank", "policy", "set", "--help").stdout.replace("│", " ").split())
    assert "keys rotate" in flat

