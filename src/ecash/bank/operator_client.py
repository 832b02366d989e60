"""The operator's commands, one code path for a bank on this machine and a
bank over HTTPS.

``ecash bank`` builds its results from an :class:`Operations`: either
:class:`LocalOperations` (the core on the database, as the bank's own
machine runs it) or :class:`RemoteOperations` (the operator API under
``/v1/operator``, with the operator credential ``bank init`` printed). Both
answer the same dictionaries (amounts in minor units) and raise the same
:class:`OperatorError`, so the CLI formats one result whichever way it came.

Opening a local bank turns the database's failures into words a person can
act on (:func:`open_local`): a URL that is not one, a file that is not there,
a server that is down or refuses the password.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .config import BankConfig
from .policy_file import SETTINGS


@dataclass
class OperatorError(Exception):
    """A command that could not be done: a stable code, words, and whether
    the bank refused (``kind="refused"``), the input was unusable
    (``"usage"``) or the bank or its database did not answer (``"unreachable"``)."""

    code: str
    message: str
    kind: str = "refused"
    extra: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


USAGE_CODES = frozenset({"bad_policy", "bad_amount", "bad_text", "bad_holder", "bad_reference",
                         "bad_merchant_id", "bad_status", "not_initialised"})
UNREACHABLE_STATUS = (502, 503, 504)


class Operations(Protocol):
    """What an operator can do, wherever the bank runs."""

    where: str

    def currency(self) -> str: ...
    def open_account(self, holder: str) -> dict[str, Any]: ...
    def credit(self, account_id: str, amount: int, reference: str) -> dict[str, Any]: ...
    def register_merchant(self, account_id: str, merchant_id: str) -> dict[str, Any]: ...
    def set_status(self, account_id: str, status: str, text: str) -> dict[str, Any]: ...
    def account(self, account_id: str) -> dict[str, Any]: ...
    def fraud_cases(self) -> list[dict[str, Any]]: ...
    def fraud_case(self, case: int) -> dict[str, Any]: ...
    def disputes(self) -> list[dict[str, Any]]: ...
    def dispute(self, dispute: int) -> dict[str, Any]: ...
    def audit(self) -> dict[str, Any]: ...
    def maintenance(self) -> dict[str, Any]: ...
    def generations(self) -> list[dict[str, Any]]: ...
    def policy(self) -> dict[str, Any]: ...
    def config(self) -> BankConfig: ...
    def set_policy(self, config: BankConfig) -> dict[str, Any]: ...
    def close(self) -> None: ...


# --- on this machine --------------------------------------------------------------

class LocalOperations:
    """The core on the bank's database (and key directory)."""

    def __init__(self, bank: Any, where: str) -> None:
        self.bank, self.where = bank, where

    def _do(self, fn: Any, *args: Any) -> Any:
        from .errors import BankError

        try:
            return fn(*args)
        except BankError as exc:
            raise _from_problem(exc.status, exc.code, exc.detail, exc.extra) from None

    def currency(self) -> str:
        return self.bank.config.currency

    def open_account(self, holder: str) -> dict[str, Any]:
        account_id, token = self._do(self.bank.open_account, holder)
        return {"account_id": account_id, "credential": token}

    def credit(self, account_id: str, amount: int, reference: str) -> dict[str, Any]:
        balance = self._do(self.bank.credit, account_id, amount, reference)
        return {"account_id": account_id, "balance": balance}

    def register_merchant(self, account_id: str, merchant_id: str) -> dict[str, Any]:
        token = self._do(self.bank.register_merchant, account_id, merchant_id)
        return {"account_id": account_id, "merchant_id": merchant_id, "credential": token}

    def set_status(self, account_id: str, status: str, text: str) -> dict[str, Any]:
        return self._do(self.bank.set_status, account_id, status, text)

    def account(self, account_id: str) -> dict[str, Any]:
        return self._do(self.bank.operator_account_info, account_id)

    def fraud_cases(self) -> list[dict[str, Any]]:
        return self._do(self.bank.fraud_overview)

    def fraud_case(self, case: int) -> dict[str, Any]:
        return self._do(self.bank.fraud_case, case)

    def disputes(self) -> list[dict[str, Any]]:
        return self._do(self.bank.dispute_list)

    def dispute(self, dispute: int) -> dict[str, Any]:
        return self._do(self.bank.dispute_info, dispute)

    def audit(self) -> dict[str, Any]:
        rep = self._do(self.bank.audit)
        return {"ok": rep.ok, "problems": rep.problems, "figures": rep.figures}

    def maintenance(self) -> dict[str, Any]:
        closed = self._do(self.bank.close_generations)
        paid = self._do(self.bank.release_payouts)
        return {"closed_generations": closed,
                "payouts": [{"account_id": a, "amount": n} for a, n in paid]}

    def generations(self) -> list[dict[str, Any]]:
        return self._do(self.bank.generations_info)

    def policy(self) -> dict[str, Any]:
        return self._do(self.bank.policy_settings)

    def config(self) -> BankConfig:
        return self.bank.config

    def set_policy(self, config: BankConfig) -> dict[str, Any]:
        return self._do(self.bank.set_policy, config)

    def close(self) -> None:
        self.bank.engine.dispose()


def open_local(db: str, keys: Path) -> LocalOperations:
    """The bank on ``db`` with its key directory, or :class:`OperatorError`
    saying what to do."""
    from .errors import BankError
    from .service import Bank

    check_db_url(db, must_exist=True)
    try:
        _reach(db)  # the database's own failure first, whatever the key directory
        bank = Bank.open(db, keys)
    except BankError as exc:
        raise OperatorError(exc.code, f"{exc.detail} (database {safe_url(db)})", "usage") from None
    except FileNotFoundError as exc:
        raise OperatorError("no_keys", f"cannot read the key directory {keys}: {exc.strerror};"
                            " give the directory `bank init` made (--keys)", "usage") from None
    except Exception as exc:  # the driver's errors, in words (database_problem)
        raise database_problem(exc, db) from None
    return LocalOperations(bank, safe_url(db))


def _reach(db: str) -> None:
    from .store import make_engine

    engine = make_engine(db)
    try:
        with engine.connect():
            pass
    finally:
        engine.dispose()


def safe_url(url: str) -> str:
    """``url`` without a password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def check_db_url(db: str, *, must_exist: bool) -> None:
    """Refuse a ``--db`` value that cannot be a bank's database (exit 2)."""
    from ..files import sqlite_path

    if not db.startswith(("sqlite:///", "postgresql://", "postgresql+psycopg://")):
        raise OperatorError("bad_db", f"--db {db!r} is not a database URL: give"
                            " sqlite:///PATH or postgresql://USER@HOST/NAME", "usage")
    path = sqlite_path(db)
    if path is None:
        return
    if must_exist and not Path(path).is_file():
        raise OperatorError("no_database", f"there is no bank database at {path}: check --db,"
                            " or make one with `ecash bank init`", "usage")


def database_problem(exc: BaseException, db: str) -> OperatorError:
    """A driver's failure to open ``db``, as what a person does about it."""
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

    where = safe_url(db)
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0] if str(exc) else ""
    if isinstance(exc, ArgumentError | NoSuchModuleError):
        return OperatorError("bad_db", f"--db {where!r} is not a database URL: give"
                             " sqlite:///PATH or postgresql://USER@HOST/NAME", "usage")
    low = text.lower()
    if isinstance(exc, OperationalError | OSError) or "connection" in low:
        if "password" in low or "authentication" in low or ("role" in low and "exist" in low):
            return OperatorError("database_refused", f"the database at {where} refused the"
                                 f" login ({text}): check the user and password in --db",
                                 "usage")
        if "does not exist" in low:
            return OperatorError("no_database", f"{text} (at {where}): check --db, or create"
                                 " the database first", "usage")
        if "unable to open" in low or isinstance(exc, OSError):
            return OperatorError("no_database", f"cannot open the database file of {where}:"
                                 f" {text}; check the path in --db", "usage")
        return OperatorError("database_unreachable", f"the database at {where} is not"
                             f" answering ({text}): start it, or check the host and port in"
                             " --db", "unreachable")
    return OperatorError("database_error", f"the database at {where} failed: {text}",
                         "unreachable")


# --- over HTTPS -----------------------------------------------------------------------

class RemoteOperations:
    """The operator API of a bank at ``url``, with the operator credential."""

    def __init__(self, url: str, credential: str, *, cacert: Path | None = None,
                 timeout: float = 30.0) -> None:
        import httpx

        from .client import BankClient

        if not url.startswith(("https://", "http://")):
            raise OperatorError("bad_url", f"--bank {url!r} is not a URL: give"
                                " https://HOST[:PORT]", "usage")
        verify: ssl.SSLContext | bool = True
        if cacert is not None:
            try:
                verify = ssl.create_default_context(cafile=str(cacert))
            except (OSError, ssl.SSLError) as exc:
                raise OperatorError("bad_cacert", f"cannot use {cacert} as the bank's"
                                    f" certificate authority: {exc}", "usage") from None
        self.where = url
        self.client = BankClient(url, credential, timeout=timeout,
                                 transport=httpx.HTTPTransport(verify=verify))
        self._settings: dict[str, Any] | None = None

    def _do(self, fn: Any, *args: Any) -> Any:
        from .client import BankHTTPError, BankUnreachable

        try:
            return fn(*args)
        except BankUnreachable as exc:
            cause = exc.__cause__ or exc
            raise OperatorError("bank_unreachable", f"cannot reach the bank at {self.where}:"
                                f" {cause}; check --bank, the bank's TLS certificate"
                                " (--cacert) and that it is running", "unreachable") from None
        except BankHTTPError as exc:
            if exc.status == 401:
                raise OperatorError("unauthenticated", "the bank does not know this operator"
                                    " credential: give the one `bank init` printed"
                                    " (--credential-file or ECASH_OPERATOR_CREDENTIAL)",
                                    "usage") from None
            raise _from_problem(exc.status, exc.code, exc.detail, exc.extra) from None

    def currency(self) -> str:
        return self.policy()["currency"]

    def open_account(self, holder: str) -> dict[str, Any]:
        account_id, token = self._do(self.client.open_account, holder)
        return {"account_id": account_id, "credential": token}

    def credit(self, account_id: str, amount: int, reference: str) -> dict[str, Any]:
        balance = self._do(self.client.credit, account_id, amount, reference)
        return {"account_id": account_id, "balance": balance}

    def register_merchant(self, account_id: str, merchant_id: str) -> dict[str, Any]:
        token = self._do(self.client.register_merchant, account_id, merchant_id)
        return {"account_id": account_id, "merchant_id": merchant_id, "credential": token}

    def set_status(self, account_id: str, status: str, text: str) -> dict[str, Any]:
        return self._do(self.client.set_status, account_id, status, text)

    def account(self, account_id: str) -> dict[str, Any]:
        return self._do(self.client.operator_account, account_id)

    def fraud_cases(self) -> list[dict[str, Any]]:
        return self._do(self.client.fraud_cases)

    def fraud_case(self, case: int) -> dict[str, Any]:
        return self._do(self.client.fraud_case, case)

    def disputes(self) -> list[dict[str, Any]]:
        return self._do(self.client.disputes)

    def dispute(self, dispute: int) -> dict[str, Any]:
        return self._do(self.client.dispute_info, dispute)

    def audit(self) -> dict[str, Any]:
        return self._do(self.client.audit)

    def maintenance(self) -> dict[str, Any]:
        return self._do(self.client.maintenance)

    def generations(self) -> list[dict[str, Any]]:
        return self._do(self.client.generations)

    def policy(self) -> dict[str, Any]:
        if self._settings is None:
            self._settings = self._do(self.client.policy)
        return self._settings

    def config(self) -> BankConfig:
        data = self.policy()
        return BankConfig(currency=data["currency"], **{k: data[k] for k in SETTINGS})

    def set_policy(self, config: BankConfig) -> dict[str, Any]:
        body = {"currency": config.currency, **{k: getattr(config, k) for k in SETTINGS}}
        self._settings = self._do(self.client.set_policy, body)
        return self._settings

    def close(self) -> None:
        self.client.close()


def _from_problem(status: int, code: str, detail: str, extra: dict[str, Any]) -> OperatorError:
    if status in UNREACHABLE_STATUS or (status >= 500 and code != "internal"):
        kind = "unreachable"
    elif code in USAGE_CODES:
        kind = "usage"
    else:
        kind = "refused"
    return OperatorError(code, detail, kind, dict(extra))
