"""The story told by ``ecash demo``: a real bank, two terminals and two wallets
on 127.0.0.1 (SQLite files in one directory); honest payments, settlement, then
a holder who copies the wallet file and spends the same coin twice, and is
named by the bank.

Only orchestration lives here: every protocol step is the bank's, the merchant
library's or the wallet library's own code. Every expected outcome is checked;
a surprise raises :class:`DemoFailure`.

The story is told for someone new to e-cash: amounts in yuan through
:mod:`ecash.money` (never fen beside "CNY"), each protocol term explained in
plain words where it first appears, and the components' log lines kept out
of the story (the story itself says what they would).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .bank.api import create_app as bank_app
from .bank.client import BankClient
from .bank.service import Bank
from .crypto.payment import Spend
from .files import private_dir, write_private
from .merchant import Terminal, init_terminal
from .merchant.http import create_app as terminal_app
from .merchant.requests import description_of
from .money import format_money
from .serving.threaded import ThreadedServer
from .wallet import KDF_PROFILES, BankRefused, Payment, Wallet
from .wallet.request_source import resolve_request
from .wire import json as wj
from .wire.uri import is_payment_uri, payment_uri

PASSPHRASE = "demo passphrase, not a secret"
CURRENCY = "CNY"
FUNDS = 50_000  # credited to each holder (minor units: CNY 500.00)
Say = Callable[[str, str], None]  # (step title, detail lines)


def cny(minor: int) -> str:
    """An amount as the story tells it: ``CNY 12.50``."""
    return format_money(minor, CURRENCY)


class DemoFailure(Exception):
    """An outcome the story expected did not happen."""


def expect(ok: object, what: str) -> None:
    if not ok:
        raise DemoFailure(what)


def ecash_command() -> list[str]:
    exe = shutil.which("ecash", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-c", "from ecash.cli.main import app; app()"]


@dataclass
class Shop:
    merchant_id: str
    account_id: str
    terminal: Terminal
    url: str


@dataclass
class Holder:
    name: str
    account_id: str
    credential: str
    path: Path
    wallet: Wallet | None = None


@dataclass
class Story:
    dir: Path
    say: Say
    stack: ExitStack
    bank_url: str = ""
    operator: BankClient | None = None
    shops: list[Shop] = field(default_factory=list)
    holders: list[Holder] = field(default_factory=list)
    spends: list[Spend] = field(default_factory=list)  # every transcript paid, in order

    @property
    def op(self) -> BankClient:
        assert self.operator is not None
        return self.operator

    # --- 1 -------------------------------------------------------------------
    def start_bank(self) -> None:
        bank, token = Bank.init(f"sqlite:///{self.dir / 'bank.db'}", self.dir / "bank-keys")
        self.stack.callback(bank.engine.dispose)
        self.bank_url = self.serve(bank_app(bank))
        self.operator = self.stack.enter_context(BankClient(self.bank_url, token))
        ks = self.op.keyset()
        expect(ks.policy.currency == CURRENCY, f"the bank counts in {ks.policy.currency}")
        self.say("1. The bank", f"serving at {self.bank_url}\ncoins (pieces of cash the bank"
                 f" signs, each of a fixed value) in {len(ks.keys)} values, from"
                 f" {cny(ks.keys[0].value)} to {cny(ks.keys[-1].value)}\na shop has"
                 f" {ks.policy.deposit_window_s // 86_400} days to deposit the coins it is"
                 " paid (the deposit window)")

    def serve(self, app) -> str:
        server = ThreadedServer(app)
        url = server.start()
        self.stack.callback(server.stop)
        return url

    # --- 2 -------------------------------------------------------------------
    def open_accounts(self) -> list[str]:
        lines = []
        for name in ("Alice", "Bob"):
            account_id, credential = self.op.open_account(name)
            balance = self.op.credit(account_id, FUNDS, "demo deposit")
            expect(balance == FUNDS, f"{name}'s account holds {balance}, not {FUNDS}")
            self.holders.append(Holder(name, account_id, credential, self.dir / f"{name}.db"))
            lines.append(f"{name}: account {account_id}, balance {cny(balance)}")
        creds = []
        for mid in ("bakery", "bookshop"):
            account_id, _ = self.op.open_account(f"the {mid}")
            creds.append(self.op.register_merchant(account_id, mid))
            self.shops.append(Shop(mid, account_id, None, ""))  # type: ignore[arg-type]
            lines.append(f"shop {mid}: account {account_id}")
        self.say("2. Accounts", "\n".join(lines))
        return creds

    # --- 3 -------------------------------------------------------------------
    def set_up_terminals(self, creds: list[str]) -> None:
        master = self.op.keyset().master_public_key
        lines = []
        for shop, cred in zip(self.shops, creds, strict=True):
            t = init_terminal(self.dir / f"{shop.merchant_id}.db", self.bank_url, cred,
                              master_public_key=master, name=shop.merchant_id)
            self.stack.callback(t.close)
            expect(t.merchant_id == shop.merchant_id, f"terminal is {t.merchant_id}")
            shop.terminal, shop.url = t, self.serve(terminal_app(t))
            lines.append(f"{shop.merchant_id}: till at {shop.url}")
        self.say("3. The shops' tills", "\n".join(lines) + "\neach till signs its payment"
                 " requests and receipts with a key the bank certified")

    # --- 4 -------------------------------------------------------------------
    def set_up_wallets(self) -> None:
        lines = []
        for h, amount in zip(self.holders, (8_000, 6_000), strict=True):
            w, _phrase = Wallet.create(h.path, PASSPHRASE, kdf=KDF_PROFILES["interactive"])
            h.wallet = w
            w.register(self.bank_url, h.account_id, h.credential)
            out = w.load(amount)
            bal = w.balance()
            expect(out["state"] == "done" and bal["spendable"] == amount,
                   f"{h.name}'s load of {amount}: {out}, balance {bal['spendable']}")
            left = self.op.operator_account(h.account_id)["balance"]
            expect(left == FUNDS - amount, f"{h.name}'s account holds {left}")
            coins = sum(d["count"] for d in bal["denominations"])
            lines.append(f"{h.name}: loaded {cny(amount)} as {coins} coins; account now"
                         f" {cny(left)}; identity I = {w.I.hex()[:16]}...")
        self.say("4. Wallets", "\n".join(lines) + "\nthe bank signed the coins without"
                 " seeing them (blind signatures): it cannot tell which coin is whose;\nthe"
                 " identity I stays hidden in every coin, and only a coin spent twice"
                 " reveals it")

    # --- 5, 7 ----------------------------------------------------------------
    def pay(self, wallet: Wallet, shop: Shop, amount: int, what: str | None = None) -> Payment:
        """Pay ``amount`` at ``shop``'s till; with ``what``, as a phone does: the
        till's QR code holds an ``ecash:`` link, the wallet fetches the signed
        request (and the signed description) from the till and checks both."""
        t = shop.terminal
        envelope = t.create_request(amount, pos_base=shop.url, description=what)
        if what is not None:
            record = t.store.request(envelope.request.request_id)
            expect(record is not None, "the till did not keep its request")
            link = payment_uri(envelope, description_of(t, record))
            expect(link is not None and is_payment_uri(link), f"no link: {link}")
            resolved = resolve_request(link or "")
            expect(resolved.envelope == envelope and resolved.description == what,
                   f"the link {link} led to another request or description")
        p = wallet.pay(envelope, description=what)
        expect(p.status == "confirmed" and p.receipt and p.receipt["amount"] == amount,
               f"payment of {amount} to {shop.merchant_id}: {p.status} {p.error}")
        self.spends.extend(p.spends)
        return p

    def honest_payments(self) -> None:
        lines = []
        for h, shop, amount, what in ((self.holders[0], self.shops[0], 1_250, "2 croissants"),
                                      (self.holders[1], self.shops[1], 730, "a notebook"),
                                      (self.holders[0], self.shops[1], 99, "a bookmark")):
            assert h.wallet is not None
            p = self.pay(h.wallet, shop, amount, what)
            lines.append(f"{h.name} pays {cny(amount)} to {shop.merchant_id} for {what!r}:"
                         f" {len(p.spends)} coins, the till's signed receipt checked")
        lines.append("each wallet read the till's QR code (a payment link), fetched the"
                     " request the till signed, and showed what is bought before paying")
        self.say("5. Offline payments", "\n".join(lines)
                 + "\nthe tills did not ask the bank: each payment is below the floor limit"
                 " (the amount under which a till accepts coins on its own)")

    # --- 6, 8 ----------------------------------------------------------------
    def settle(self, title: str) -> dict[str, dict]:
        results, lines = {}, []
        for shop in self.shops:
            r = shop.terminal.deposit()
            expect(r.error is None and r.refused == 0, f"{shop.merchant_id}'s deposit: {r}")
            results[shop.merchant_id] = r
            balance = self.op.operator_account(shop.account_id)["balance"]
            lines.append(f"{shop.merchant_id}: {r.sent} coin(s) deposited, {r.accepted}"
                         f" accepted (+{cny(r.credited)}); account {cny(balance)}")
            if r.double_spent:
                lines.append(f"  {r.double_spent} coin(s) spent twice:"
                             f" {cny(r.compensated)} made good by the bank")
        if title.startswith("6."):
            lines.append("each coin goes to the bank with its spend transcript (the signed"
                         " record of that payment)")
        self.say(title, "\n".join(lines))
        return results

    def check_balances(self) -> None:
        for shop in self.shops:
            report = shop.terminal.report()
            balance = self.op.operator_account(shop.account_id)["balance"]
            sales = sum(self.value_of(s) for s in self.spends
                        if s.request.merchant_id == shop.merchant_id)
            expect(balance == sales, f"{shop.merchant_id} holds {balance}, sold {sales}"
                   f" ({report})")

    def value_of(self, spend: Spend) -> int:
        return self.op.keyset().key(spend.coin.key_id).value

    def cheat(self) -> tuple[Holder, list[bytes]]:
        bob = self.holders[1]
        assert bob.wallet is not None
        bob.wallet.close()
        copy = bob.path.with_name("Bob-copy.db")
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{bob.path}{suffix}")
            if src.exists():
                shutil.copy(src, f"{copy}{suffix}")
        original = Wallet.open(bob.path, PASSPHRASE)
        clone = Wallet.open(copy, PASSPHRASE)
        bob.wallet = original
        self.stack.callback(clone.close)
        amount = original.balance()["denominations"][-1]["value"]  # one coin's value
        p1 = self.pay(original, self.shops[0], amount)
        p2 = self.pay(clone, self.shops[1], amount)
        twice = sorted({s.coin.A for s in p1.spends} & {s.coin.A for s in p2.spends})
        expect(twice, "the two copies paid with different coins")
        self.say("7. Bob cheats", f"copies his wallet file {bob.path.name} to {copy.name}\n"
                 f"pays {cny(amount)} to bakery from the original\npays {cny(amount)} to"
                 f" bookshop from the copy\nboth tills accept offline: {len(twice)} coin(s)"
                 " spent twice (a double spend)")
        return bob, twice

    def expose(self, bob: Holder, twice: list[bytes], out: Path) -> None:
        assert bob.wallet is not None
        identity = bob.wallet.I.hex()
        cases = self.op.fraud_cases()
        expect(len(cases) == len(twice), f"{len(cases)} fraud cases, expected {len(twice)}")
        for c in cases:
            expect(c["account_id"] == bob.account_id and c["identity"] == identity,
                   f"fraud case {c['case']} names {c['account_id']}, not Bob")
        case = self.op.fraud_case(cases[0]["case"])
        paid = {wj.dumps(wj.spend_to_json(s)) for s in self.spends}
        expect({wj.dumps(case["spend1"]), wj.dumps(case["spend2"])} <= paid,
               "the fraud case's transcripts are not the two payments")
        ds = out / "double-spend"
        private_dir(ds)
        write_private(ds / "key.json", wj.dumps(case["key"]) + "\n")
        for name in ("spend1", "spend2"):
            write_private(ds / f"{name}.json", wj.dumps(case[name]) + "\n")
        write_private(ds / "identity.txt", identity + "\n")
        run = subprocess.run([*ecash_command(), "verify", "double-spend", "--key",
                              str(ds / "key.json"), str(ds / "spend1.json"),
                              str(ds / "spend2.json"), "--identity", identity],
                             capture_output=True, text=True, timeout=60)
        expect(run.returncode == 0 and run.stdout.strip() == identity,
               f"ecash verify double-spend: exit {run.returncode}: {run.stdout}{run.stderr}")
        audit = self.op.audit()
        expect(audit["ok"], f"audit: {audit['problems']}")
        self.check_balances()
        status = self.op.operator_account(bob.account_id)["status"]
        expect(status == "frozen", f"Bob's account is {status}, not frozen")
        self.say("9. The bank names the cheater",
                 f"fraud case {case['case']}: the two spend transcripts of coin"
                 f" {case['coin_id'][:16]}... ({cny(case['value'])}) reveal identity I ="
                 f" {identity[:16]}..., registered to account {case['account_id']} (Bob)\n"
                 f"{cny(case['from_balance'])} taken from Bob's balance; his account is"
                 " frozen\nanyone can check the proof: `ecash verify double-spend` names"
                 f" I = {identity[:16]}... too\nbookshop made good; the bank's books"
                 f" balance (coins still out: {cny(audit['figures'].get('liability', 0))})")

    # --- 10 ------------------------------------------------------------------
    def frozen_wallet(self, bob: Holder) -> None:
        """Bob's wallet asks for more cash: the bank says no, with the case."""
        assert bob.wallet is not None
        try:
            bob.wallet.load(100)
        except BankRefused as exc:
            expect(exc.code == "account_frozen" and exc.extra.get("case") is not None,
                   f"Bob's load was refused with {exc.code} {exc.extra}")
            self.say("10. Bob's wallet", f"asks to load {cny(100)}; the wallet says:\n{exc}")
            return
        raise DemoFailure("the bank let a frozen account withdraw")

    # --- files ---------------------------------------------------------------
    def write(self, out: Path) -> None:
        ks = self.op.keyset()
        used = {s.coin.key_id for s in self.spends}
        keys = [wj.key_to_json(k) for k in ks.keys if k.key_id in used]
        write_private(out / "keys.json", wj.dumps(keys) + "\n")
        spends_dir = out / "spends"
        private_dir(spends_dir)
        for i, s in enumerate(self.spends, 1):
            write_private(spends_dir / f"{i:03d}.json", wj.dumps(wj.spend_to_json(s)) + "\n")
        self.say("Files", f"{out}: keys.json (the {len(keys)} coin keys used), spends/"
                 f" ({len(self.spends)} spend transcripts), double-spend/ (the proof)")


def run(workdir: Path, say: Say, out: Path | None = None) -> dict:
    """Tell the whole story in ``workdir``; write the files to ``out`` (or
    ``workdir/out``). Raises :class:`DemoFailure` on any surprise."""
    out = out or workdir / "out"
    private_dir(out)
    with ExitStack() as stack:
        stack.enter_context(_quiet_logs())
        story = Story(workdir, say, stack)
        story.start_bank()
        story.set_up_terminals(story.open_accounts())
        story.set_up_wallets()
        stack.callback(lambda: [h.wallet.close() for h in story.holders if h.wallet])
        story.honest_payments()
        first = story.settle("6. Settlement")
        expect(all(r.accepted == r.sent and r.double_spent == 0 for r in first.values()),
               "an honest deposit was not accepted")
        story.check_balances()
        bob, twice = story.cheat()
        second = story.settle("8. Settlement again")
        expect(second["bakery"].accepted == second["bakery"].sent,
               "the bakery's deposit of the first spend was not accepted")
        cheat = second["bookshop"]
        expect(cheat.double_spent == len(twice) and cheat.compensated == sum(
            story.value_of(s) for s in story.spends[-cheat.sent:]),
               "the bookshop's deposit was not judged a double spend and compensated")
        expect(sum(r.sent for r in (*first.values(), *second.values())) == len(story.spends),
               "the terminals deposited other transcripts than the wallets paid")
        story.expose(bob, twice, out)
        story.frozen_wallet(bob)
        story.write(out)
        return {"out": str(out), "transcripts": len(story.spends),
                "fraud_cases": len(twice), "bank": story.bank_url}


@contextmanager
def _quiet_logs() -> Iterator[list[logging.LogRecord]]:
    """Keep the bank's and the tills' log lines (such as the bank's warning of a
    double spend) out of the story, which tells the same in words: collected,
    not printed."""
    kept: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            kept.append(record)

    handler, logger = Keep(), logging.getLogger("ecash")
    before = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield kept
    finally:
        logger.removeHandler(handler)
        logger.propagate = before


@contextmanager
def workdir(path: Path | None) -> Iterator[Path]:
    if path is not None:
        private_dir(path)
        yield path
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ecash-demo-") as tmp:
        yield Path(tmp)
