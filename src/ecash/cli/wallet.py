"""``ecash wallet``: the holder's wallet (see docs/wallet.md).

Every command takes ``--wallet PATH`` (or ``$ECASH_WALLET``) and ``--json``.
Amounts are integers in minor units of the bank's currency (fen for CNY).
Errors are one line on stderr (and ``{"error": code, "message": ...}`` on
stdout with ``--json``), never a traceback. Exit codes: 0 done, 1 refused or
failed (also: the terminal refused the payment with a signed refusal, its
coins released), 2 usage, 3 paid but the terminal did not confirm (payment
pending).
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ..files import write_private
from ..wire.payee import shown
from .common import console, err_console

app = typer.Typer(help="The holder's wallet: load, pay offline, restore from the seed phrase.",
                  no_args_is_help=True)

PASSPHRASE_ENV = "ECASH_WALLET_PASSPHRASE"
CREDENTIAL_ENV = "ECASH_WALLET_CREDENTIAL"
PHRASE_ENV = "ECASH_WALLET_PHRASE"
EXIT_FAILED, EXIT_PENDING = 1, 3
ZERO_DECIMAL = {"JPY", "KRW", "VND", "CLP", "ISK", "UGX", "XAF", "XOF", "PYG"}


def payee(merchant_id: str) -> str:
    """A payee name as the console shows it: controls made visible (a name the
    bank never checked cannot reorder the line) and Rich markup escaped (PRECIS
    allows ``[`` and ``]``, which Rich would read as styles)."""
    return escape(shown(merchant_id))

def _default_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ecash" / "wallet.db"


WalletPath = Annotated[Path, typer.Option("--wallet", envvar="ECASH_WALLET",
                                          default_factory=_default_path, show_default=False,
                                          help="Wallet file [env ECASH_WALLET; default"
                                          " $XDG_DATA_HOME/ecash/wallet.db].")]
Json = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]
PassFile = Annotated[Path | None, typer.Option(
    "--passphrase-file", help=f"Read the passphrase from this file [or env {PASSPHRASE_ENV},"
    " or a prompt].")]
KDF_CHOICES = ("interactive", "moderate", "sensitive")


# --- plumbing ----------------------------------------------------------------------

def _fail(code: str, message: str, as_json: bool, exit_code: int = EXIT_FAILED) -> NoReturn:
    if as_json:
        typer.echo(json.dumps({"error": code, "message": message}, ensure_ascii=False))
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, markup=True,
                      soft_wrap=True)
    raise typer.Exit(exit_code)


F = TypeVar("F", bound=Callable[..., Any])


def guarded(fn: F) -> F:
    """Turn every expected failure into one clear line and an exit code."""

    @functools.wraps(fn)
    def run(*args: Any, **kw: Any) -> Any:
        from ..crypto.errors import EcashError
        from ..wallet.errors import CorruptWallet, WalletError

        as_json = bool(kw.get("as_json"))
        try:
            return fn(*args, **kw)
        except (typer.Exit, typer.Abort, typer.BadParameter):
            raise
        except WalletError as exc:
            _fail(exc.code, str(exc), as_json)
        except EcashError as exc:
            _fail(exc.code, f"malformed input ({exc.code}): {exc}", as_json)
        except sqlite3.DatabaseError as exc:
            err = CorruptWallet(f"the wallet file is damaged ({exc})")
            _fail(err.code, str(err), as_json)
        except OSError as exc:
            _fail("os_error", f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "),
                  as_json)
        except KeyboardInterrupt:
            _fail("interrupted", "interrupted (anything recorded is kept; `ecash wallet sync`"
                  " resumes)", as_json, 130)

    return run  # type: ignore[return-value]


def _read_secret(env: str, path: Path | None, prompt: str, *, confirm: bool = False,
                 what: str = "passphrase") -> str:
    if path is not None:
        value = path.read_text(encoding="utf-8").rstrip("\r\n")
    elif os.environ.get(env):
        value = os.environ[env]
    elif sys.stdin.isatty():
        value = typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
    else:
        from ..wallet.errors import WalletError

        raise WalletError(f"no {what}: set {env}, pass a file, or run on a terminal",
                          f"no_{what}")
    if not value:
        from ..wallet.errors import WalletError

        raise WalletError(f"the {what} is empty", f"no_{what}")
    return value


def _open(path: Path, passphrase_file: Path | None):
    from ..wallet import Wallet
    from ..wallet.errors import NoWallet

    if not path.is_file():
        raise NoWallet(f"no wallet at {path} (create one with `ecash wallet init`)")
    return Wallet.open(path, _read_secret(PASSPHRASE_ENV, passphrase_file, "Passphrase"))


@contextmanager
def _wallet(path: Path, passphrase_file: Path | None) -> Iterator[Any]:
    w = _open(path, passphrase_file)
    try:
        yield w
    finally:
        w.close()


@contextmanager
def _progress(label: str, as_json: bool) -> Iterator[Callable[[int, int], None] | None]:
    if as_json or not err_console.is_terminal:
        yield None
        return
    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err_console, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _emit(data: Any, as_json: bool, human: str | Table) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        console.print(human, highlight=False)


def money(amount: int | None, currency: str | None) -> str:
    if amount is None:
        return "-"
    if not currency:
        return str(amount)
    if currency in ZERO_DECIMAL:
        return f"{amount} {currency}"
    sign = "-" if amount < 0 else ""
    return f"{sign}{abs(amount) // 100}.{abs(amount) % 100:02d} {currency}"


def when(ts: int | None) -> str:
    if not ts:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _hex32(value: str | None, what: str) -> bytes | None:
    if value is None:
        return None
    v = value.strip().lower()
    if len(v) != 64 or any(c not in "0123456789abcdef" for c in v):
        raise typer.BadParameter(f"{what}: expected 64 hex characters (32 bytes)")
    return bytes.fromhex(v)


# --- commands ------------------------------------------------------------------------

@app.command()
@guarded
def init(wallet: WalletPath, as_json: Json = False, passphrase_file: PassFile = None,
         kdf: Annotated[str, typer.Option(help=f"argon2id cost: {', '.join(KDF_CHOICES)}.")
                        ] = "moderate") -> None:
    """Create a wallet file from a fresh 24-word seed phrase (shown once)."""
    from ..wallet import KDF_PROFILES, Wallet
    from ..wallet.errors import WalletExists

    if kdf not in KDF_CHOICES:
        raise typer.BadParameter(f"--kdf must be one of {', '.join(KDF_CHOICES)}")
    if wallet.exists():
        raise WalletExists(f"{wallet} already exists; choose another --wallet path")
    passphrase = _read_secret(PASSPHRASE_ENV, passphrase_file, "New passphrase", confirm=True)
    w, phrase = Wallet.create(wallet, passphrase, kdf=KDF_PROFILES[kdf])
    w.close()
    words = phrase.split()
    grid = "\n".join("  ".join(f"{i + 1:2d}. {words[i]:<10}" for i in range(r, len(words), 6))
                     for r in range(6))
    _emit({"wallet": str(wallet), "phrase": phrase}, as_json,
          f"Wallet created: {wallet}\n\n[bold]Your seed phrase[/] (shown once; write it down"
          f" and keep it offline — it restores every coin):\n\n{grid}\n\n"
          "Next: ecash wallet register --bank URL --account ID")


@app.command()
@guarded
def register(wallet: WalletPath,
             bank: Annotated[str, typer.Option("--bank", help="The bank's URL.")],
             account: Annotated[str, typer.Option("--account", help="Your account id.")],
             credential_file: Annotated[Path | None, typer.Option(
                 "--credential-file", help=f"Holder credential [or env {CREDENTIAL_ENV}, or a"
                 " prompt].")] = None,
             master_key: Annotated[str | None, typer.Option(
                 "--master-key", help="Expected master public key (hex); else trusted on"
                 " first use.")] = None,
             as_json: Json = False, passphrase_file: PassFile = None) -> None:
    """Register the wallet's identity with the bank and pin its master key."""
    pinned = _hex32(master_key, "--master-key")
    with _wallet(wallet, passphrase_file) as w:
        cred = _read_secret(CREDENTIAL_ENV, credential_file, "Bank credential",
                            what="credential")
        out = w.register(bank, account, cred, master_key=pinned)
    _emit(out, as_json,
          f"Registered account {out['account_id']} at {out['bank']}.\n"
          f"  bank master key fingerprint  [bold]{out['master_key_fingerprint']}[/] (pinned)\n"
          f"  keyset fingerprint           [bold]{out['keyset_fingerprint']}[/]\n"
          "Compare both with what the bank publishes.")


@app.command()
@guarded
def load(wallet: WalletPath,
         amount: Annotated[int, typer.Argument(help="Amount in minor units (1000 = 10.00 CNY).",
                                               min=1)],
         as_json: Json = False, passphrase_file: PassFile = None) -> None:
    """Withdraw AMOUNT from the account as coins (a spread of denominations)."""
    with _wallet(wallet, passphrase_file) as w, _progress("withdrawing", as_json) as bar:
        out = w.load(amount, bar)
        cur = w.currency
    note = " (completed an interrupted load)" if out.get("resumed") else ""
    _emit(out, as_json, f"Loaded {money(out['amount'], cur)} as {out['coins']} coins{note}.")


def _read_request(request: str | None, request_file: Path | None):
    from ..wallet.errors import WalletError
    from ..wire import text

    if request_file is not None:
        raw = request_file.read_text(encoding="utf-8")
    elif request is not None and request != "-":
        raw = request
    else:
        if sys.stdin.isatty():
            raise WalletError("give the request (ecreq1:...), --request-file, or pipe it in",
                              "no_request")
        raw = sys.stdin.read()
    raw = raw.strip()
    if raw.startswith("{"):
        from ..wire import json as wj

        return wj.envelope_from_json(wj.loads(raw))
    return text.request_from_text(raw)


@app.command()
@guarded
def pay(wallet: WalletPath,
        request: Annotated[str | None, typer.Argument(
            help="The signed request (ecreq1:...), or - for stdin.")] = None,
        request_file: Annotated[Path | None, typer.Option(
            "--request-file", help="Read the request from a file.")] = None,
        out: Annotated[Path | None, typer.Option(
            "--out", help="Write the payment (ecpay1:...) to this file.")] = None,
        offline: Annotated[bool, typer.Option(
            "--offline", help="Do not POST to the request's pos_url; print the payment.")
            ] = False,
        yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask to confirm.")
                       ] = False,
        as_json: Json = False, passphrase_file: PassFile = None) -> None:
    """Pay a signed payment request (checked against the bank's pinned master key)."""
    from ..wallet.errors import TerminalError

    envelope = _read_request(request, request_file)
    with _wallet(wallet, passphrase_file) as w:
        info = w.check_request(envelope)
        cur = info["currency"]
        if not yes and not as_json and sys.stdin.isatty() and request not in (None, "-"):
            name = shown(info["merchant_id"])
            typer.confirm(f"Pay {money(info['amount'], cur)} to {name!r}?", abort=True)
        elif not as_json:
            err_console.print(f"Paying {money(info['amount'], cur)} to"
                              f" [bold]{payee(info['merchant_id'])}[/] (certified by the bank).",
                              highlight=False)
        try:
            payment = w.pay(envelope, send=not offline)
            error = None
        except TerminalError as exc:
            payment = w.stored_payment(envelope.request.request_id)
            error = exc
    data = payment.to_json()
    if out is not None:
        write_private(out, payment.text + "\n")  # transcripts: bearer until deposited
    if error is not None:
        data["error"] = {"code": error.code, "message": str(error)}
        released = error.outcome == "released"
        if as_json:
            typer.echo(json.dumps(data, indent=2))
        elif released:
            err_console.print(f"[bold red]refused:[/] {error}", highlight=False)
        else:
            if out is None:
                typer.echo(payment.text)
            err_console.print(f"[bold yellow]pending:[/] {error}", highlight=False)
        raise typer.Exit(EXIT_FAILED if released else EXIT_PENDING)
    again = " (the identical payment, asked again)" if payment.repeated else ""
    if as_json:
        typer.echo(json.dumps(data, indent=2))
    elif payment.status == "released":
        err_console.print(f"The terminal refused this payment ({payment.error['code']}) with a"
                          " signed refusal; its coins were released.", highlight=False)
        raise typer.Exit(EXIT_FAILED)
    elif payment.status == "confirmed":
        console.print(f"Paid {money(payment.amount, cur)} to {payee(payment.merchant_id)}"
                      f" with {len(payment.spends)} coins; receipt verified{again}.",
                      highlight=False)
    else:
        if out is None:
            typer.echo(payment.text)
        err_console.print(f"Payment of {money(payment.amount, cur)} to"
                          f" {payee(payment.merchant_id)}"
                          f" ({len(payment.spends)} coins){again}: hand it to the merchant;"
                          " its coins are pending until the bank settles them.",
                          highlight=False)


@app.command()
@guarded
def sync(wallet: WalletPath, as_json: Json = False, passphrase_file: PassFile = None) -> None:
    """Go online: finish interrupted loads, resend unconfirmed payments, settle
    pending coins, refresh the keyset, reset the offline counters."""
    with _wallet(wallet, passphrase_file) as w, _progress("resuming", as_json) as bar:
        out = w.sync(bar)
    s = out["settled"]
    lines = [f"Keyset fingerprint {out['keyset_fingerprint']}.",
             f"Pending coins: {s['spent']} spent, {s['freed']} back to spendable,"
             f" {s['still_pending']} still pending, {s['expired']} expired."]
    if out["resumed"]:
        lines.append(f"Finished {len(out['resumed'])} interrupted operation(s).")
    if out["resent"]:
        lines.append(f"Resent {len(out['resent'])} unconfirmed payment(s).")
    if out["renew_suggested"]:
        lines.append(f"{out['renew_suggested']} coins near their spend deadline: run"
                     " `ecash wallet renew`.")
    if s["disputed"]:
        lines.append(f"[bold red]{s['disputed']} payment(s) refused or unanswered by the"
                     " terminal were nevertheless deposited: see `ecash wallet disputes`.[/]")
    for f in out["disputes_filed"]:
        lines.append(f"Dispute of payment {f['request_id'][:16]}… filed with the bank:"
                     f" {f.get('status', 'not filed: ' + str(f.get('error')))}.")
    lines += [f"[bold yellow]warning:[/] {w}" for w in out["warnings"]]
    _emit(out, as_json, "\n".join(lines))


@app.command()
@guarded
def balance(wallet: WalletPath, as_json: Json = False,
            passphrase_file: PassFile = None) -> None:
    """Spendable coins per denomination, pending coins apart, spend deadlines."""
    with _wallet(wallet, passphrase_file) as w:
        b = w.balance()
    cur = b["currency"]
    t = Table(title=f"Spendable {money(b['spendable'], cur)}", title_justify="left")
    t.add_column("coin", justify="right")
    t.add_column("count", justify="right")
    t.add_column("value", justify="right")
    for d in b["denominations"]:
        t.add_row(money(d["value"], cur), str(d["count"]), money(d["value"] * d["count"], cur))
    if not as_json:
        console.print(t)
        if b["pending"]:
            console.print(f"Pending {money(b['pending'], cur)} in {len(b['pending_coins'])}"
                          " coins (ECASH-1 9.4); earliest free "
                          f"{when(b['pending_coins'][0]['until'])}", highlight=False)
        if b["past_spend_deadline"]:
            console.print(f"{money(b['past_spend_deadline'], cur)} past the spend deadline:"
                          " `ecash wallet renew`", highlight=False)
        for d in b["spend_deadlines"]:
            console.print(f"  {d['count']} coins ({money(d['value'], cur)}) spendable until"
                          f" {when(d['spend_deadline'])}", highlight=False)
        if b["disputes"]:
            console.print(f"[bold red]{len(b['disputes'])} disputed payment(s)[/]"
                          f" ({money(sum(d['amount'] for d in b['disputes']), cur)}): refused"
                          " or unanswered by the terminal, yet deposited; see"
                          " `ecash wallet disputes`", highlight=False)
        console.print(f"Keyset {b['keyset_fingerprint']}, bank key"
                      f" {b['master_key_fingerprint']}, last online"
                      f" {when(b['last_online_at'])}", highlight=False)
    else:
        typer.echo(json.dumps(b, indent=2))


@app.command()
@guarded
def history(wallet: WalletPath, limit: Annotated[int, typer.Option(min=1)] = 50,
            as_json: Json = False, passphrase_file: PassFile = None) -> None:
    """Loads, payments, exchanges and syncs, newest first."""
    with _wallet(wallet, passphrase_file) as w:
        events = w.history(limit)
        payments = w.payments(limit)
        cur = w.currency if w.store.meta("policy") else None
    t = Table()
    for col in ("when", "what", "amount", "detail"):
        t.add_column(col)
    for e in events:
        t.add_row(when(e["at"]), e["kind"], money(e["amount"], cur), e["detail"])
    p = Table(title="Payments")
    for col in ("when", "to", "amount", "coins", "status"):
        p.add_column(col)
    for x in payments:
        p.add_row(when(x["created_at"]), payee(x["merchant_id"]), money(x["amount"], cur),
                  str(x["coins"]), x["status"])
    if as_json:
        typer.echo(json.dumps({"events": events, "payments": payments}, indent=2))
    else:
        console.print(t)
        if payments:
            console.print(p)


@app.command()
@guarded
def disputes(wallet: WalletPath, as_json: Json = False,
             passphrase_file: PassFile = None) -> None:
    """Payments a terminal refused or never answered whose coins were deposited
    anyway: the evidence kept, and the bank's answer once filed (by `sync`)."""
    with _wallet(wallet, passphrase_file) as w:
        found = w.disputes()
    if as_json:
        typer.echo(json.dumps({"disputes": found}, indent=2, ensure_ascii=False))
        return
    if not found:
        console.print("No disputed payments.", highlight=False)
        return
    for d in found:
        filed = d["filed"]
        state = (f"filed: {filed.get('status')} ({filed.get('reason')})" if filed else
                 "filed at the next sync" if d["evidence"]["refusal"] else
                 "no signed refusal: take the evidence (--json) to the merchant")
        console.print(f"{when(d['created_at'])}  {payee(d['merchant_id'])}"
                      f"  {money(d['amount'], d['currency'])}\n  {d['explanation']}\n"
                      f"  request {d['request_id']}\n  {state}", highlight=False)


@app.command()
@guarded
def renew(wallet: WalletPath,
          within_days: Annotated[int, typer.Option(
              "--within-days", min=0, help="Renew coins whose spend deadline is this close.")
              ] = 30,
          as_json: Json = False, passphrase_file: PassFile = None) -> None:
    """Exchange coins whose key nears its spend deadline for new ones."""
    with _wallet(wallet, passphrase_file) as w, _progress("renewing", as_json) as bar:
        out = w.renew(within_days * 86_400, bar)
        cur = w.currency
    _emit(out, as_json, f"Renewed {out['renewed_coins']} coins"
          f" ({money(out['amount'], cur)}).")


@app.command("break")
@guarded
def break_(wallet: WalletPath,
           amount: Annotated[int | None, typer.Argument(
               help="Make this amount payable exactly (minor units).", min=1)] = None,
           value: Annotated[int | None, typer.Option(
               "--value", help="Break a coin of this value.", min=1)] = None,
           as_json: Json = False, passphrase_file: PassFile = None) -> None:
    """Exchange one large coin for smaller ones (default: the largest coin)."""
    with _wallet(wallet, passphrase_file) as w, _progress("exchanging", as_json) as bar:
        out = w.break_coin(amount=amount, value=value, progress=bar)
        cur = w.currency
    _emit(out, as_json, f"Broke a {money(out['broken'], cur)} coin into"
          f" {', '.join(money(v, cur) for v in out['into'])}.")


@app.command()
@guarded
def restore(wallet: WalletPath,
            bank: Annotated[str, typer.Option("--bank", help="The bank's URL.")],
            account: Annotated[str, typer.Option("--account", help="Your account id.")],
            phrase_file: Annotated[Path | None, typer.Option(
                "--phrase-file", help=f"Seed phrase [or env {PHRASE_ENV}, or a prompt].")
                ] = None,
            credential_file: Annotated[Path | None, typer.Option(
                "--credential-file", help=f"Holder credential [or env {CREDENTIAL_ENV}].")
                ] = None,
            master_key: Annotated[str | None, typer.Option("--master-key")] = None,
            kdf: Annotated[str, typer.Option(help="argon2id cost.")] = "moderate",
            as_json: Json = False, passphrase_file: PassFile = None) -> None:
    """Rebuild a wallet from its seed phrase and the bank's withdrawal records.

    Coins the bank does not hold as spent stay pending for the deposit window
    (the lost wallet may have paid with them); stop using the old wallet."""
    from ..wallet import KDF_PROFILES, Wallet
    from ..wallet.errors import WalletExists

    if kdf not in KDF_CHOICES:
        raise typer.BadParameter(f"--kdf must be one of {', '.join(KDF_CHOICES)}")
    if wallet.exists():
        raise WalletExists(f"{wallet} already exists; restore into a new --wallet path")
    pinned = _hex32(master_key, "--master-key")
    phrase = _read_secret(PHRASE_ENV, phrase_file, "Seed phrase", what="phrase")
    cred = _read_secret(CREDENTIAL_ENV, credential_file, "Bank credential", what="credential")
    passphrase = _read_secret(PASSPHRASE_ENV, passphrase_file, "New passphrase", confirm=True)
    with _progress("restoring", as_json) as bar:
        w, out = Wallet.restore(wallet, passphrase, phrase, bank, account, cred,
                                master_key=pinned, kdf=KDF_PROFILES[kdf], progress=bar)
    cur = w.currency
    w.close()
    _emit(out, as_json,
          f"Restored {out['coins']} coins: {out['spent']} already spent,"
          f" {out['pending']} pending ({money(out['pending_value'], cur)}) until"
          f" {when(out['pending_until'])}, then spendable if still unspent"
          f" (ECASH-1 9.4). {out['expired']} expired.")


@app.command()
@guarded
def close(wallet: WalletPath,
          yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask to confirm.")
                         ] = False,
          as_json: Json = False, passphrase_file: PassFile = None) -> None:
    """Redeem every spendable coin to the account and close the account."""
    if not yes:
        if not sys.stdin.isatty():
            _fail("confirmation_needed", "closing the account needs --yes", as_json)
        typer.confirm("Redeem all coins and close the account at the bank?", abort=True)
    with _wallet(wallet, passphrase_file) as w, _progress("closing", as_json) as bar:
        out = w.close_account(bar)
        cur = w.currency
    lines = [f"Redeemed {out['redeemed']['accepted']} coins"
             f" ({money(out['redeemed']['value'], cur)}); account"
             f" {out['account']['status']}, paid out after"
             f" {when(out['account'].get('payout_after'))}."]
    if out["pending_coins"]:
        lines.append(f"{out['pending_coins']} pending coins ({money(out['pending_value'], cur)})"
                     f" remain: run `ecash wallet close` again after"
                     f" {when(out['pending_until'])}.")
    _emit(out, as_json, "\n".join(lines))


@app.command()
@guarded
def check(wallet: WalletPath, as_json: Json = False,
          passphrase_file: PassFile = None) -> None:
    """Check the wallet file: integrity, every coin's secrets, no coin answered twice."""
    with _wallet(wallet, passphrase_file) as w:
        out = w.audit()
    if not out["ok"]:
        if as_json:
            typer.echo(json.dumps(out, indent=2))
        _fail("corrupt_wallet", "; ".join(out["problems"][:5]), False)
    _emit(out, as_json, "The wallet file is intact.")
