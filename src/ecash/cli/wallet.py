"""``ecash wallet``: the holder's wallet (see docs/wallet.md).

Every command takes ``--wallet PATH`` (or ``$ECASH_WALLET``) and ``--json``.
Amounts a holder types or reads are in the currency's major unit (``ecash
wallet load 200`` is CNY 200.00) through :mod:`ecash.money`; ``--json`` keeps
minor units and says so. Failures follow :mod:`ecash.cli.contract`: one line,
never a traceback; exit 0 done, 1 refused (also: the terminal refused the
payment with a signed refusal, its coins released), 2 usage or unreadable
input, 3 pending or unreachable (paid but the terminal did not confirm; the
bank or the terminal cannot be reached).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ..files import write_private
from ..wire.payee import shown
from . import contract
from .contract import EXIT_PENDING, EXIT_REFUSED, EXIT_USAGE, console, emit, err_console
from .walletio import (
    CREDENTIAL_ENV,
    KDF_CHOICES,
    PASSPHRASE_ENV,
    PHRASE_ENV,
    CredentialFile,
    Json,
    Kdf,
    MasterKey,
    PassFile,
    WalletPath,
    guarded,
    hex32,
    money_text,
    parse_amount,
    payee,
    progress,
    read_secret,
    wallet_at,
    when,
    with_money,
)

app = typer.Typer(help="The holder's wallet: load, pay offline, restore from the seed phrase.",
                  no_args_is_help=True)

COINS = "coins (pieces of cash signed by the bank, each of a fixed value)"
PENDING = ("pending (paid, not yet known to be spent: they come back if the bank"
           " never sees them spent)")
AmountArg = Annotated[str, typer.Argument(
    metavar="AMOUNT", help="In the currency's major unit: 200 or 1,000.50 (yuan for CNY).",
    show_default=False)]


def _check_kdf(kdf: str) -> None:
    if kdf not in KDF_CHOICES:
        raise typer.BadParameter(f"--kdf must be one of {', '.join(KDF_CHOICES)}")


# --- commands ------------------------------------------------------------------------

@app.command()
@guarded
def init(wallet: WalletPath, as_json: Json = False, passphrase_file: PassFile = None,
         kdf: Kdf = "moderate") -> None:
    """Create a wallet file from a fresh 24-word seed phrase (shown once)."""
    from ..wallet import KDF_PROFILES, Wallet
    from ..wallet.errors import WalletExists

    _check_kdf(kdf)
    if wallet.exists():
        raise WalletExists(f"{wallet} already exists; choose another --wallet path")
    passphrase = read_secret(PASSPHRASE_ENV, passphrase_file, "New passphrase", confirm=True)
    w, phrase = Wallet.create(wallet, passphrase, kdf=KDF_PROFILES[kdf])
    w.close()
    words = phrase.split()
    grid = "\n".join("  ".join(f"{i + 1:2d}. {words[i]:<10}" for i in range(r, len(words), 6))
                     for r in range(6))
    emit({"wallet": str(wallet), "phrase": phrase}, as_json,
         f"Wallet created: {escape(str(wallet))}\n\n[bold]Your seed phrase[/] (24 words that"
         " rebuild this wallet and every coin in it; shown once: write it down and keep it"
         f" offline):\n\n{grid}\n\nNext: ecash wallet register --bank URL --account ID")


@app.command()
@guarded
def register(wallet: WalletPath,
             bank: Annotated[str, typer.Option("--bank", help="The bank's URL.")],
             account: Annotated[str, typer.Option("--account", help="Your account id.")],
             credential_file: CredentialFile = None, master_key: MasterKey = None,
             as_json: Json = False, passphrase_file: PassFile = None) -> None:
    """Register the wallet's identity with the bank and pin its master key."""
    pinned = hex32(master_key, "--master-key")
    with wallet_at(wallet, passphrase_file) as w:
        cred = read_secret(CREDENTIAL_ENV, credential_file, "Bank credential",
                           what="credential")
        out = w.register(bank, account, cred, master_key=pinned)
    emit(out, as_json,
         f"Registered account {escape(out['account_id'])} at {escape(out['bank'])}.\n"
         "  bank master key (signs all the bank's coin keys), fingerprint"
         f"  [bold]{out['master_key_fingerprint']}[/] (pinned)\n"
         f"  keyset (the bank's current coin keys), fingerprint  [bold]"
         f"{out['keyset_fingerprint']}[/]\n"
         "Compare both with what the bank publishes.")


# "-3" is an amount (refused in words), not an unknown option
AMOUNT_CONTEXT = {"ignore_unknown_options": True}


@app.command(context_settings=AMOUNT_CONTEXT)
@guarded
def load(wallet: WalletPath, amount: AmountArg, as_json: Json = False,
         passphrase_file: PassFile = None) -> None:
    """Withdraw AMOUNT from your bank account into the wallet as coins."""
    with wallet_at(wallet, passphrase_file) as w:
        cur = w.currency
        minor = parse_amount(amount, cur)
        with progress("withdrawing", as_json) as bar:
            out = w.load(minor, bar)
    note = " (completed an interrupted load)" if out.get("resumed") else ""
    emit(with_money(out, cur), as_json,
         f"Loaded {money_text(out['amount'], cur)} as {out['coins']} {COINS}{note}.")


def _resolve(request: str | None, request_file: Path | None) -> Any:
    """The request the holder gave, in any form the wallet reads (an ``ecash:``
    URI, the offline text, JSON), resolved to a checked envelope."""
    from ..wallet.errors import WalletError
    from ..wallet.request_source import resolve_request

    if request_file is not None:
        try:
            raw = request_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise WalletError(f"cannot read {request_file}:"
                              f" {getattr(exc, 'strerror', None) or 'not text'}",
                              "unreadable_file") from None
    elif request is not None and request != "-":
        raw = request
    else:
        if sys.stdin.isatty():
            raise WalletError("give the request (an ecash: link or ecreq1:... text),"
                              " --request-file, or pipe it in", "no_request")
        raw = sys.stdin.read()
    return resolve_request(raw)


@app.command()
@guarded
def pay(wallet: WalletPath,
        request: Annotated[str | None, typer.Argument(
            metavar="REQUEST",
            help="The payment request: an ecash: link, the ecreq1: text, or - for stdin.",
            show_default=False)] = None,
        request_file: Annotated[Path | None, typer.Option(
            "--request-file", help="Read the request from a file.")
            ] = None,
        out: Annotated[Path | None, typer.Option(
            "--out", help="Write the payment (ecpay1:...) to this file.",
            show_default="stdout")] = None,
        offline: Annotated[bool, typer.Option(
            "--offline", help="Do not send the payment to the till; print it.")] = False,
        yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask to confirm.")
                       ] = False,
        as_json: Json = False, passphrase_file: PassFile = None) -> None:
    """Pay a shop's signed payment request (checked against the bank's pinned key)."""
    from ..wallet.errors import TerminalError

    resolved = _resolve(request, request_file)
    envelope, description = resolved.envelope, resolved.description
    if resolved.description_problem and not as_json:
        err_console.print(f"warning: {resolved.description_problem}", markup=False,
                          highlight=False)
    with wallet_at(wallet, passphrase_file) as w:
        info = w.check_request(envelope)
        cur = info["currency"]
        what = f" for {description!r}" if description else ""
        if not yes and not as_json and sys.stdin.isatty() and request not in (None, "-"):
            typer.confirm(f"Pay {money_text(info['amount'], cur)} to {shown(info['merchant_id'])!r}"
                          f"{what}?", abort=True)
        elif not as_json:
            err_console.print(f"Paying {money_text(info['amount'], cur)} to"
                              f" [bold]{payee(info['merchant_id'])}[/]{escape(what)}"
                              " (a shop certified by the bank).", highlight=False)
        try:
            payment = w.pay(envelope, send=not offline, description=description)
            error = None
        except TerminalError as exc:
            payment = w.stored_payment(envelope.request.request_id)
            error = exc
    data = with_money({**payment.to_json(), "description": description}, cur)
    if out is not None:
        write_private(out, payment.text + "\n")  # transcripts: bearer until deposited
    if error is not None:
        _terminal_failed(error, payment, data, as_json, printed=out is not None)
    again = " (the identical payment, asked again)" if payment.repeated else ""
    if as_json:
        emit(data, True)
    elif payment.status == "released":
        contract.fail(payment.error["code"] if payment.error else "refused",
                      "the shop's till refused this payment and signed its refusal; the"
                      " coins are spendable again", False, EXIT_REFUSED)
    elif payment.status == "confirmed":
        console.print(f"Paid {money_text(payment.amount, cur)} to {payee(payment.merchant_id)}"
                      f"{escape(what)} with {len(payment.spends)} {COINS}; the shop's receipt"
                      f" is verified{again}.", highlight=False)
    else:
        if out is None:
            typer.echo(payment.text)
        err_console.print(f"Payment of {money_text(payment.amount, cur)} to"
                          f" {payee(payment.merchant_id)}{escape(what)}"
                          f" ({len(payment.spends)} {COINS}){again}: hand it to the shop;"
                          " its coins stay pending until the bank settles them.",
                          highlight=False)


def _terminal_failed(error: Any, payment: Any, data: dict, as_json: bool,
                     printed: bool) -> None:
    """The till refused (coins released: exit 1) or did not confirm (exit 3)."""
    released = error.outcome == "released"
    if not released and not as_json and not printed:
        typer.echo(payment.text)  # the holder can still hand it over
    contract.fail(error.code, str(error), as_json, EXIT_REFUSED if released else EXIT_PENDING,
                  outcome="released" if released else "pending", payment=data)


@app.command()
@guarded
def sync(wallet: WalletPath, as_json: Json = False, passphrase_file: PassFile = None) -> None:
    """Go online: finish interrupted loads, resend unconfirmed payments, settle
    pending coins, refresh the bank's keys, reset the offline counters."""
    with wallet_at(wallet, passphrase_file) as w, progress("resuming", as_json) as bar:
        out = w.sync(bar)
    s = out["settled"]
    lines = [f"Keyset (the bank's current coin keys) fingerprint {out['keyset_fingerprint']}.",
             f"Pending coins (paid, waiting for the bank): {s['spent']} spent,"
             f" {s['freed']} back to spendable, {s['still_pending']} still pending,"
             f" {s['expired']} expired."]
    if out["resumed"]:
        lines.append(f"Finished {len(out['resumed'])} interrupted operation(s).")
    if out["resent"]:
        lines.append(f"Resent {len(out['resent'])} unconfirmed payment(s).")
    if out["renew_suggested"]:
        lines.append(f"{out['renew_suggested']} coins near their spend deadline: run"
                     " `ecash wallet renew`.")
    if s["disputed"]:
        lines.append(f"[bold red]{s['disputed']} payment(s) refused or unanswered by the"
                     " shop's till were nevertheless deposited: see `ecash wallet disputes`.[/]")
    for f in out["disputes_filed"]:
        lines.append(f"Dispute of payment {f['request_id'][:16]}… filed with the bank:"
                     f" {escape(str(f.get('status', 'not filed: ' + str(f.get('error')))))}.")
    lines += [f"[bold yellow]warning:[/] {escape(str(x))}" for x in out["warnings"]]
    emit(out, as_json, "\n".join(lines))


@app.command()
@guarded
def balance(wallet: WalletPath, as_json: Json = False,
            passphrase_file: PassFile = None) -> None:
    """Spendable coins per value, pending coins apart, spend deadlines."""
    with wallet_at(wallet, passphrase_file) as w:
        b = w.balance()
    cur = b["currency"]
    if as_json:
        emit(with_money(b, cur), True)
        return
    console.print(f"Spendable {money_text(b['spendable'], cur)} in {COINS}:", highlight=False)
    t = Table()
    t.add_column("coin", justify="right")
    t.add_column("count", justify="right")
    t.add_column("value", justify="right")
    for d in b["denominations"]:
        t.add_row(money_text(d["value"], cur), str(d["count"]),
                  money_text(d["value"] * d["count"], cur))
    console.print(t)
    if b["pending"]:
        console.print(f"{money_text(b['pending'], cur)} in {len(b['pending_coins'])} coins is"
                      f" {PENDING}; the earliest may come back"
                      f" {when(b['pending_coins'][0]['until'])}", highlight=False)
    if b["past_spend_deadline"]:
        console.print(f"{money_text(b['past_spend_deadline'], cur)} past the spend deadline:"
                      " `ecash wallet renew`", highlight=False)
    for d in b["spend_deadlines"]:
        console.print(f"  {d['count']} coins ({money_text(d['value'], cur)}) spendable until"
                      f" {when(d['spend_deadline'])}", highlight=False)
    if b["disputes"]:
        console.print(f"[bold red]{len(b['disputes'])} disputed payment(s)[/]"
                      f" ({money_text(sum(d['amount'] for d in b['disputes']), cur)}): refused"
                      " or unanswered by the shop's till, yet deposited; see"
                      " `ecash wallet disputes`", highlight=False)
    console.print(f"Keyset {b['keyset_fingerprint'] or '-'}, bank key"
                  f" {b['master_key_fingerprint'] or '-'}, last online"
                  f" {when(b['last_online_at'])}", highlight=False)


@app.command()
@guarded
def history(wallet: WalletPath,
            limit: Annotated[int, typer.Option(min=1, help="How many entries.",
                                               show_default=True)] = 50,
            as_json: Json = False, passphrase_file: PassFile = None) -> None:
    """Loads, payments (with what was bought), exchanges and syncs, newest first."""
    with wallet_at(wallet, passphrase_file) as w:
        events = w.history(limit)
        payments = w.payments(limit)
        cur = w.currency if w.store.meta("policy") else None
    if as_json:
        emit(with_money({"events": events, "payments": payments}, cur), True)
        return
    t = Table()
    for col in ("when", "what", "amount", "detail"):
        t.add_column(col)
    for e in events:
        t.add_row(when(e["at"]), e["kind"], money_text(e["amount"], cur), escape(str(e["detail"])))
    console.print(t)
    if payments:
        p = Table(title="Payments")
        for col in ("when", "to", "for", "amount", "coins", "status"):
            p.add_column(col)
        for x in payments:
            p.add_row(when(x["created_at"]), payee(x["merchant_id"]),
                      escape(x.get("description") or "-"), money_text(x["amount"], cur),
                      str(x["coins"]), x["status"])
        console.print(p)


@app.command()
@guarded
def disputes(wallet: WalletPath, as_json: Json = False,
             passphrase_file: PassFile = None) -> None:
    """Payments a shop's till refused or never answered whose coins were deposited
    anyway: the evidence kept, and the bank's answer once filed (by `sync`)."""
    with wallet_at(wallet, passphrase_file) as w:
        found = w.disputes()
        cur = w.currency if w.store.meta("policy") else None
    if as_json:
        emit(with_money({"disputes": found}, cur), True)
        return
    if not found:
        console.print("No disputed payments.", highlight=False)
        return
    for d in found:
        filed = d["filed"]
        state = (f"filed: {filed.get('status')} ({filed.get('reason')})" if filed else
                 "filed at the next sync" if d["evidence"]["refusal"] else
                 "no signed refusal: take the evidence (--json) to the shop")
        console.print(f"{when(d['created_at'])}  {payee(d['merchant_id'])}"
                      f"  {money_text(d['amount'], d['currency'])}\n"
                      f"  {escape(d['explanation'])}\n"
                      f"  request {d['request_id']}\n  {escape(state)}", highlight=False)


@app.command()
@guarded
def renew(wallet: WalletPath,
          within_days: Annotated[int, typer.Option(
              "--within-days", min=0, show_default=True,
              help="Renew coins whose spend deadline is this many days away or closer.")
              ] = 30,
          as_json: Json = False, passphrase_file: PassFile = None) -> None:
    """Exchange coins whose key nears its spend deadline for new ones."""
    with wallet_at(wallet, passphrase_file) as w, progress("renewing", as_json) as bar:
        out = w.renew(within_days * 86_400, bar)
        cur = w.currency
    emit(with_money(out, cur), as_json, f"Renewed {out['renewed_coins']} coins"
         f" ({money_text(out['amount'], cur)}).")


@app.command("break", context_settings=AMOUNT_CONTEXT)
@guarded
def break_(wallet: WalletPath,
           amount: Annotated[str | None, typer.Argument(
               metavar="AMOUNT", show_default="the largest coin",
               help="Make this amount payable exactly (major unit, e.g. 3.50).")] = None,
           value: Annotated[str | None, typer.Option(
               "--value",
               help="Break a coin of this value (major unit, e.g. 5.00).")] = None,
           as_json: Json = False, passphrase_file: PassFile = None) -> None:
    """Exchange one large coin for smaller ones (default: the largest coin)."""
    with wallet_at(wallet, passphrase_file) as w:
        cur = w.currency
        minor = None if amount is None else parse_amount(amount, cur)
        coin = None if value is None else parse_amount(value, cur, "--value")
        with progress("exchanging", as_json) as bar:
            out = w.break_coin(amount=minor, value=coin, progress=bar)
    emit(with_money(out, cur), as_json, f"Broke a {money_text(out['broken'], cur)} coin into"
         f" {', '.join(money_text(v, cur) for v in out['into'])}.")


@app.command()
@guarded
def restore(wallet: WalletPath,
            bank: Annotated[str, typer.Option("--bank", help="The bank's URL.")],
            account: Annotated[str, typer.Option("--account", help="Your account id.")],
            phrase_file: Annotated[Path | None, typer.Option(
                "--phrase-file",
                help=f"The seed phrase from this file (else env {PHRASE_ENV}, else a"
                " hidden prompt).")] = None,
            credential_file: CredentialFile = None, master_key: MasterKey = None,
            kdf: Kdf = "moderate",
            as_json: Json = False, passphrase_file: PassFile = None) -> None:
    """Rebuild a wallet from its seed phrase and the bank's withdrawal records.

    Coins the bank does not hold as spent stay pending for the deposit window
    (the lost wallet may have paid with them); stop using the old wallet."""
    from ..wallet import KDF_PROFILES, Wallet
    from ..wallet.errors import WalletExists

    _check_kdf(kdf)
    if wallet.exists():
        raise WalletExists(f"{wallet} already exists; restore into a new --wallet path")
    pinned = hex32(master_key, "--master-key")
    phrase = read_secret(PHRASE_ENV, phrase_file, "Seed phrase", what="phrase")
    cred = read_secret(CREDENTIAL_ENV, credential_file, "Bank credential", what="credential")
    passphrase = read_secret(PASSPHRASE_ENV, passphrase_file, "New passphrase", confirm=True)
    with progress("restoring", as_json) as bar:
        w, out = Wallet.restore(wallet, passphrase, phrase, bank, account, cred,
                                master_key=pinned, kdf=KDF_PROFILES[kdf], progress=bar)
    cur = w.currency
    w.close()
    emit(with_money(out, cur), as_json,
         f"Restored {out['coins']} {COINS}: {out['spent']} already spent,"
         f" {out['pending']} {PENDING} ({money_text(out['pending_value'], cur)}) until"
         f" {when(out['pending_until'])}, then spendable if still unspent."
         f" {out['expired']} expired.")


@app.command()
@guarded
def close(wallet: WalletPath,
          yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask to confirm.")
                         ] = False,
          as_json: Json = False, passphrase_file: PassFile = None) -> None:
    """Pay every spendable coin back into the account and close the account."""
    if not yes:
        if not sys.stdin.isatty():
            contract.fail("confirmation_needed", "closing the account needs --yes when not"
                          " run on a terminal", as_json, EXIT_USAGE)
        typer.confirm("Pay all coins back into the account and close it at the bank?",
                      abort=True)
    with wallet_at(wallet, passphrase_file) as w, progress("closing", as_json) as bar:
        out = w.close_account(bar)
        cur = w.currency
    lines = [f"Paid {out['redeemed']['accepted']} coins"
             f" ({money_text(out['redeemed']['value'], cur)}) back into the account; account"
             f" {out['account']['status']}, paid out after"
             f" {when(out['account'].get('payout_after'))}."]
    if out["pending_coins"]:
        lines.append(f"{out['pending_coins']} pending coins"
                     f" ({money_text(out['pending_value'], cur)}) remain: run"
                     " `ecash wallet close` again after"
                     f" {when(out['pending_until'])}.")
    emit(with_money(out, cur), as_json, "\n".join(lines))


@app.command()
@guarded
def check(wallet: WalletPath, as_json: Json = False,
          passphrase_file: PassFile = None) -> None:
    """Check the wallet file: integrity, every coin's secrets, no coin answered twice."""
    with wallet_at(wallet, passphrase_file) as w:
        out = w.audit()
    if not out["ok"]:
        contract.fail("corrupt_wallet", "; ".join(out["problems"][:5]), as_json,
                      problems=out["problems"])
    emit(out, as_json, "The wallet file is intact.")
