"""``ecash merchant``: set up and run a merchant terminal (a shop's till).

Amounts a cashier types or reads are in the currency's major unit (``ecash
merchant request 20.48`` is CNY 20.48) through :mod:`ecash.money`; ``--json``
keeps minor units and says so. Failures follow :mod:`ecash.cli.contract`:
one line, never a traceback; exit 0 done; 1 refused (a payment refused, a
request unknown, the bank said no); 2 usage or unreadable input (a bad
amount, a missing file, a store that holds no terminal); 3 pending or
unreachable (a payment the terminal is still checking with the bank, the
bank or the database or the public URL not answering: try again later).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.markup import escape
from rich.table import Table

from ..money import MoneyError, format_money, parse_money
from .common import read_secret
from .contract import (
    EXIT_PENDING,
    EXIT_REFUSED,
    EXIT_USAGE,
    console,
    emit,
    err_console,
    fail,
    with_amount_unit,
)

if TYPE_CHECKING:
    from ..merchant.terminal import Terminal

app = typer.Typer(help="Run a merchant terminal (a shop's till): payment requests, accepting"
                       " payments, depositing them at the bank, the point-of-sale page.",
                  no_args_is_help=True)

STORE_ENV = "ECASH_MERCHANT_STORE"
TERMINAL_ENV = "ECASH_TERMINAL"
CREDENTIAL_ENV = "ECASH_MERCHANT_CREDENTIAL"
PUBLIC_URL_ENV = "ECASH_MERCHANT_PUBLIC_URL"

# MerchantError codes that mean "what was given cannot be used" (exit 2)
USAGE_CODES = frozenset({"bad_amount", "bad_ttl", "bad_description", "not_initialised",
                         "already_initialised", "bad_store", "bad_url"})
UNREACHABLE_CODES = frozenset({"bank_unreachable", "public_url_unreachable"})


def _default_store() -> str:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "ecash" / "merchant.db")


Store = Annotated[str, typer.Option(
    "--store", envvar=STORE_ENV, show_envvar=True, default_factory=_default_store,
    show_default="$XDG_DATA_HOME/ecash/merchant.db",
    help="The terminal store: a SQLite file path, or postgresql://... shared by the"
         " terminals of one shop.")]
Json = Annotated[bool, typer.Option(
    "--json", help="Print one JSON object (amounts in minor units) instead of text.")]
Name = Annotated[str | None, typer.Option(
    "--terminal", envvar=TERMINAL_ENV, show_envvar=True, show_default="the host name",
    help="This terminal's name in the records.")]


def _exit_of(code: str) -> int:
    if code in UNREACHABLE_CODES:
        return EXIT_PENDING
    return EXIT_USAGE if code in USAGE_CODES else EXIT_REFUSED


@contextmanager
def _errors(as_json: bool = False) -> Iterator[None]:
    """Every expected failure as one line (or one JSON object), never a traceback."""
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError

    from ..bank.client import BankHTTPError, BankUnreachable
    from ..crypto.errors import EcashError
    from ..merchant.errors import MerchantError, PaymentPending, Refusal, RequestNotFound
    from ..wire.json import refusal_to_json

    try:
        yield
    except (Refusal, RequestNotFound) as exc:
        signed = getattr(exc, "signed", None)
        extra = {"refusal": refusal_to_json(signed)} if signed else {}
        fail(exc.code, f"refused ({exc.code}): {exc.detail}", as_json, EXIT_REFUSED, **extra)
    except PaymentPending as exc:
        fail("payment_pending", f"{exc.detail} (run the same `ecash merchant accept` again in"
             f" about {exc.retry_after_s} s for the answer)", as_json, EXIT_PENDING,
             request_id=exc.request_id.hex(), retry_after_s=exc.retry_after_s)
    except MerchantError as exc:
        hint = "; try again when the bank answers" if exc.code == "bank_unreachable" else ""
        fail(exc.code, exc.detail + hint, as_json, _exit_of(exc.code))
    except MoneyError as exc:
        fail("bad_amount", str(exc), as_json, EXIT_USAGE)
    except EcashError as exc:
        fail(exc.code, str(exc), as_json, EXIT_USAGE)
    except BankUnreachable as exc:
        fail("bank_unreachable", f"the bank does not answer ({exc}); try again when it is"
             " online", as_json, EXIT_PENDING)
    except BankHTTPError as exc:
        fail(exc.code, f"the bank refused: {exc}", as_json, EXIT_REFUSED)
    except (ArgumentError, NoSuchModuleError) as exc:
        fail("bad_store", f"--store is not a SQLite path or a database URL ({exc})", as_json,
             EXIT_USAGE)
    except OperationalError as exc:
        fail("store_unreachable", f"the terminal store cannot be opened"
             f" ({str(getattr(exc, 'orig', None) or exc).strip().splitlines()[0]}); check"
             " --store and that the database is running", as_json, EXIT_PENDING)
    except SQLAlchemyError as exc:
        fail("store_error", f"store error: {getattr(exc, 'orig', None) or exc}", as_json,
             EXIT_REFUSED)
    except OSError as exc:
        fail("cannot_read", str(exc), as_json, EXIT_USAGE)
    except ValueError as exc:  # a value given that the library refused, in its words
        fail("invalid", str(exc), as_json, EXIT_USAGE)


def _open(store: str, name: str | None = None) -> Terminal:
    from ..merchant.terminal import Terminal

    return Terminal.open(store, name=name)


def _money(amount: int, currency: str) -> str:
    return format_money(amount, currency)


def _usage(code: str, message: str, as_json: bool) -> NoReturn:
    fail(code, message, as_json, EXIT_USAGE)


@app.command()
def init(bank: Annotated[str, typer.Option("--bank", help="The bank's base URL.")],
         store: Store,
         credential_file: Annotated[Path | None, typer.Option(
             "--credential-file", show_default=f"${CREDENTIAL_ENV}, else a prompt",
             help="File holding the merchant credential the bank gave.")] = None,
         master_key: Annotated[str | None, typer.Option(
             "--master-key", show_default="pin the key of the first keyset",
             help="The bank's master public key (64 hex) to pin; without it, compare the"
                  " fingerprint printed with the bank's.")] = None,
         as_json: Json = False) -> None:
    """Create the terminal: merchant id, key pair, certificate, checked keyset."""
    from ..merchant.setup import init_terminal
    from ..wire.fingerprint import master_key_fingerprint

    pinned = None
    if master_key is not None:
        if len(master_key) != 64 or not all(c in "0123456789abcdef" for c in master_key):
            _usage("bad_master_key", "--master-key: expected 64 lowercase hex characters",
                   as_json)
        pinned = bytes.fromhex(master_key)
    try:
        credential = read_secret(CREDENTIAL_ENV, credential_file, "Merchant credential")
    except typer.Exit:
        raise typer.Exit(EXIT_USAGE) from None
    with _errors(as_json):
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
        emit(with_amount_unit(data), True)
        return
    console.print(
        f"Terminal of merchant [bold]{escape(data['merchant_id'])}[/] initialised in"
        f" {escape(store)}\n"
        f"  bank master key (signs the bank's coin keys) {data['master_public_key']}"
        f" (pinned on {data['master_key_pinned']})\n"
        f"  master key fingerprint [bold]{data['master_key_fingerprint']}[/] (compare with"
        " what `ecash bank init` printed)\n"
        f"  keyset fingerprint [bold]{data['keyset_fingerprint']}[/] (the bank's current coin"
        " keys: compare with the bank's)\n"
        f"  terminal key       {data['terminal_public_key']}\n"
        f"  floor limit        {_money(data['floor_limit'], data['currency'])} (payments"
        " above it are checked with the bank while the customer waits)",
        highlight=False, soft_wrap=True)


@app.command()
def sync(store: Store, as_json: Json = False) -> None:
    """Refresh keys, policy and certificate from the bank (online)."""
    with _errors(as_json), _open(store) as t:
        data = t.sync()
    emit(data, as_json,
         f"keyset (the bank's coin keys) {data['keyset_fingerprint']}"
         f" ({'changed' if data['keyset_changed'] else 'unchanged'}, {data['keys']} keys);"
         f" certificate (the bank's signature on this terminal's key) valid until"
         f" {data['certificate_valid_until']}"
         f"{' (renewed)' if data['certificate_renewed'] else ''}")


@app.command()
def request(amount: Annotated[str, typer.Argument(
                metavar="AMOUNT", show_default=False,
                help="In the currency's major unit: 20.48 or 1,000 (yuan for CNY).")],
            store: Store,
            pos_url: Annotated[str | None, typer.Option(
                "--pos-url", envvar=PUBLIC_URL_ENV, show_envvar=True,
                show_default="none: the offline code only",
                help="Base URL phones reach this terminal's server at (as for `serve"
                     " --public-url`): the QR code is then a short ecash: link, and wallets"
                     " send the payment to BASE/pay/<request id>.")] = None,
            ttl: Annotated[int | None, typer.Option(
                "--ttl", show_default="600", help="Seconds until the request expires.")] = None,
            description: Annotated[str | None, typer.Option(
                "--description", show_default="none",
                help="What is being bought (at most 140 characters), signed by the terminal"
                     " and shown by the wallet.")] = None,
            qr: Annotated[bool, typer.Option("--qr/--no-qr", help="Draw the QR code.")] = True,
            name: Name = None, as_json: Json = False) -> None:
    """Create a signed payment request; print its QR code, link and offline code."""
    from ..merchant import qr as qrcode
    from ..merchant.requests import description_of
    from ..wire import json as wj
    from ..wire.uri import offline_text, payment_uri

    with _errors(as_json), _open(store, name) as t:
        minor = parse_money(amount, t.keys.currency)
        env = t.create_request(minor, pos_base=pos_url, ttl_s=ttl, description=description)
        record = t.store.request(env.request.request_id)
        signed = description_of(t, record)
    text = offline_text(env, signed)
    uri = payment_uri(env, signed)
    cur = env.request.currency
    if as_json:
        emit(with_amount_unit({
            "request_id": env.request.request_id.hex(), "amount": env.request.amount,
            "currency": cur, "pos_url": env.pos_url, "uri": uri, "text": text,
            "description": description, "expires_ms": record.expires_ms,
            "envelope": wj.envelope_to_json(env),
            "description_signature": signed.signature.hex() if signed else None}), True)
        return
    if qr:
        typer.echo(qrcode.terminal(uri or text))
    console.print(f"payment request {env.request.request_id.hex()} for"
                  f" [bold]{_money(minor, cur)}[/]", highlight=False, soft_wrap=True)
    if description is not None:
        console.print("for: ", end="", highlight=False)
        console.print(description, markup=False, highlight=False, soft_wrap=True)
    if uri:
        console.print("payment link (what the QR code holds; the phone fetches the request"
                      " from this terminal's server):", highlight=False)
        typer.echo(uri)
        console.print("offline code (for a phone without network):", highlight=False)
    else:
        console.print("offline code (the QR code holds it; no --pos-url, so no payment"
                      " link):", highlight=False)
    typer.echo(text)


def _read_payment(payment: str | None, as_json: bool) -> str:
    if payment is None or payment == "-":
        return sys.stdin.read()
    if payment.lstrip().startswith(("ecpay1:", "{")):
        return payment
    try:
        return Path(payment).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        _usage("cannot_read", f"cannot read {payment}:"
               f" {getattr(exc, 'strerror', None) or exc}", as_json)


@app.command()
def accept(store: Store,
           payment: Annotated[str | None, typer.Argument(
               show_default="-", help="The customer's payment: an ecpay1: text, a file"
               " holding it or {\"spends\": ...} JSON, or - for standard input. Line"
               " breaks inside the text are ignored.")] = None,
           as_json: Json = False) -> None:
    """Take a payment from the customer's side: check it (offline; online with the
    bank above the floor limit) and print the receipt."""
    from ..merchant.http import decode_payment
    from ..wire import json as wj
    from ..wire.errors import WireError
    from ..wire.text import payment_from_text

    raw = _read_payment(payment, as_json).strip()
    try:
        spends = decode_payment(raw.encode()) if raw.startswith("{") else \
            payment_from_text(raw)
    except WireError as exc:
        _usage("bad_payment_text", f"this is not a payment: {exc}", as_json)
    with _errors(as_json), _open(store) as t:
        receipt = t.accept(spends[0].request.request_id, spends)
        currency = t.keys.currency
    emit(with_amount_unit({"status": "paid", "receipt": wj.receipt_to_json(receipt),
                           "amount": receipt.amount, "currency": currency}), as_json,
         f"[bold green]PAID[/] {_money(receipt.amount, currency)}"
         f" (request {receipt.request_id.hex()})\n"
         f"receipt (the terminal's signature for the customer) {receipt.signature.hex()}")


@app.command()
def deposit(store: Store,
            batch: Annotated[int | None, typer.Option(
                show_default="500", help="Transcripts per call to the bank.")] = None,
            as_json: Json = False) -> None:
    """Deposit the accepted payments at the bank (safe to interrupt and run again)."""
    with _errors(as_json), _open(store) as t:
        res = t.deposit(batch=batch)
        cur = t.keys.currency
    for w in res.warnings:
        err_console.print("[bold red]WARNING:[/] ", end="", highlight=False)
        err_console.print(w, markup=False, highlight=False, soft_wrap=True)
    data = with_amount_unit({**res.to_json(), "currency": cur})
    if res.error:
        code = res.error.split(":", 1)[0]
        fail("deposit_stopped", f"deposit stopped: {res.error} (what was not deposited stays"
             " pending; run `ecash merchant deposit` again later)", as_json,
             EXIT_PENDING if code in UNREACHABLE_CODES else EXIT_REFUSED, result=data)
    emit(data, as_json,
         f"sent {res.sent} transcript(s) (a coin's spend record) in {res.batches} batch(es):"
         f" {res.accepted} accepted (credited {_money(res.credited, cur)}),"
         f" {res.double_spent} double-spent (compensated {_money(res.compensated, cur)}),"
         f" {res.refused} refused")


@app.command()
def report(store: Store, as_json: Json = False) -> None:
    """The settlement report: accepted, deposited, credited, refused, double-spent..."""
    from ..merchant.page import ROWS

    with _errors(as_json), _open(store) as t:
        rep = t.report()
    if as_json:
        emit(with_amount_unit(rep), True)
        return
    cur = rep["currency"]
    table = Table(title=f"Settlement of {escape(rep['merchant_id'])}"
                        f" (keyset {rep['keyset_fingerprint']})")
    table.add_column("")
    table.add_column("coins", justify="right")
    table.add_column("value", justify="right")
    for key, label in ROWS:
        table.add_row(label, str(rep[key]["count"]), _money(rep[key]["value"], cur))
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


def _start_verify_pool(t: Terminal, workers: int) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from ..merchant.accept import verdicts

    # fresh interpreters: they must not inherit the server's signal handlers
    t.verify_pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    t.verify_workers = workers
    for f in [t.verify_pool.submit(verdicts, []) for _ in range(workers)]:
        f.result()  # start the workers now, not during the first payment


@app.command()
def serve(store: Store,
          host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port to listen on.")] = 8480,
          public_url: Annotated[str | None, typer.Option(
              "--public-url", envvar=PUBLIC_URL_ENV, show_envvar=True,
              show_default="none: the page is for this computer's till only",
              help="Base URL phones reach this server at (https://... behind a proxy):"
                   " QR codes then carry a payment link; checked at start.")] = None,
          check_public_url: Annotated[bool, typer.Option(
              "--check-public-url/--no-check-public-url",
              help="At start, GET /health through --public-url and stop if it does not"
                   " answer as this terminal (skip it for a proxy that is not up yet).")
          ] = True,
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
    """Serve the point-of-sale page, the wallet endpoint POST /pay/<request id> and
    the payment links' GET /r/<request id>."""
    from ..merchant.serve import serve as run

    if public_url is not None and not public_url.startswith(("https://", "http://")):
        _usage("bad_url", f"--public-url must start with https:// or http://, not"
               f" {public_url!r}", False)
    with _errors():
        t = _open(store, name)
        if verify_workers > 0:
            _start_verify_pool(t, verify_workers)
        where = f"http://{host}:{port}/"
        console.print(f"terminal of [bold]{escape(t.merchant_id)}[/] on {where}"
                      f" (keyset {t.keys.fingerprint})", highlight=False, soft_wrap=True)
        if public_url:
            checked = "checking it answers" if check_public_url else "not checked"
            console.print(f"phones pay at {escape(public_url)} ({checked}): QR codes carry a"
                          " payment link", highlight=False, soft_wrap=True)
        else:
            console.print("no --public-url: the point-of-sale page is for this computer's"
                          " till only; QR codes carry the offline code, not a payment link"
                          " (give --public-url with an address phones reach to take"
                          " payments over the network)", highlight=False, soft_wrap=True)
        try:
            run(t, host=host, port=port, public_url=public_url, deposit_every=deposit_every,
                sync_every=sync_every, remote_cashier=remote_cashier, log_level=log_level,
                check_public=check_public_url)
        finally:
            t.close()

