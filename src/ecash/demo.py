"""The story told by ``ecash demo``: a real bank, two terminals and two wallets
on 127.0.0.1 (SQLite files in one directory); honest payments, settlement, then
a holder who copies the wallet file and spends the same coin twice, and is
named by the bank.

Only orchestration lives here: every protocol step is the bank's, the merchant
library's or the wallet library's own code. Every expected outcome is checked;
a surprise raises :class:`DemoFailure`.
"""

from __future__ import annotations

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
from .serving.threaded import ThreadedServer
from .wallet import KDF_PROFILES, Payment, Wallet
from .wire import json as wj

PASSPHRASE = "demo passphrase, not a secret"
FUNDS = 50_000  # credited to each holder (minor units)
Say = Callable[[str, str], None]  # (step title, detail lines)


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
        self.say("1. The bank", f"serving at {self.bank_url}, {len(ks.keys)} denominations"
                 f" {ks.keys[0].value}..{ks.keys[-1].value} {ks.policy.currency}, deposit"
                 f" window {ks.policy.deposit_window_s // 86_400} days")

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
            lines.append(f"{name}: account {account_id}, balance {balance}")
        creds = []
        for mid in ("bakery", "bookshop"):
            account_id, _ = self.op.open_account(f"the {mid}")
            creds.append(self.op.register_merchant(account_id, mid))
            self.shops.append(Shop(mid, account_id, None, ""))  # type: ignore[arg-type]
            lines.append(f"merchant {mid}: account {account_id}")
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
            lines.append(f"{shop.merchant_id}: certified key, point of sale at {shop.url}")
        self.say("3. Terminals", "\n".join(lines))

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
            lines.append(f"{h.name}: I = {w.I.hex()[:16]}..., loaded {amount}"
                         f" as {coins} coins; account now {left}")
        self.say("4. Wallets", "\n".join(lines))

    # --- 5, 7 ----------------------------------------------------------------
    def pay(self, wallet: Wallet, shop: Shop, amount: int) -> Payment:
        envelope = shop.terminal.create_request(amount, pos_base=shop.url)
        p = wallet.pay(envelope)
        expect(p.status == "confirmed" and p.receipt and p.receipt["amount"] == amount,
               f"payment of {amount} to {shop.merchant_id}: {p.status} {p.error}")
        self.spends.extend(p.spends)
        return p

    def honest_payments(self) -> None:
        lines = []
        for h, shop, amount in ((self.holders[0], self.shops[0], 1_250),
                                (self.holders[1], self.shops[1], 730),
                                (self.holders[0], self.shops[1], 99)):
            assert h.wallet is not None
            p = self.pay(h.wallet, shop, amount)
            lines.append(f"{h.name} pays {amount} to {shop.merchant_id}: {len(p.spends)}"
                         " coins, receipt checked")
        self.say("5. Offline payments", "\n".join(lines)
                 + "\n(the terminals did not call the bank: below the floor limit)")

    # --- 6, 8 ----------------------------------------------------------------
    def settle(self, title: str) -> dict[str, dict]:
        results, lines = {}, []
        for shop in self.shops:
            r = shop.terminal.deposit()
            expect(r.error is None and r.refused == 0, f"{shop.merchant_id}'s deposit: {r}")
            results[shop.merchant_id] = r
            balance = self.op.operator_account(shop.account_id)["balance"]
            lines.append(f"{shop.merchant_id}: {r.sent} transcripts, {r.accepted} accepted"
                         f" (+{r.credited}), {r.double_spent} double-spent"
                         f" (+{r.compensated} compensated); account {balance}")
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
        self.say("7. Bob cheats", f"copies {bob.path.name} to {copy.name}; pays {amount} to"
                 f" bakery from the original and {amount} to bookshop from the copy:"
                 f" both terminals accept offline ({len(twice)} coin(s) spent twice)")
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
        self.say("9. The bank names the cheater",
                 f"fraud case {case['case']}: account {case['account_id']} (Bob), coin"
                 f" {case['coin_id'][:16]}... value {case['value']}, {case['from_balance']}"
                 f" taken from Bob's balance\n`ecash verify double-spend` confirms: I ="
                 f" {identity[:16]}...\nbookshop compensated; audit balanced"
                 f" (liability {audit['figures'].get('liability')})")

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
        self.say("Files", f"{out}: keys.json ({len(keys)} keys), spends/ ({len(self.spends)}"
                 " transcripts), double-spend/")


def run(workdir: Path, say: Say, out: Path | None = None) -> dict:
    """Tell the whole story in ``workdir``; write the files to ``out`` (or
    ``workdir/out``). Raises :class:`DemoFailure` on any surprise."""
    out = out or workdir / "out"
    private_dir(out)
    with ExitStack() as stack:
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
        story.write(out)
        return {"out": str(out), "transcripts": len(story.spends),
                "fraud_cases": len(twice), "bank": story.bank_url}


@contextmanager
def workdir(path: Path | None) -> Iterator[Path]:
    if path is not None:
        private_dir(path)
        yield path
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ecash-demo-") as tmp:
        yield Path(tmp)
