"""``ecash bank``: set up, serve and operate a bank (directly on its database)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from .common import console, emit, fail

app = typer.Typer(help="Run and operate the bank.", no_args_is_help=True)
keys_app = typer.Typer(help="Denomination key generations.", no_args_is_help=True)
fraud_app = typer.Typer(help="Double-spending cases.", no_args_is_help=True)
dispute_app = typer.Typer(help="Holders' disputes (signed refusals) and the cases they open"
                          " against merchants.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(fraud_app, name="fraud")
app.add_typer(dispute_app, name="dispute")

Db = Annotated[str, typer.Option("--db", envvar="ECASH_BANK_DB",
                                 help="Database URL: sqlite:///PATH or postgresql://...")]
Keys = Annotated[Path, typer.Option("--keys", envvar="ECASH_BANK_KEYS",
                                    help="Directory of the bank's secret key files.")]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _open(db: str, keys):  # type: ignore[no-untyped-def]
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
    from ..wire.fingerprint import master_key_fingerprint
    from ..wire.json import keyset_fingerprint

    fp = keyset_fingerprint(bank.keyset())
    master = bank.master_public_key
    data = {"master_public_key": master.hex(),
            "master_key_fingerprint": master_key_fingerprint(master),
            "keyset_fingerprint": fp, "operator_credential": token}
    if as_json:
        emit(data, True)
        return
    # soft_wrap: a key or fingerprint is never folded, whatever the terminal's width
    console.print(f"Bank initialised.\n  master public key      {data['master_public_key']}"
                  f"\n  master key fingerprint {data['master_key_fingerprint']}"
                  f"\n  keyset fingerprint     {fp}"
                  f"\n  operator credential    [bold]{token}[/] (shown once)",
                  highlight=False, soft_wrap=True)


@app.command()
def signer(keys: Keys, socket: Annotated[Path, typer.Option(
               "--socket", envvar="ECASH_BANK_SIGNER", help="UNIX socket to listen on.")],
           window: Annotated[int, typer.Option(
               help="Seconds a session's commitments may be answered (at least the bank's"
                    " session lifetime).")] = 3600,
           group_shared: Annotated[bool, typer.Option(
               "--group-shared/--private",
               help="Socket mode 0660 (the workers' user in the group) or 0600.")] = True,
           ) -> None:
    """Hold the bank's secret keys and answer the HTTP workers over a UNIX socket.

    Run it as the one user that may read the key directory; `ecash bank serve
    --signer` connects to the socket and never reads a key."""
    import signal

    from ..bank.signer_local import LocalSigner
    from ..bank.signer_server import serve_signer

    try:
        local = LocalSigner(keys, window_s=window)
    except (OSError, ValueError) as exc:
        fail(f"cannot open the key directory: {exc}")

    def stop(*_: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        serve_signer(local, socket, mode=0o660 if group_shared else 0o600,
                     ready=lambda: console.print(f"signer listening on {socket}",
                                                 highlight=False, soft_wrap=True))
    except FileExistsError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        pass


Signer = Annotated[Path, typer.Option("--signer", envvar="ECASH_BANK_SIGNER",
                                      help="UNIX socket of `ecash bank signer`.")]


@app.command()
def serve(db: Db, signer: Signer, host: str = "127.0.0.1", port: int = 8400,
          workers: Annotated[int, typer.Option(help="Worker processes (one per core).")] = 1,
          tls_cert: Annotated[str | None, typer.Option("--tls-cert")] = None,
          tls_key: Annotated[str | None, typer.Option("--tls-key")] = None,
          metrics_listen: Annotated[str | None, typer.Option(
              "--metrics-listen", metavar="HOST:PORT",
              help="Also serve /metrics here without a credential (keep it on the"
                   " operator's network); on the API it needs an operator credential.")
              ] = None,
          rate_limit_storage: Annotated[str | None, typer.Option(
              "--rate-limit-storage", envvar="ECASH_RATE_LIMIT_STORAGE", metavar="URI",
              help="Where the workers share their rate limits: redis://HOST:PORT"
                   " (needed with more than one worker; default memory://).")
              ] = None) -> None:
    """Serve the HTTP API (run it behind TLS in production); every use of a
    secret key is a question to the signer (`ecash bank signer`)."""
    from ..bank.server import serve as run
    from ..bank.signer import SignerClient
    from ..serving.threaded import check_port_free, parse_listen

    if metrics_listen:
        try:
            parse_listen(metrics_listen)
        except ValueError as exc:
            fail(f"--metrics-listen: {exc}")
    bank = _open(db, SignerClient(signer))  # fail early on a bad database
    _check_signer(bank)
    check_port_free(host, port)  # before announcing it
    _announce(bank, host, port, tls=bool(tls_cert))
    run(db, str(signer), host=host, port=port, workers=workers, tls_cert=tls_cert, tls_key=tls_key,
        metrics_listen=metrics_listen, rate_limit_storage=rate_limit_storage)


def _check_signer(bank) -> None:  # type: ignore[no-untyped-def]
    """Refuse a signer holding another bank's master key; a signer not yet
    up is only reported (the workers connect on their first withdrawal)."""
    from ..bank.signer import SignerUnavailable

    try:
        master = bank.signer.public_info().master_public_key
    except SignerUnavailable as exc:
        console.print(f"[yellow]warning[/]: {escape(exc.detail)}", soft_wrap=True)
        return
    if master != bank.master_public_key:
        fail("the signer holds another bank's master key")


def _announce(bank, host: str, port: int, *, tls: bool) -> None:  # type: ignore[no-untyped-def]
    """The URL and the master key's fingerprint, for people to compare with
    what wallets and terminals show when they pin this bank (printed before
    the server's own log, and flushed: stdout may be a pipe)."""
    from ..wire.fingerprint import master_key_fingerprint

    where = f"[{host}]" if ":" in host else host
    fp = master_key_fingerprint(bank.master_public_key)
    console.print(f"Serving the bank at {'https' if tls else 'http'}://{where}:{port}\n"
                  f"  master key fingerprint {fp}", highlight=False, soft_wrap=True)
    console.file.flush()
    bank.engine.dispose()


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
    """Double-spend cases; a case a holder's dispute voided says so (``voided_by``)."""
    bank = _open(db, keys)
    cases = bank.fraud_overview()
    if as_json:
        emit(cases, True)
        return
    money = _money(bank)
    t = Table(title="Fraud cases")
    for col in ("case", "account", "value", "from balance", "receivable", "alarm", "voided"):
        t.add_column(col)
    for c in cases:
        named = c["account_id"] or ("UNREGISTERED" if c["alarm"] else "nobody (refused transcript)")
        t.add_row(str(c["case"]), named, money(c["value"]), money(c["from_balance"]),
                  money(c["receivable"]), "ALARM" if c["alarm"] else "",
                  f"by dispute {c['voided_by']}" if c["voided_by"] is not None else "")
    console.print(t)


@fraud_app.command("show")
def fraud_show(case: int, db: Db, keys: Keys) -> None:
    """Print a case with both transcripts and the key (JSON): the proof."""
    emit(_run(_open(db, keys).fraud_case, case), True)


def _money(bank):  # type: ignore[no-untyped-def]
    """Minor units as a person reads them, in the bank's currency."""
    from ..merchant.money import fmt

    return lambda amount: fmt(amount, bank.config.currency)


@dispute_app.command("list")
def dispute_list(db: Db, keys: Keys, as_json: Json = False) -> None:
    """Every dispute, upheld or rejected, with the merchant case an upheld one opened.

    A merchant case is shown with its dispute (``dispute show``): the refusal,
    the refused transcripts the merchant deposited, their value, what was taken
    back from the merchant and what was returned to the holder."""
    rows = _open(db, keys).dispute_list()
    if as_json:
        emit(rows, True)
        return
    t = Table(title="Disputes")
    for col in ("dispute", "holder", "merchant", "status", "merchant case", "reason"):
        t.add_column(col)
    for d in rows:
        t.add_row(str(d["dispute"]), d["account_id"], escape(d["merchant_id"] or "?"),
                  d["status"], "" if d["case"] is None else str(d["case"]), escape(d["reason"]))
    console.print(t)


@dispute_app.command("show")
def dispute_show(dispute: int, db: Db, keys: Keys, as_json: Json = False) -> None:
    """A dispute with its evidence and, if upheld, the case against the merchant."""
    bank = _open(db, keys)
    d = _run(bank.dispute_info, dispute)
    if as_json:
        emit(d, True)
        return
    money = _money(bank)
    lines = [f"dispute {d['dispute']}: {d['status']} ({d['reason']})",
             f"  holder {d['account_id']}, merchant {d['merchant_id'] or '?'}",
             f"  request {d['request_id']}, payment digest {d['payment_digest']}",
             f"  refusal code {d['evidence']['refusal']['code']}"]
    if d["voided_fraud_cases"]:
        lines.append("  voided fraud cases: " + ", ".join(map(str, d["voided_fraud_cases"])))
    c = d["merchant_case"]
    if c is not None:
        lines.append(f"merchant case {c['case']}: value {money(c['value'])}, taken from the"
                     f" merchant {money(c['from_balance'])}, returned to holders"
                     f" {money(c['refunded'])}")
        lines += [f"  deposited coin {x['coin_id']} ({money(x['value'])})"
                  for x in c["deposited"]]
    console.print("\n".join(lines), highlight=False, markup=False, soft_wrap=True)
