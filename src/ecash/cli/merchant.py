"""``ecash merchant``: set up and run a merchant terminal.

Exit codes: 0 done; 1 a payment refused (or its request unknown); 2 the
command could not do its work (no store, bank unreachable, bad input); 3 a
payment pending: the terminal keeps it and is checking it with the bank (run
the same ``accept`` again later for the answer).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.table import Table

from .common import console, emit, err_console, read_secret

app = typer.Typer(help="Run a merchant terminal: requests, acceptance, settlement, point of sale.",
                  no_args_is_help=True)

EXIT_REFUSED = 1
EXIT_ERROR = 2
EXIT_PENDING = 3


def _default_store() -> str:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "ecash" / "merchant.db")


Store = Annotated[str, typer.Option(
    "--store", envvar="ECASH_MERCHANT_STORE", default_factory=_default_store,
    show_default="$XDG_DATA_HOME/ecash/merchant.db",
    help="The terminal store: a SQLite file path, or postgresql://... shared by the"
         " terminals of one shop.")]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
Name = Annotated[str | None, typer.Option(
    "--terminal", envvar="ECASH_TERMINAL", help="This terminal's name in the records"
    " (default: the host name).")]


def _fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    # soft_wrap: a key's fingerprint is never folded, whatever the terminal's width
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def _errors(as_json: bool = False) -> Iterator[None]:
    """Every expected failure as one clear line (or JSON), never a traceback."""
    from sqlalchemy.exc import SQLAlchemyError

    from ..bank.client import BankHTTPError, BankUnreachable
    from ..crypto.errors import EcashError
    from ..merchant.errors import MerchantError, PaymentPending, Refusal, RequestNotFound
    from ..wire.json import refusal_to_json

    try:
        yield
    except (Refusal, RequestNotFound) as exc:
        if as_json:
            signed = getattr(exc, "signed", None)
            emit({"status": "refused" if isinstance(exc, Refusal) else "not_found",
                  "code": exc.code, "detail": exc.detail,
                  **({"refusal": refusal_to_json(signed)} if signed else {})}, True)
        else:
            err_console.print(f"[bold red]refused:[/] {exc.code}: {exc.detail}", highlight=False)
        raise typer.Exit(EXIT_REFUSED) from None
    except PaymentPending as exc:
        if as_json:
            emit({"status": "pending", "request_id": exc.request_id.hex(),
                  "retry_after_s": exc.retry_after_s, "detail": exc.detail}, True)
        else:
            err_console.print(f"[bold yellow]pending:[/] {exc.detail}", highlight=False)
        raise typer.Exit(EXIT_PENDING) from None
    except MerchantError as exc:
        _fail(f"{exc.code}: {exc.detail}")
    except EcashError as exc:
        _fail(f"{exc.code}: {exc}")
    except BankUnreachable as exc:
        _fail(f"bank unreachable: {exc}")
    except BankHTTPError as exc:
        _fail(f"the bank refused: {exc}")
    except SQLAlchemyError as exc:
        _fail(f"store error: {getattr(exc, 'orig', None) or exc}")
    except (OSError, ValueError) as exc:
        _fail(str(exc))


def _open(store: str, name: str | None = None):
    from ..merchant.terminal import Terminal

    return Terminal.open(store, name=name)


def _money(amount: int, currency: str) -> str:
    from ..merchant.money import fmt

    return fmt(amount, currency)


@app.command()
def init(bank: Annotated[str, typer.Option("--bank", help="The bank's base URL.")],
         store: Store,
         credential_file: Annotated[Path | None, typer.Option(
             "--credential-file", help="File holding the merchant credential (else"
             " $ECASH_MERCHANT_CREDENTIAL, else a prompt).")] = None,
         master_key: Annotated[str | None, typer.Option(
             "--master-key", help="The bank's master public key (64 hex) to pin; without it"
             " the key of the first keyset is pinned: compare the fingerprint.")] = None,
         as_json: Json = False) -> None:
    """Create the terminal: merchant id, key pair, certificate, checked keyset."""
    from ..merchant.setup import init_terminal
    from ..wire.fingerprint import master_key_fingerprint

    pinned = None
    if master_key is not None:
        if len(master_key) != 64 or not all(c in "0123456789abcdef" for c in master_key):
            _fail("--master-key: expected 64 lowercase hex characters")
        pinned = bytes.fromhex(master_key)
    try:
        credential = read_secret("ECASH_MERCHANT_CREDENTIAL", credential_file,
                                 "Merchant credential")
    except typer.Exit:
        raise typer.Exit(EXIT_ERROR) from None
    with _errors():
        t = init_terminal(store, bank, credential, master_public_key=pinned)
        _, cert = t.current_key()
        keys = t.keys
        data = {"merchant_id": t.merchant_id, "store": store, "bank": t.bank_url,
                "terminal_public_key": cert.public_key.hex(),
                "certificate_valid_until": cert.valid_until,
                "master_public_key": t.master_public_key.hex(),
                "master_key_fingerprint": master_key_fingerprint(t.master_public_key),
                "master_key_pinned": "given" if pinned else "first use",
                "keyset_fingerprint": keys.fingerprint, "currency": keys.currency,
                "floor_limit": keys.policy.floor_limit, "deposit_window_s": keys.window_s}
        t.close()
    if as_json:
        emit(data, True)
        return
    console.print(
        f"Terminal of merchant [bold]{data['merchant_id']}[/] initialised in {store}\n"
        f"  master public key  {data['master_public_key']}"
        f" (pinned on {data['master_key_pinned']})\n"
        f"  master key fingerprint [bold]{data['master_key_fingerprint']}[/] (compare with"
        " what `ecash bank init` printed)\n"
        f"  keyset fingerprint [bold]{data['keyset_fingerprint']}[/] (compare with the bank's)\n"
        f"  terminal key       {data['terminal_public_key']}\n"
        f"  floor limit        {_money(data['floor_limit'], data['currency'])}",
        highlight=False, soft_wrap=True)


@app.command()
def sync(store: Store, as_json: Json = False) -> None:
    """Refresh keys, policy and certificate from the bank (online)."""
    with _errors(), _open(store) as t:
        data = t.sync()
    emit(data, as_json,
         f"keyset {data['keyset_fingerprint']}"
         f" ({'changed' if data['keyset_changed'] else 'unchanged'}, {data['keys']} keys);"
         f" certificate valid until {data['certificate_valid_until']}"
         f"{' (renewed)' if data['certificate_renewed'] else ''}")


@app.command()
def request(amount: Annotated[int, typer.Argument(help="Amount in minor units (fen, cents).")],
            store: Store,
            pos_url: Annotated[str | None, typer.Option(
                "--pos-url", help="Base URL of this terminal's server: wallets then POST the"
                " payment to BASE/pay/<request_id>.")] = None,
            ttl: Annotated[int | None, typer.Option(help="Seconds until it expires.")] = None,
            qr: Annotated[bool, typer.Option("--qr/--no-qr", help="Draw the QR code.")] = True,
            name: Name = None, as_json: Json = False) -> None:
    """Create a signed payment request; print its text form and QR code."""
    from ..merchant import qr as qrcode
    from ..wire import json as wj
    from ..wire.text import request_to_text

    with _errors(), _open(store, name) as t:
        env = t.create_request(amount, pos_base=pos_url, ttl_s=ttl)
        record = t.store.request(env.request.request_id)
    text = request_to_text(env)
    if as_json:
        emit({"request_id": env.request.request_id.hex(), "amount": env.request.amount,
              "currency": env.request.currency, "pos_url": env.pos_url, "text": text,
              "expires_ms": record.expires_ms, "envelope": wj.envelope_to_json(env)}, True)
        return
    if qr:
        typer.echo(qrcode.terminal(text))
    console.print(f"request {env.request.request_id.hex()} for"
                  f" [bold]{_money(amount, env.request.currency)}[/]", highlight=False)
    typer.echo(text)


def _read_payment(payment: str | None) -> str:
    if payment is None or payment == "-":
        return sys.stdin.read()
    if payment.lstrip().startswith(("ecpay1:", "{")):
        return payment
    try:
        return Path(payment).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read {payment}: {getattr(exc, 'strerror', None) or exc}")


@app.command()
def accept(store: Store,
           payment: Annotated[str | None, typer.Argument(
               help="An ecpay1: text form, a file holding it or {\"spends\": [...]} JSON,"
                    " or - (the default) for standard input.")] = None,
           as_json: Json = False) -> None:
    """Accept a payment offline (online above the floor limit); print the receipt."""
    from ..merchant.http import decode_payment
    from ..wire import json as wj
    from ..wire.errors import WireError
    from ..wire.text import payment_from_text

    raw = _read_payment(payment).strip()
    with _errors(as_json), _open(store) as t:
        def decode() -> list:
            if raw.startswith("ecpay1:"):
                return payment_from_text(raw)
            if raw.startswith("{"):
                return decode_payment(raw.encode())
            raise WireError("expected an ecpay1: text form or {\"spends\": [...]} JSON",
                            "bad_prefix")

        try:
            spends = decode()
        except WireError as exc:
            from ..merchant.errors import Refusal

            raise Refusal(exc.code, str(exc)) from None
        receipt = t.accept(spends[0].request.request_id, spends)
        currency = t.keys.currency
    emit({"status": "paid", "receipt": wj.receipt_to_json(receipt)}, as_json,
         f"[bold green]paid[/] {_money(receipt.amount, currency)}"
         f" (request {receipt.request_id.hex()})\nreceipt signature {receipt.signature.hex()}")


@app.command()
def deposit(store: Store,
            batch: Annotated[int | None, typer.Option(help="Transcripts per call.")] = None,
            as_json: Json = False) -> None:
    """Deposit pending transcripts at the bank (safe to interrupt and run again)."""
    with _errors(), _open(store) as t:
        res = t.deposit(batch=batch)
    for w in res.warnings:
        err_console.print(f"[bold red]WARNING:[/] {w}", highlight=False)
    emit(res.to_json(), as_json,
         f"sent {res.sent} transcript(s) in {res.batches} batch(es): {res.accepted} accepted"
         f" (credited {res.credited}), {res.double_spent} double-spent (compensated"
         f" {res.compensated}), {res.refused} refused")
    if res.error:
        _fail(f"deposit stopped: {res.error} (pending transcripts stay pending)")


@app.command()
def report(store: Store, as_json: Json = False) -> None:
    """The settlement report: accepted, deposited, credited, refused, double-spent..."""
    from ..merchant.page import ROWS

    with _errors(), _open(store) as t:
        rep = t.report()
    if as_json:
        emit(rep, True)
        return
    cur = rep["currency"]
    table = Table(title=f"Settlement of {rep['merchant_id']} (keyset {rep['keyset_fingerprint']})")
    table.add_column("")
    table.add_column("coins", justify="right")
    table.add_column("value", justify="right")
    for name, label in ROWS:
        table.add_row(label, str(rep[name]["count"]), _money(rep[name]["value"], cur))
    console.print(table)
    totals = Table(title="Totals")
    totals.add_column("")
    totals.add_column("value", justify="right")
    for k, v in rep["totals"].items():
        totals.add_row(k, _money(v, cur))
    console.print(totals)
    p = rep["payments"]
    console.print(f"payments: {p['paid']['count']} paid, {p['open']} open, {p['expired']}"
                  f" expired, {p['refused']['count']} refused attempt(s)", highlight=False)
    d = rep["deadlines"]
    if d["overdue"]["count"]:
        err_console.print(f"[bold red]WARNING:[/] {d['overdue']['count']} transcript(s) are past"
                          " their deposit deadline", highlight=False)
    if d["due_soon"]["count"]:
        err_console.print(f"[bold red]WARNING:[/] {d['due_soon']['count']} transcript(s) must be"
                          " deposited soon: run `ecash merchant deposit`", highlight=False)


@app.command()
def serve(store: Store,
          host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port to listen on.")] = 8480,
          public_url: Annotated[str | None, typer.Option(
              "--public-url", help="Base URL wallets reach this server at (pos_url); default"
              " the URL the point-of-sale page was opened with.")] = None,
          deposit_every: Annotated[float, typer.Option(
              help="Seconds between background deposits (0: never).")] = 60.0,
          sync_every: Annotated[float, typer.Option(
              help="Seconds between background syncs (0: never).")] = 3600.0,
          verify_workers: Annotated[int, typer.Option(
              help="Processes verifying big payments in parallel (0: in-process).")] = 0,
          remote_cashier: Annotated[bool, typer.Option(
              "--remote-cashier", help="Let other hosts than this one open the point-of-sale"
              " pages and /api (put them behind authentication!).")] = False,
          name: Name = None,
          log_level: Annotated[str, typer.Option(help="debug, info, warning...")] = "info"
          ) -> None:
    """Serve the point-of-sale page and the wallet endpoint POST /pay/<request_id>."""
    from ..merchant.serve import serve as run

    with _errors():
        t = _open(store, name)
        if verify_workers > 0:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # fresh interpreters: they must not inherit the server's signal handlers
            from ..merchant.accept import verdicts

            t.verify_pool = ProcessPoolExecutor(verify_workers,
                                                mp_context=multiprocessing.get_context("spawn"))
            t.verify_workers = verify_workers
            for f in [t.verify_pool.submit(verdicts, []) for _ in range(verify_workers)]:
                f.result()  # start the workers now, not during the first payment
        console.print(f"terminal of [bold]{t.merchant_id}[/] on http://{host}:{port}/"
                      f" (keyset {t.keys.fingerprint})", highlight=False)
        try:
            run(t, host=host, port=port, public_url=public_url, deposit_every=deposit_every,
                sync_every=sync_every, remote_cashier=remote_cashier, log_level=log_level)
        finally:
            t.close()
