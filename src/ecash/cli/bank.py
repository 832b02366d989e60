"""``ecash bank``: set up, serve and operate a bank.

The operator's commands run on the bank's own machine (``--db`` and
``--keys``) or against a bank anywhere over HTTPS (``--bank URL`` with the
operator credential ``bank init`` printed, from ``--credential-file`` or
``ECASH_OPERATOR_CREDENTIAL``, never from the command line). Both ways go
through :mod:`ecash.bank.operator_client`, so a command prints the same
thing either way. Commands that need the key directory (``init``,
``signer``, ``serve``, ``keys rotate``) run on the bank's machine only.

Amounts people type are in the currency's major unit (``credit ACCT
1000.00``) and every amount printed is formatted by :mod:`ecash.money`;
``--json`` keeps minor units and says so. Failures follow
:mod:`ecash.cli.contract`: one line, never a traceback; exit 1 refused, 2
usage or unreadable input (a bad amount, a bad ``--db``, a refused policy
file), 3 the bank or its database not answering.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.markup import escape
from rich.table import Table

from ..money import MoneyError, format_money, parse_money
from .contract import (
    EXIT_PENDING,
    EXIT_REFUSED,
    EXIT_USAGE,
    console,
    emit,
    fail,
    with_amount_unit,
)

if TYPE_CHECKING:
    from ..bank.operator_client import Operations

app = typer.Typer(help="Run and operate the bank: set it up, serve it, and operate it on its"
                       " machine or over HTTPS.", no_args_is_help=True)
keys_app = typer.Typer(help="Denomination key generations (the keys coins are signed with).",
                       no_args_is_help=True)
fraud_app = typer.Typer(help="Double-spending cases: a coin spent twice names its spender.",
                        no_args_is_help=True)
dispute_app = typer.Typer(help="Holders' disputes (a merchant's signed refusal of a payment it"
                               " deposited anyway) and the cases they open against merchants.",
                          no_args_is_help=True)
policy_app = typer.Typer(help="The bank's policy: limits, denominations, periods and caps, from"
                              " a TOML file (docs/operator.md).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(fraud_app, name="fraud")
app.add_typer(dispute_app, name="dispute")
app.add_typer(policy_app, name="policy")

CREDENTIAL_ENV = "ECASH_OPERATOR_CREDENTIAL"
EXIT_OF = {"refused": EXIT_REFUSED, "usage": EXIT_USAGE, "unreachable": EXIT_PENDING}

Db = Annotated[str | None, typer.Option(
    "--db", envvar="ECASH_BANK_DB", show_envvar=True,
    help="The bank's database on this machine: sqlite:///PATH or postgresql://USER@HOST/NAME.")]
Keys = Annotated[Path | None, typer.Option(
    "--keys", envvar="ECASH_BANK_KEYS", show_envvar=True,
    help="Directory of the bank's secret key files (on the bank's machine).")]
BankUrl = Annotated[str | None, typer.Option(
    "--bank", envvar="ECASH_BANK_URL", show_envvar=True,
    help="Operate a bank over HTTPS at this URL instead of a local --db (with the operator"
         " credential).")]
CredentialFile = Annotated[Path | None, typer.Option(
    "--credential-file", show_default=f"${CREDENTIAL_ENV}",
    help="File holding the operator credential `bank init` printed (with --bank).")]
CaCert = Annotated[Path | None, typer.Option(
    "--cacert", envvar="ECASH_BANK_CACERT", show_envvar=True, show_default="the system's",
    help="PEM file of the certificate authority to trust for --bank.")]
Json = Annotated[bool, typer.Option(
    "--json", help="Print one JSON object (amounts in minor units) instead of text.")]
Account = Annotated[str, typer.Argument(metavar="ACCOUNT", help="The account id (acct-...).")]


# --- failures, the contract's way ------------------------------------------------

@contextmanager
def _errors(as_json: bool) -> Iterator[None]:
    """Every failure a user can cause as one line (or one JSON object)."""
    from ..bank.operator_client import OperatorError
    from ..bank.policy_file import PolicyError

    try:
        yield
    except OperatorError as exc:
        fail(exc.code, exc.message, as_json, EXIT_OF[exc.kind], **exc.extra)
    except PolicyError as exc:
        fail("bad_policy", f"policy refused, nothing changed: {exc}", as_json, EXIT_USAGE,
             key=exc.key)
    except MoneyError as exc:
        fail("bad_amount", str(exc), as_json, EXIT_USAGE)


def _usage(message: str, as_json: bool, code: str = "usage") -> NoReturn:
    fail(code, message, as_json, EXIT_USAGE)


def _credential(path: Path | None, as_json: bool) -> str:
    """The operator credential: a file, ``$ECASH_OPERATOR_CREDENTIAL``, or a
    hidden prompt at a terminal; never the command line."""
    if path is not None:
        try:
            return path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            _usage(f"cannot read the credential file {path}: {getattr(exc, 'strerror', exc)}",
                   as_json)
    if os.environ.get(CREDENTIAL_ENV, "").strip():
        return os.environ[CREDENTIAL_ENV].strip()
    if os.isatty(0) and not as_json:
        return typer.prompt("operator credential", hide_input=True).strip()
    _usage(f"no operator credential: give --credential-file FILE or set {CREDENTIAL_ENV}",
           as_json)


@contextmanager
def _ops(db: str | None, keys: Path | None, bank: str | None, credential_file: Path | None,
         cacert: Path | None, as_json: bool) -> Iterator[Operations]:
    """The operations of the bank named by the options, closed afterwards;
    failures inside are reported the contract's way."""
    from ..bank.operator_client import RemoteOperations, open_local

    with _errors(as_json):
        if bank:
            ops: Operations = RemoteOperations(bank, _credential(credential_file, as_json),
                                               cacert=cacert)
        else:
            if not db:
                _usage("say which bank: --db URL on the bank's machine (ECASH_BANK_DB), or"
                       " --bank URL over HTTPS (ECASH_BANK_URL)", as_json)
            if keys is None:
                _usage("give the bank's key directory: --keys DIR (ECASH_BANK_KEYS)", as_json)
            ops = open_local(db, keys)
        try:
            yield ops
        finally:
            ops.close()


def _local_only(bank: str | None, what: str, as_json: bool) -> None:
    if bank:
        _usage(f"`{what}` needs the bank's key directory: run it on the bank's machine with"
               " --db and --keys (not --bank)", as_json, "local_only")


def _money(currency: str) -> Any:
    return lambda minor: format_money(minor, currency)


def _when(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _table(title: str, columns: list[str]) -> Table:
    t = Table(title=title)
    for col in columns:
        t.add_column(col)
    return t


# --- set up and serve ------------------------------------------------------------------

@app.command()
def init(db: Annotated[str, typer.Option("--db", envvar="ECASH_BANK_DB", show_envvar=True,
                                         help="Database to create the bank in: sqlite:///PATH"
                                              " or postgresql://USER@HOST/NAME.")],
         keys: Annotated[Path, typer.Option("--keys", envvar="ECASH_BANK_KEYS", show_envvar=True,
                                            help="New directory for the secret key files.")],
         currency: Annotated[str, typer.Option(help="ISO 4217 code of the bank's currency"
                                                    " (fixed for good).")] = "CNY",
         policy: Annotated[Path | None, typer.Option(
             "--policy", metavar="FILE.toml",
             help="The policy to start with (see `ecash bank policy show`); default: the"
                  " built-in one.")] = None,
         as_json: Json = False) -> None:
    """Create the master key, the first key generation, the signed policy and the
    operator credential (shown once)."""
    from ..bank.config import BankConfig
    from ..bank.errors import BankError
    from ..bank.operator_client import OperatorError, check_db_url, database_problem
    from ..bank.policy_file import read_policy_file
    from ..bank.service import Bank
    from ..money import check_currency
    from ..wire.fingerprint import master_key_fingerprint

    with _errors(as_json):
        check_currency(currency)
        config = BankConfig(currency=currency)
        if policy is not None:
            try:
                config = read_policy_file(policy, config, currency_fixed=False)
            except (OSError, UnicodeDecodeError) as exc:
                _usage(f"cannot read {policy}: {getattr(exc, 'strerror', exc)}", as_json)
        check_db_url(db, must_exist=False)
        try:
            bank, token = Bank.init(db, keys, config)
        except BankError as exc:
            raise OperatorError(exc.code, f"{exc.detail} ({db})") from None
        except FileExistsError:
            raise OperatorError("keys_exist", f"{keys} exists already: give a new directory"
                                " for the keys (--keys)", "usage") from None
        except Exception as exc:
            raise database_problem(exc, db) from None
    master = bank.master_public_key
    data = {"master_public_key": master.hex(),
            "master_key_fingerprint": master_key_fingerprint(master),
            "keyset_fingerprint": _keyset_fingerprint(bank), "operator_credential": token,
            "currency": bank.config.currency}
    bank.engine.dispose()
    if as_json:
        emit(data, True)
        return
    # soft_wrap: a key or fingerprint is never folded, whatever the terminal's width
    console.print(f"Bank initialised ({data['currency']}).\n"
                  f"  master public key      {data['master_public_key']}"
                  f"\n  master key fingerprint {data['master_key_fingerprint']}"
                  f"\n  keyset fingerprint     {data['keyset_fingerprint']}"
                  f"\n  operator credential    [bold]{token}[/] (shown once; keep it in a"
                  f" file for --credential-file)\n"
                  "Wallets and terminals show that fingerprint when they first trust this"
                  " bank: compare theirs with the one above.",
                  highlight=False, soft_wrap=True)


def _keyset_fingerprint(bank: Any) -> str:
    from ..wire.json import keyset_fingerprint

    return keyset_fingerprint(bank.keyset())


@app.command()
def signer(keys: Annotated[Path, typer.Option("--keys", envvar="ECASH_BANK_KEYS",
                                              show_envvar=True,
                                              help="Directory of the bank's secret key files.")],
           socket: Annotated[Path, typer.Option(
               "--socket", envvar="ECASH_BANK_SIGNER", show_envvar=True,
               help="UNIX socket to listen on.")],
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
        _usage(f"cannot open the key directory {keys}: {exc}", False)

    def stop(*_: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        serve_signer(local, socket, mode=0o660 if group_shared else 0o600,
                     ready=lambda: console.print(f"signer listening on {socket}",
                                                 highlight=False, soft_wrap=True))
    except FileExistsError as exc:
        _usage(str(exc), False)
    except KeyboardInterrupt:
        pass


Signer = Annotated[Path, typer.Option("--signer", envvar="ECASH_BANK_SIGNER", show_envvar=True,
                                      help="UNIX socket of `ecash bank signer`.")]


@app.command()
def serve(db: Annotated[str, typer.Option("--db", envvar="ECASH_BANK_DB", show_envvar=True,
                                          help="The bank's database: sqlite:///PATH or"
                                               " postgresql://USER@HOST/NAME.")],
          signer: Signer, host: str = "127.0.0.1", port: int = 8400,
          workers: Annotated[int, typer.Option(help="Worker processes (one per core).")] = 1,
          tls_cert: Annotated[str | None, typer.Option("--tls-cert",
                                                       help="PEM certificate chain")] = None,
          tls_key: Annotated[str | None, typer.Option("--tls-key", help="PEM key")] = None,
          metrics_listen: Annotated[str | None, typer.Option(
              "--metrics-listen", metavar="HOST:PORT",
              help="Also serve /metrics here without a credential (keep it on the"
                   " operator's network); on the API it needs an operator credential.")
              ] = None,
          rate_limit_storage: Annotated[str | None, typer.Option(
              "--rate-limit-storage", envvar="ECASH_RATE_LIMIT_STORAGE", show_envvar=True,
              metavar="URI",
              help="Where the workers share their rate limits: redis://HOST:PORT"
                   " (needed with more than one worker; default memory://).")
              ] = None) -> None:
    """Serve the HTTP API (run it behind TLS in production); every use of a
    secret key is a question to the signer (`ecash bank signer`). Prints the
    URL and the master key's fingerprint first."""
    from ..bank.operator_client import OperatorError, check_db_url, database_problem
    from ..bank.server import serve as run
    from ..bank.service import Bank
    from ..bank.signer import SignerClient
    from ..serving.threaded import check_port_free, parse_listen

    if metrics_listen:
        try:
            parse_listen(metrics_listen)
        except ValueError as exc:
            _usage(f"--metrics-listen: {exc}", False)
    if bool(tls_cert) != bool(tls_key):
        _usage("give both --tls-cert and --tls-key, or neither", False)
    with _errors(False):
        check_db_url(db, must_exist=True)
        try:
            bank = Bank.open(db, SignerClient(signer))  # fail early on a bad database
        except OperatorError:
            raise
        except Exception as exc:
            raise database_problem(exc, db) from None
    _check_signer(bank)
    check_port_free(host, port)  # before announcing it
    _announce(bank, host, port, tls=bool(tls_cert))
    run(db, str(signer), host=host, port=port, workers=workers, tls_cert=tls_cert, tls_key=tls_key,
        metrics_listen=metrics_listen, rate_limit_storage=rate_limit_storage)


def _check_signer(bank: Any) -> None:
    """Refuse a signer holding another bank's master key; a signer not yet
    up is only reported (the workers connect on their first withdrawal)."""
    from ..bank.signer import SignerUnavailable

    try:
        master = bank.signer.public_info().master_public_key
    except SignerUnavailable as exc:
        console.print(f"[yellow]warning[/]: {escape(exc.detail)}", soft_wrap=True)
        return
    if master != bank.master_public_key:
        fail("wrong_signer", "the signer holds another bank's master key", False, EXIT_USAGE)


def _announce(bank: Any, host: str, port: int, *, tls: bool) -> None:
    """The URL and the master key's fingerprint, for people to compare with
    what wallets and terminals show when they pin this bank (printed before
    the server's own log, and flushed: stdout may be a pipe)."""
    from ..wire.fingerprint import master_key_fingerprint

    where = f"[{host}]" if ":" in host else host
    fp = master_key_fingerprint(bank.master_public_key)
    console.print(f"Serving the bank at {'https' if tls else 'http'}://{where}:{port}\n"
                  f"  master key fingerprint {fp}", highlight=False, soft_wrap=True,
                  markup=False)
    console.file.flush()
    bank.engine.dispose()


# --- accounts -------------------------------------------------------------------------

@app.command("open-account")
def open_account(holder: Annotated[str, typer.Option("--holder", help="The holder's name.")],
                 db: Db = None, keys: Keys = None, bank: BankUrl = None,
                 credential_file: CredentialFile = None, cacert: CaCert = None,
                 as_json: Json = False) -> None:
    """Open a holder account; prints its id and the holder's credential (shown once)."""
    with _ops(db, keys, bank, credential_file, cacert, as_json) as ops, _errors(as_json):
        out = ops.open_account(holder)
    emit(out, as_json, f"account {out['account_id']}\ncredential [bold]{out['credential']}[/]"
                       " (shown once: give it to the holder)")


@app.command()
def credit(account: Account,
           amount: Annotated[str, typer.Argument(
               help="Amount paid in, in the currency's major unit: 1000.00 is a thousand"
                    " yuan for a CNY bank.")],
           db: Db = None, keys: Keys = None, bank: BankUrl = None,
           credential_file: CredentialFile = None, cacert: CaCert = None,
           reference: Annotated[str | None, typer.Option(
               help="Idempotency reference: a retry with it credits once.",
               show_default="a new random one")] = None,
           as_json: Json = False) -> None:
    """Credit money paid in to ACCOUNT (from outside: a transfer, cash at a counter)."""
    ref = reference or secrets.token_hex(8)
    with _ops(db, keys, bank, credential_file, cacert, as_json) as ops, _errors(as_json):
        currency = ops.currency()
        minor = parse_money(amount, currency)
        out = ops.credit(account, minor, ref)
    m = _money(currency)
    emit(with_amount_unit({**out, "amount": minor, "reference": ref, "currency": currency}),
         as_json, f"{account}: credited {m(minor)}, balance {m(out['balance'])}"
                  f" (reference {escape(ref)})")


@app.command("register-merchant")
def register_merchant(account: Account,
                      merchant_id: Annotated[str, typer.Option(
                          "--merchant-id", help="The name wallets show before paying.")],
                      db: Db = None, keys: Keys = None, bank: BankUrl = None,
                      credential_file: CredentialFile = None, cacert: CaCert = None,
                      as_json: Json = False) -> None:
    """Make ACCOUNT a merchant; prints the merchant credential (shown once)."""
    with _ops(db, keys, bank, credential_file, cacert, as_json) as ops, _errors(as_json):
        out = ops.register_merchant(account, merchant_id)
    emit(out, as_json, f"merchant {escape(merchant_id)} on {account}\ncredential"
                       f" [bold]{out['credential']}[/] (shown once: give it to the merchant)")


@app.command()
def freeze(account: Account,
           reason: Annotated[str, typer.Option(
               "--reason", help="Why (the holder's wallet shows it); recorded with the time.")],
           db: Db = None, keys: Keys = None, bank: BankUrl = None,
           credential_file: CredentialFile = None, cacert: CaCert = None,
           as_json: Json = False) -> None:
    """Freeze ACCOUNT: no withdrawals or closing until it is unfrozen."""
    with _ops(db, keys, bank, credential_file, cacert, as_json) as ops, _errors(as_json):
        out = ops.set_status(account, "frozen", reason)
    emit(out, as_json, f"{account} frozen: {escape(out['frozen_reason'] or reason)}")


@app.command()
def unfreeze(account: Account,
             note: Annotated[str, typer.Option(
                 "--note", help="Why it is lifted; recorded with the time.")],
             db: Db = None, keys: Keys = None, bank: BankUrl = None,
             credential_file: CredentialFile = None, cacert: CaCert = None,
             as_json: Json = False) -> None:
    """Unfreeze ACCOUNT (frozen by the operator or by a double-spending case)."""
    with _ops(db, keys, bank, credential_file, cacert, as_json) as ops, _errors(as_json):
        out = ops.set_status(account, "active", note)
    emit(out, as_json, f"{account} active again ({escape(note)})")


@app.command()
def account(account_id: Account,
            db: Db = None, keys: Keys = None, bank: BankUrl = None,
            credential_file: CredentialFile = None, cacert: CaCert = None,
            as_json: Json = False) -> None:
    """An account: balance, status, why it is frozen, and every freeze and unfreeze."""
    with _ops(db, keys, bank, credential_file, cacert, as_json) as ops, _errors(as_json):
        a = ops.account(account_id)
    if as_json:
        emit(with_amount_unit(a), True)
        return
    m = _money(a["currency"])
    lines = [f"account {a['account_id']} ({escape(a['holder'])}): {a['status']}",
             f"  balance {m(a['balance'])}; loads up to {m(a['daily_load_limit'])} a day,"
             f" {m(a['net_load_limit'])} net over the deposit window"]
    if a["merchant_id"]:
        lines.append(f"  merchant {escape(a['merchant_id'])}")
    if a["status"] == "frozen":
        lines.append(f"  frozen since {_when(a['frozen_at'])}: {escape(a['frozen_reason'])}")
    for e in a["events"]:
        case = f" (case {e['case']})" if e["case"] is not None else ""
        lines.append(f"  {_when(e['at'])}  {e['action']}: {escape(e['text'])}{case}")
    console.print("\n".join(lines), highlight=False, soft_wrap=True)


@app.command()
def audit(db: Db = None, keys: Keys = None, bank: BankUrl = None,
          credential_file: CredentialFile = None, cacert: CaCert = None,
          as_json: Json = False) -> None:
    """Recompute every balance and the e-cash liability (what the bank owes for
    coins not yet deposited); exit 1 on any mismatch."""
    with _ops(db, keys, bank, credential_file, cacert, as_json) as ops, _errors(as_json):
        rep, currency = ops.audit(), ops.currency()
    if as_json:
        emit(with_amount_unit({**rep, "currency": currency}), True)
    else:
        m = _money(currency)
        t = _table("Audit", ["figure", "amount"])
        t.columns[1].justify = "right"
        for k, v in rep["figures"].items():
            t.add_row(k.replace("_", " "), m(v))
        console.print(t)
        for p in rep["problems"]:
            console.print(f"[bold red]MISMATCH[/] {escape(p)}", soft_wrap=True)
        console.print("[green]balanced[/]" if rep["ok"] else "[bold red]NOT BALANCED[/]")
    if not rep["ok"]:
        raise typer.Exit(EXIT_REFUSED)


@app.command()
def maintenance(db: Db = None, keys: Keys = None, bank: BankUrl = None,
                credential_file: CredentialFile = None, cacert: CaCert = None,
                as_json: Json = False) -> None:
    """Book the value of coins never deposited before their generation's
    deposit deadline (breakage), and pay out closed accounts that are due."""
    with _ops(db, keys, bank, credential_file, cacert, as_json) as ops, _errors(as_json):
        out, currency = ops.maintenance(), ops.currency()
    m = _money(currency)
    paid = ", ".join(f"{p['account_id']} {m(p['amount'])}" for p in out["payouts"])
    emit(with_amount_unit({**out, "currency": currency}), as_json,
         f"closed generations: {', '.join(map(str, out['closed_generations'])) or 'none'};"
         f" payouts: {paid or 'none'}")


# --- keys --------------------------------------------------------------------------------

@keys_app.command("rotate")
def rotate(db: Db = None, keys: Keys = None, bank: BankUrl = None,
           as_json: Json = False) -> None:
    """Add the next generation (with the policy's denominations); its withdrawal
    window starts where the newest one's ends. On the bank's machine only."""
    _local_only(bank, "keys rotate", as_json)
    with _ops(db, keys, None, None, None, as_json) as ops, _errors(as_json):
        number = ops.bank.add_generation()  # type: ignore[attr-defined]
        gens = ops.generations()
    g = next(x for x in gens if x["generation"] == number)
    emit({"generation": number, **g}, as_json,
         f"generation {number} added: withdrawals from {_when(g['withdraw_start'])}"
         f" to {_when(g['withdraw_end'])}, deposits until {_when(g['deposit_end'])}")


@keys_app.command("list")
def list_keys(db: Db = None, keys: Keys = None, bank: BankUrl = None,
              credential_file: CredentialFile = None, cacert: CaCert = None,
              as_json: Json = False) -> None:
    """Every key generation with its windows (when its coins can be withdrawn
    and deposited)."""
    with _ops(db, keys, bank, credential_file, cacert, as_json) as ops, _errors(as_json):
        gens = ops.generations()
    emit({"generations": gens}, as_json, "\n".join(
        f"generation {g['generation']}: withdrawals {_when(g['withdraw_start'])} to"
        f" {_when(g['withdraw_end'])}, deposits until {_when(g['deposit_end'])}"
        f"{' (closed)' if g['closed'] else ''}" for g in gens) or "no generations")


# --- fraud and disputes -------------------------------------------------------------------

@fraud_app.command("list")
def fraud_list(db: Db = None, keys: Keys = None, bank: BankUrl = None,
               credential_file: CredentialFile = None, cacert: CaCert = None,
               as_json: Json = False) -> None:
    """Double-spending cases; a case a holder's dispute voided says so."""
    with _ops(db, keys, bank, credential_file, cacert, as_json) as ops, _errors(as_json):
        cases, currency = ops.fraud_cases(), ops.currency()
    if as_json:
        emit(with_amount_unit({"cases": cases, "currency": currency}), True)
        return
    m = _money(currency)
    t = _table("Double-spending cases", ["case", "account", "value", "from balance",
                                         "receivable", "alarm", "voided"])
    for c in cases:
        named = c["account_id"] or ("UNREGISTERED" if c["alarm"] else "nobody (refused transcript)")
        t.add_row(str(c["case"]), named, m(c["value"]), m(c["from_balance"]),
                  m(c["receivable"]), "ALARM" if c["alarm"] else "",
                  f"by dispute {c['voided_by']}" if c["voided_by"] is not None else "")
    console.print(t)


@fraud_app.command("show")
def fraud_show(case: Annotated[int, typer.Argument(metavar="CASE", help="The case number.")],
               out: Annotated[Path | None, typer.Option(
                   "--out", metavar="DIR",
                   help="Write key.json, spend1.json and spend2.json here (files 0600), the"
                        " inputs of `ecash verify double-spend`.")] = None,
               db: Db = None, keys: Keys = None, bank: BankUrl = None,
               credential_file: CredentialFile = None, cacert: CaCert = None,
               as_json: Json = False) -> None:
    """A case with its proof: the coin's key and both spends, which name the
    spender (anyone can check them with `ecash verify double-spend`)."""
    with _ops(db, keys, bank, credential_file, cacert, as_json) as ops, _errors(as_json):
        c, currency = ops.fraud_case(case), ops.currency()
    files = _write_proof(c, out, as_json) if out is not None else None
    if as_json:
        emit(with_amount_unit({**c, "currency": currency,
                               **({"files": files} if files else {})}), True)
        return
    m = _money(currency)
    named = c["account_id"] or ("an UNREGISTERED identity" if c["alarm"] else "nobody")
    lines = [f"case {c['case']}: coin {c['coin_id']} ({m(c['value'])}) spent twice,"
             f" names {named}",
             f"  identity {c['identity']}; taken from the balance {m(c['from_balance'])},"
             f" owed to the bank {m(c['receivable'])}; opened {_when(c['created_at'])}"]
    if files:
        lines.append(f"proof written to {out}; check it with:\n  ecash verify double-spend"
                     f" {files['spend1']} {files['spend2']} --key {files['key']}")
    else:
        lines.append("  write the proof with --out DIR, or see it all with --json")
    console.print("\n".join(lines), highlight=False, markup=False, soft_wrap=True)


def _write_proof(case: dict[str, Any], out: Path, as_json: bool) -> dict[str, str]:
    """The key and the two spends as ``ecash verify double-spend`` reads them."""
    from ..files import private_dir, write_private

    try:
        private_dir(out)
        files = {}
        for name in ("key", "spend1", "spend2"):
            path = out / f"{name}.json"
            write_private(path, json.dumps(case[name], indent=2) + "\n")
            files[name] = str(path)
    except OSError as exc:
        _usage(f"cannot write the proof to {out}: {exc.strerror or exc}", as_json)
    return files


@dispute_app.command("list")
def dispute_list(db: Db = None, keys: Keys = None, bank: BankUrl = None,
                 credential_file: CredentialFile = None, cacert: CaCert = None,
                 as_json: Json = False) -> None:
    """Every dispute, upheld or rejected, with the merchant case an upheld one opened."""
    with _ops(db, keys, bank, credential_file, cacert, as_json) as ops, _errors(as_json):
        rows = ops.disputes()
    if as_json:
        emit({"disputes": rows}, True)
        return
    t = _table("Disputes", ["dispute", "holder", "merchant", "status", "merchant case",
                            "reason"])
    for d in rows:
        t.add_row(str(d["dispute"]), d["account_id"], escape(d["merchant_id"] or "?"),
                  d["status"], "" if d["case"] is None else str(d["case"]), escape(d["reason"]))
    console.print(t)


@dispute_app.command("show")
def dispute_show(dispute: Annotated[int, typer.Argument(metavar="DISPUTE")],
                 db: Db = None, keys: Keys = None, bank: BankUrl = None,
                 credential_file: CredentialFile = None, cacert: CaCert = None,
                 as_json: Json = False) -> None:
    """A dispute with its evidence and, if upheld, the case against the merchant."""
    with _ops(db, keys, bank, credential_file, cacert, as_json) as ops, _errors(as_json):
        d, currency = ops.dispute(dispute), ops.currency()
    if as_json:
        emit(with_amount_unit({**d, "currency": currency}), True)
        return
    m = _money(currency)
    lines = [f"dispute {d['dispute']}: {d['status']} ({d['reason']})",
             f"  holder {d['account_id']}, merchant {d['merchant_id'] or '?'}",
             f"  request {d['request_id']}, payment digest {d['payment_digest']}",
             f"  refusal code {d['evidence']['refusal']['code']}"]
    if d["voided_fraud_cases"]:
        lines.append("  voided fraud cases: " + ", ".join(map(str, d["voided_fraud_cases"])))
    c = d["merchant_case"]
    if c is not None:
        lines.append(f"merchant case {c['case']}: value {m(c['value'])}, taken from the"
                     f" merchant {m(c['from_balance'])}, returned to holders {m(c['refunded'])}")
        lines += [f"  deposited coin {x['coin_id']} ({m(x['value'])})" for x in c["deposited"]]
    console.print("\n".join(lines), highlight=False, markup=False, soft_wrap=True)


# --- policy ----------------------------------------------------------------------------------

@policy_app.command("show")
def policy_show(db: Db = None, keys: Keys = None, bank: BankUrl = None,
                credential_file: CredentialFile = None, cacert: CaCert = None,
                as_json: Json = False) -> None:
    """The policy in force, as a TOML file `policy set` takes (amounts in major units);
    with --json, every setting in minor units."""
    from ..bank.policy_file import policy_toml

    with _ops(db, keys, bank, credential_file, cacert, as_json) as ops, _errors(as_json):
        data, config = ops.policy(), ops.config()
    if as_json:
        emit(with_amount_unit(data), True)
        return
    typer.echo(f"# signed {_when(data['issued_at'])} (issued_at {data['issued_at']})")
    typer.echo(policy_toml(config), nl=False)


@policy_app.command("set")
def policy_set(file: Annotated[Path, typer.Argument(metavar="FILE.toml", help=(
                   "The policy file; keys it leaves out keep their current values."))],
               db: Db = None, keys: Keys = None, bank: BankUrl = None,
               credential_file: CredentialFile = None, cacert: CaCert = None,
               as_json: Json = False) -> None:
    """Check FILE.toml and make it the bank's policy, signed anew by the master
    key. Refused whole, naming the key, if anything in it is wrong (exit 2).
    New denominations apply from the next key generation (`keys rotate`);
    running servers pick the rest up within seconds (docs/operator.md)."""
    from ..bank.policy_file import AMOUNTS, SETTINGS, read_policy_file

    try:
        file.read_bytes()
    except OSError as exc:
        _usage(f"cannot read {file}: {exc.strerror or exc}", as_json)
    with _ops(db, keys, bank, credential_file, cacert, as_json) as ops, _errors(as_json):
        old = ops.config()
        try:
            new = read_policy_file(file, old)
        except UnicodeDecodeError:
            _usage(f"{file} is not UTF-8 text", as_json)
        data = ops.set_policy(new)
    changed = [k for k in SETTINGS if getattr(old, k) != getattr(new, k)]
    if as_json:
        emit(with_amount_unit({**data, "changed": changed}), True)
        return
    m = _money(new.currency)

    def shown(name: str, value: Any) -> str:
        if name == "denominations":
            return ", ".join(m(v) for v in value)
        return m(value) if name in AMOUNTS else str(value)

    lines = [f"new policy signed ({_when(data['issued_at'])})"]
    lines += [f"  {k}: {shown(k, getattr(old, k))} -> {shown(k, getattr(new, k))}"
              for k in changed] or ["  (no setting changed)"]
    if "denominations" in changed or {"withdraw_period_s", "spend_period_s"} & set(changed):
        lines.append("denominations and generation periods apply from the next key generation:"
                     " `ecash bank keys rotate` on the bank's machine")
    console.print("\n".join(lines), highlight=False, markup=False, soft_wrap=True)

