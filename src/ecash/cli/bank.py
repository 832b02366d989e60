"""``ecash bank``: set up, serve and operate a bank (directly on its database)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from .common import console, emit, fail

app = typer.Typer(help="Run and operate the bank.", no_args_is_help=True)
keys_app = typer.Typer(help="Denomination key generations.", no_args_is_help=True)
fraud_app = typer.Typer(help="Double-spending cases.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(fraud_app, name="fraud")

Db = Annotated[str, typer.Option("--db", envvar="ECASH_BANK_DB",
                                 help="Database URL: sqlite:///PATH or postgresql://...")]
Keys = Annotated[Path, typer.Option("--keys", envvar="ECASH_BANK_KEYS",
                                    help="Directory of the bank's secret key files.")]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _open(db: str, keys: Path):
    from ..bank.errors import BankError
    from ..bank.service import Bank

    try:
        return Bank.open(db, keys)
    except (OSError, BankError) as exc:
        fail(f"cannot open the bank: {exc}")


def _run(fn, *args, **kw):
    from ..bank.errors import BankError
    from ..crypto.errors import EcashError

    try:
        return fn(*args, **kw)
    except BankError as exc:
        fail(f"{exc.code}: {exc.detail}")
    except EcashError as exc:
        fail(f"{exc.code}: {exc}")


@app.command()
def init(db: Db, keys: Keys, currency: str = "CNY", as_json: Json = False) -> None:
    """Create the master key, first key generation, signed policy and an operator credential."""
    from ..bank.config import BankConfig
    from ..bank.service import Bank

    try:
        bank, token = _run(Bank.init, db, keys, BankConfig(currency=currency))
    except FileExistsError as exc:
        fail(str(exc))
    from ..wire.json import keyset_fingerprint

    fp = keyset_fingerprint(bank.keyset())
    data = {"master_public_key": bank.keyring.master.public_key.hex(),
            "keyset_fingerprint": fp, "operator_credential": token}
    emit(data, as_json, f"Bank initialised.\n  master public key  {data['master_public_key']}\n"
         f"  keyset fingerprint {fp}\n  operator credential [bold]{token}[/] (shown once)")


@app.command()
def serve(db: Db, keys: Keys, host: str = "127.0.0.1", port: int = 8400,
          workers: Annotated[int, typer.Option(help="Worker processes (one per core).")] = 1,
          tls_cert: Annotated[str | None, typer.Option("--tls-cert")] = None,
          tls_key: Annotated[str | None, typer.Option("--tls-key")] = None) -> None:
    """Serve the HTTP API (run it behind TLS in production)."""
    from ..bank.server import serve as run

    _open(db, keys)  # fail early on a bad database or key directory
    run(db, keys, host=host, port=port, workers=workers, tls_cert=tls_cert, tls_key=tls_key)


@app.command("open-account")
def open_account(holder: Annotated[str, typer.Option("--holder")], db: Db, keys: Keys,
                 as_json: Json = False) -> None:
    """Open a holder account; prints its id and credential (shown once)."""
    account_id, token = _run(_open(db, keys).open_account, holder)
    emit({"account_id": account_id, "credential": token}, as_json,
         f"account {account_id}\ncredential [bold]{token}[/] (shown once)")


@app.command()
def credit(account: str, amount: int, db: Db, keys: Keys,
           reference: Annotated[str | None, typer.Option(
               help="Idempotency reference (a retry with it credits once).")] = None,
           as_json: Json = False) -> None:
    """Credit money paid in to ACCOUNT (minor units)."""
    ref = reference or secrets.token_hex(8)
    balance = _run(_open(db, keys).credit, account, amount, ref)
    emit({"account_id": account, "balance": balance, "reference": ref}, as_json,
         f"{account}: balance {balance} (reference {ref})")


@app.command("register-merchant")
def register_merchant(account: str, merchant_id: Annotated[str, typer.Option("--merchant-id")],
                      db: Db, keys: Keys, as_json: Json = False) -> None:
    """Make ACCOUNT a merchant; prints the merchant credential (shown once)."""
    token = _run(_open(db, keys).register_merchant, account, merchant_id)
    emit({"account_id": account, "merchant_id": merchant_id, "credential": token}, as_json,
         f"merchant {merchant_id} on {account}\ncredential [bold]{token}[/] (shown once)")


@app.command()
def freeze(account: str, db: Db, keys: Keys) -> None:
    """Freeze ACCOUNT (no withdrawals)."""
    _run(_open(db, keys).set_status, account, "frozen")
    console.print(f"{account} frozen")


@app.command()
def unfreeze(account: str, db: Db, keys: Keys) -> None:
    _run(_open(db, keys).set_status, account, "active")
    console.print(f"{account} active")


@app.command()
def audit(db: Db, keys: Keys, as_json: Json = False) -> None:
    """Recompute every balance and the e-cash liability; exit 1 on any mismatch."""
    rep = _open(db, keys).audit()
    if as_json:
        emit({"ok": rep.ok, "problems": rep.problems, "figures": rep.figures}, True)
    else:
        t = Table(title="Audit")
        t.add_column("figure")
        t.add_column("value", justify="right")
        for k, v in rep.figures.items():
            t.add_row(k, str(v))
        console.print(t)
        for p in rep.problems:
            console.print(f"[bold red]MISMATCH[/] {p}")
        console.print("[green]balanced[/]" if rep.ok else "[bold red]NOT BALANCED[/]")
    if not rep.ok:
        raise typer.Exit(1)


@app.command()
def maintenance(db: Db, keys: Keys, as_json: Json = False) -> None:
    """Book breakage of generations past deposit_end and release due payouts."""
    bank = _open(db, keys)
    closed, paid = bank.close_generations(), bank.release_payouts()
    emit({"closed_generations": closed, "payouts": paid}, as_json,
         f"closed generations: {closed or 'none'}; payouts: {paid or 'none'}")


@keys_app.command("rotate")
def rotate(db: Db, keys: Keys, as_json: Json = False) -> None:
    """Add the next generation; its withdrawal window starts where the newest ends."""
    bank = _open(db, keys)
    number = bank.add_generation()
    emit({"generation": number}, as_json, f"generation {number} added")


@keys_app.command("list")
def list_keys(db: Db, keys: Keys, as_json: Json = False) -> None:
    gens = _open(db, keys).generations_info()
    emit(gens, as_json, "\n".join(
        f"generation {g['generation']}: withdraw [{g['withdraw_start']}, {g['withdraw_end']}),"
        f" deposit until {g['deposit_end']}{' (closed)' if g['closed'] else ''}"
        for g in gens))


@fraud_app.command("list")
def fraud_list(db: Db, keys: Keys, as_json: Json = False) -> None:
    cases = _open(db, keys).fraud_list()
    if as_json:
        emit(cases, True)
        return
    t = Table(title="Fraud cases")
    for col in ("case", "account", "value", "from balance", "receivable", "alarm"):
        t.add_column(col)
    for c in cases:
        t.add_row(str(c["case"]), c["account_id"] or "UNREGISTERED", str(c["value"]),
                  str(c["from_balance"]), str(c["receivable"]), "ALARM" if c["alarm"] else "")
    console.print(t)


@fraud_app.command("show")
def fraud_show(case: int, db: Db, keys: Keys) -> None:
    """Print a case with both transcripts and the key (JSON): the proof."""
    emit(_run(_open(db, keys).fraud_case, case), True)
