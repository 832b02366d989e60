"""The plumbing under ``ecash wallet``: its options, secrets, amounts and the
CLI contract (:mod:`ecash.cli.contract`) for every failure.

Kept apart from the commands so that each command reads as what it does for
the holder; nothing here knows the protocol.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..money import MoneyError, format_money, parse_money
from ..wire.payee import shown
from . import contract
from .contract import EXIT_PENDING, EXIT_REFUSED, EXIT_USAGE

if TYPE_CHECKING:
    from ..wallet import Wallet
    from ..wallet.errors import WalletError

PASSPHRASE_ENV = "ECASH_WALLET_PASSPHRASE"
CREDENTIAL_ENV = "ECASH_WALLET_CREDENTIAL"
PHRASE_ENV = "ECASH_WALLET_PHRASE"
WALLET_ENV = "ECASH_WALLET"
EXIT_INTERRUPTED = 130
KDF_CHOICES = ("interactive", "moderate", "sensitive")

# Wallet error codes that are not "refused" (exit 1): input the holder must fix
# (exit 2), or an outcome not known yet because something is unreachable (exit 3).
_EXIT_OF = {
    **dict.fromkeys(("no_wallet", "wallet_exists", "no_passphrase", "no_credential",
                     "no_phrase", "bad_amount", "bad_request_text", "no_request",
                     "unreadable_file", "confirmation_needed"), EXIT_USAGE),
    **dict.fromkeys(("bank_unreachable", "request_unreachable", "payment_pending"),
                    EXIT_PENDING),
}


def _default_path() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ecash" / "wallet.db"


# Help texts avoid square brackets: Rich would read them as markup and drop them.
WalletPath = Annotated[Path, typer.Option(
    "--wallet", envvar=WALLET_ENV, show_envvar=True, default_factory=_default_path,
    show_default="$XDG_DATA_HOME/ecash/wallet.db", help="The wallet file.")]
Json = Annotated[bool, typer.Option(
    "--json", help="One JSON object on stdout (amounts in minor units).")]
PassFile = Annotated[Path | None, typer.Option(
    "--passphrase-file",
    help=f"Read the wallet's passphrase from this file (else env {PASSPHRASE_ENV},"
    " else a hidden prompt).")]
CredentialFile = Annotated[Path | None, typer.Option(
    "--credential-file",
    help=f"Your bank credential from this file (else env {CREDENTIAL_ENV}, else a hidden"
    " prompt).")]
MasterKey = Annotated[str | None, typer.Option(
    "--master-key", show_default="trust the first key seen",
    help="The bank's master public key you expect (64 hex).")]
Kdf = Annotated[str, typer.Option(
    help=f"How hard the passphrase is to guess by brute force (argon2id cost):"
    f" {', '.join(KDF_CHOICES)}.", show_default=True)]


def payee(merchant_id: str) -> str:
    """A payee name as the console shows it: controls made visible (a name the
    bank never checked cannot reorder the line) and Rich markup escaped (PRECIS
    allows ``[`` and ``]``, which Rich would read as styles)."""
    return escape(shown(merchant_id))


def money_text(minor: int | None, currency: str | None) -> str:
    """An amount for people (``CNY 1,000.00``); ``-`` when there is none.

    A wallet not yet registered knows no currency: it holds nothing, so its
    amounts are shown bare.
    """
    if minor is None:
        return "-"
    if not currency:
        return str(minor)
    return escape(format_money(minor, currency))


def parse_amount(text: str, currency: str, what: str = "amount") -> int:
    """An amount the holder typed (major units) in minor units, or exit 2 in words."""
    from ..wallet.errors import WalletError

    try:
        return parse_money(text, currency)
    except MoneyError as exc:
        raise WalletError(f"bad {what}: {exc}", "bad_amount") from None


def when(ts: int | None) -> str:
    if not ts:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def hex32(value: str | None, what: str) -> bytes | None:
    if value is None:
        return None
    v = value.strip().lower()
    if len(v) != 64 or any(c not in "0123456789abcdef" for c in v):
        raise typer.BadParameter(f"{what}: expected 64 hex characters (32 bytes)")
    return bytes.fromhex(v)


def exit_code_of(exc: WalletError) -> int:
    """The contract's exit code for a wallet error (refused, unless listed).

    A terminal's answer (a ``TerminalError``'s ``outcome``) decides on its own:
    coins released by a signed refusal are a refusal (1); coins left pending,
    paid but not confirmed, are an outcome not known yet (3).
    """
    outcome = getattr(exc, "outcome", None)
    if outcome is not None:
        return EXIT_REFUSED if outcome == "released" else EXIT_PENDING
    return _EXIT_OF.get(exc.code, EXIT_REFUSED)


F = TypeVar("F", bound=Callable[..., Any])


def guarded(fn: F) -> F:
    """Every failure a holder can cause, as one line and the contract's exit code."""

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
            contract.fail(exc.code, str(exc), as_json, exit_code_of(exc),
                          **getattr(exc, "extra", {}))
        except EcashError as exc:
            contract.fail(exc.code, f"malformed input ({exc.code}): {exc}", as_json)
        except sqlite3.DatabaseError as exc:
            err = CorruptWallet(f"the wallet file is damaged ({exc})")
            contract.fail(err.code, str(err), as_json)
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            contract.fail("unreadable_file", f"{exc.strerror or exc}{where}", as_json,
                          EXIT_USAGE)
        except KeyboardInterrupt:
            contract.fail("interrupted", "interrupted (anything recorded is kept;"
                          " `ecash wallet sync` resumes)", as_json, EXIT_INTERRUPTED)

    return run  # type: ignore[return-value]


def read_secret(env: str, path: Path | None, prompt: str, *, confirm: bool = False,
                what: str = "passphrase") -> str:
    """A secret from a file, ``$env`` or a hidden prompt; never from the command line."""
    from ..wallet.errors import WalletError

    if path is not None:
        try:
            value = path.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or "not text"
            raise WalletError(f"cannot read the {what} file {path}: {why}",
                              "unreadable_file") from None
    elif os.environ.get(env):
        value = os.environ[env]
    elif sys.stdin.isatty():
        value = typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
    else:
        raise WalletError(f"no {what}: set {env}, pass a file, or run on a terminal",
                          f"no_{what}")
    if not value:
        raise WalletError(f"the {what} is empty", f"no_{what}")
    return value


def open_wallet(path: Path, passphrase_file: Path | None) -> Wallet:
    from ..wallet import Wallet
    from ..wallet.errors import NoWallet

    if not path.is_file():
        raise NoWallet(f"no wallet at {path} (create one with `ecash wallet init`)")
    return Wallet.open(path, read_secret(PASSPHRASE_ENV, passphrase_file, "Passphrase"))


@contextmanager
def wallet_at(path: Path, passphrase_file: Path | None) -> Iterator[Wallet]:
    w = open_wallet(path, passphrase_file)
    try:
        yield w
    finally:
        w.close()


@contextmanager
def progress(label: str, as_json: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr when it is a terminal (never in ``--json``)."""
    if as_json or not contract.err_console.is_terminal:
        yield None
        return
    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=contract.err_console, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def with_money(data: dict[str, Any], currency: str | None) -> dict[str, Any]:
    """A ``--json`` result that holds amounts: minor units, said so, with the currency."""
    return contract.with_amount_unit({**data, "currency": currency})
