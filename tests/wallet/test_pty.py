"""``ecash wallet`` where it prompts, on a pseudo-terminal: the hidden
passphrase at ``init`` (asked twice, never echoed), and ``pay``'s confirmation
showing the amount in yuan, the shop and what is being bought before anything
is paid; a "no" pays nothing."""

from __future__ import annotations

import json
import os
import re

import pytest

from ecash.wire import uri  # the offline text with the description
from ecash.wire.description import sign_description

from ..bankkit import running_bank
from .kit import PASS, Terminal, holder, run_cli
from .ptykit import spawn

SECRET = "a long passphrase typed at the keyboard"


@pytest.fixture
def env(tmp_path):
    with running_bank("sqlite", tmp_path) as e:
        yield e


def _plain_env() -> dict[str, str]:
    """The environment without a passphrase: the command must ask for it."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ECASH_WALLET")}


def test_init_asks_for_the_passphrase_twice_and_hides_it(tmp_path):
    path = tmp_path / "w.db"
    s = spawn(["wallet", "init", "--wallet", str(path), "--kdf", "interactive"], _plain_env())
    s.expect(r"New passphrase: ")
    s.send(SECRET)
    s.expect(r"Repeat for confirmation: ")
    s.send(SECRET)
    s.expect(r"Your seed phrase")
    assert s.wait() == 0, s.seen
    assert SECRET not in s.seen  # hidden input is never echoed
    assert "Traceback" not in s.seen
    numbered = re.findall(r"\b(\d{1,2})\. ([a-z]+)\b", s.seen)
    assert sorted(int(n) for n, _ in numbered) == list(range(1, 25)), s.seen
    # the wallet opens with the passphrase typed, and with no other
    ok = run_cli(["balance", "--wallet", str(path), "--json"],
                 env_extra={"ECASH_WALLET_PASSPHRASE": SECRET})
    assert ok.returncode == 0, ok.stderr
    wrong = run_cli(["balance", "--wallet", str(path), "--json"])  # the kit's PASS
    assert wrong.returncode == 1 and json.loads(wrong.stdout)["error"] == "wrong_passphrase"


def test_a_mismatched_repeat_is_asked_again(tmp_path):
    path = tmp_path / "w.db"
    s = spawn(["wallet", "init", "--wallet", str(path), "--kdf", "interactive"], _plain_env())
    s.expect(r"New passphrase: ")
    s.send(SECRET)
    s.expect(r"Repeat for confirmation: ")
    s.send("something else")
    s.expect(r"do not match")
    s.expect(r"New passphrase: ")
    s.send(SECRET)
    s.expect(r"Repeat for confirmation: ")
    s.send(SECRET)
    assert s.wait() == 0, s.seen
    assert path.is_file()


def _funded_wallet(env, tmp_path):
    h = holder(env)
    path = tmp_path / "w.db"
    w = ["--wallet", str(path), "--json"]
    assert run_cli(["init", "--kdf", "interactive", *w]).returncode == 0
    r = run_cli(["register", "--bank", env.url, "--account", h.account_id, *w],
                env_extra={"ECASH_WALLET_CREDENTIAL": h.credential})
    assert r.returncode == 0, r.stderr
    r = run_cli(["load", "100", *w])
    assert r.returncode == 0, r.stderr
    return path


def _payment_text(shop: Terminal, amount: int, what: str) -> str:
    envelope = shop.request(amount)
    return uri.offline_text(envelope, sign_description(shop.key, envelope.request.request_id,
                                                       what))


def test_pay_shows_yuan_and_what_is_bought_then_pays_on_yes(env, tmp_path):
    path = _funded_wallet(env, tmp_path)
    shop = Terminal(env, "bakery")
    try:
        text = _payment_text(shop, 1234, "2 croissants")
        s = spawn(["wallet", "pay", text, "--wallet", str(path)], _plain_env())
        s.expect(r"Passphrase: ")
        s.send(PASS)
        ask = s.expect(r"Pay (.*)\? \[y/N\]: ")
        assert ask.group(1) == "CNY\xa012.34 to 'bakery' for '2 croissants'", ask.group(0)
        s.send("y")
        s.expect(r"Paid CNY\s12\.34 to bakery for '2 croissants'")
        assert s.wait() == 0, s.seen
        assert PASS not in s.seen and "Traceback" not in s.seen
        hist = run_cli(["history", "--wallet", str(path), "--json"])
        [paid] = [p for p in json.loads(hist.stdout)["payments"] if p["kind"] == "pay"]
        assert (paid["amount"], paid["status"]) == (1234, "confirmed")
        assert paid["description"] == "2 croissants"
        shown = run_cli(["history", "--wallet", str(path)])
        assert "2 croissants" in shown.stdout and "CNY\xa012.34" in shown.stdout
    finally:
        shop.close()


def test_pay_answered_no_pays_nothing(env, tmp_path):
    path = _funded_wallet(env, tmp_path)
    shop = Terminal(env, "bakery")
    try:
        s = spawn(["wallet", "pay", _payment_text(shop, 500, "a loaf"), "--wallet", str(path)],
                  {**_plain_env(), "ECASH_WALLET_PASSPHRASE": PASS})
        s.expect(r"Pay CNY\s5\.00 to 'bakery' for 'a loaf'\? \[y/N\]: ")
        s.send("n")
        code = s.wait()
        assert code == 1, s.seen
        assert "Traceback" not in s.seen
        assert shop.posts == 0
        bal = json.loads(run_cli(["balance", "--wallet", str(path), "--json"]).stdout)
        assert bal["spendable"] == 10_000 and bal["pending"] == 0
    finally:
        shop.close()
