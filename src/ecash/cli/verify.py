"""``ecash verify``: third-party checks of coins, spends and double spends.

Thin layer over :mod:`ecash.crypto` and :mod:`ecash.wire.json`: read, decode
strictly, verify, print. No clock-dependent check (deadlines are the
caller's business, ECASH-1 9.4).

Exit codes (:mod:`ecash.cli.contract`): 0 valid; 1 invalid (``invalid:
<code>: <message>`` on stderr); 2 an input cannot be read at all (missing
file, not JSON) or a usage error. ``-`` as a path reads standard input. With
``--json``, stdout holds one object: ``{"valid": true, ...}`` or the
contract's ``{"error", "message", "exit"}``.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, NoReturn

import typer

from ..crypto import DenominationKey, DoubleSpendProof, EcashError, verify_coin, verify_spend
from ..wire import WireError
from ..wire import json as wj
from .contract import EXIT_OK, EXIT_REFUSED, EXIT_USAGE

EXIT_VALID = EXIT_OK
EXIT_INVALID = EXIT_REFUSED
EXIT_UNREADABLE = EXIT_USAGE

_HEX = frozenset("0123456789abcdef")

app = typer.Typer(help="Verify coins, spends and double spends (ECASH-1), offline.",
                  no_args_is_help=True)


# --- option parsing (usage errors exit 2) -----------------------------------

def _hex32(value: str | None) -> bytes | None:
    """A 32-byte value given as exactly 64 lowercase hex characters."""
    if value is None:
        return None
    if len(value) != 64 or not _HEX.issuperset(value):
        raise typer.BadParameter("expected 64 lowercase hex characters (32 bytes)")
    return bytes.fromhex(value)


KeyPath = Annotated[str, typer.Option("--key", metavar="KEY.json",
                                      help="The denomination key (section 8 `key` object;"
                                           " `signature` optional). `-` reads stdin.")]
Master = Annotated[bytes | None, typer.Option(
    "--master", metavar="HEX", parser=_hex32,
    help="Trusted master public key (64 hex): also check the key's master signature.")]
Json = Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")]


def _error_json(code: str, message: str, exit_code: int, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"error": code, "message": message, "exit": exit_code},
                              ensure_ascii=False))


def _verdict(line: str, data: dict[str, Any], as_json: bool) -> None:
    typer.echo(json.dumps(data) if as_json else line)


# --- reading (exit 2) and rejecting (exit 1) --------------------------------

def _unreadable(path: str, why: str, as_json: bool) -> NoReturn:
    _error_json("unreadable_input", f"cannot read {path}: {why}", EXIT_UNREADABLE, as_json)
    typer.echo(f"error: cannot read {path}: {why}", err=True)
    raise typer.Exit(EXIT_UNREADABLE)


def _invalid(exc: EcashError, as_json: bool) -> NoReturn:
    _error_json(exc.code, str(exc), EXIT_INVALID, as_json)
    typer.echo(f"invalid: {exc.code}: {exc}", err=True)
    raise typer.Exit(EXIT_INVALID)


def _read_all(paths: list[str], as_json: bool) -> list[tuple[bytes, Any]]:
    """Read and parse every input, or exit 2. Returns ``(raw bytes, parsed JSON)`` pairs."""
    if paths.count("-") > 1:
        raise typer.BadParameter("standard input (`-`) can be given only once")
    docs = []
    for path in paths:
        try:
            if path == "-":
                raw = sys.stdin.buffer.read()
            else:
                with open(path, "rb") as f:
                    raw = f.read()
        except OSError as exc:
            _unreadable(path, exc.strerror or str(exc), as_json)
        try:
            docs.append((raw, wj.loads(raw)))
        except WireError as exc:
            if exc.code == "not_json":
                _unreadable(path, str(exc), as_json)
            _invalid(exc, as_json)  # JSON, but not of section 8 (a key given twice)
    return docs


def _checked_key(doc: tuple[bytes, Any], master: bytes | None) -> DenominationKey:
    key = wj.key_from_json(doc[1], signature_optional=True)
    key.check_key_id()
    if master is not None:
        key.check_signature(master)
    return key


# --- commands ----------------------------------------------------------------

@app.command("coin")
def coin(
    coin_path: Annotated[str, typer.Argument(metavar="COIN.json",
                                             help="Coin (section 8). `-` reads stdin.")],
    key: KeyPath,
    master: Master = None,
    as_json: Json = False,
) -> None:
    """Check a coin (4.1) under a denomination key."""
    key_doc, coin_doc = _read_all([key, coin_path], as_json)
    try:
        k = _checked_key(key_doc, master)
        verify_coin(wj.coin_from_json(coin_doc[1]), k)
    except EcashError as exc:
        _invalid(exc, as_json)
    _verdict("valid", {"valid": True, "what": "coin"}, as_json)


@app.command("spend")
def spend(
    spend_path: Annotated[str, typer.Argument(metavar="SPEND.json",
                                              help="Spend transcript (section 8)."
                                                   " `-` reads stdin.")],
    key: KeyPath,
    master: Master = None,
    as_json: Json = False,
) -> None:
    """Check a spend transcript (section 5): coin, request, currency, spend equation."""
    key_doc, spend_doc = _read_all([key, spend_path], as_json)
    try:
        k = _checked_key(key_doc, master)
        verify_spend(wj.spend_from_json(spend_doc[1]), k)
    except EcashError as exc:
        _invalid(exc, as_json)
    _verdict("valid", {"valid": True, "what": "spend"}, as_json)


@app.command("double-spend")
def double_spend(
    spend1_path: Annotated[str, typer.Argument(metavar="SPEND1.json")],
    spend2_path: Annotated[str, typer.Argument(metavar="SPEND2.json")],
    key: KeyPath,
    identity: Annotated[bytes | None, typer.Option(
        "--identity", metavar="I_HEX", parser=_hex32,
        help="Registered identity I (64 hex): also check the transcripts name it.")] = None,
    master: Master = None,
    as_json: Json = False,
) -> None:
    """Check two spends of one coin (section 7) and print the spender's I (hex)."""
    key_doc, doc1, doc2 = _read_all([key, spend1_path, spend2_path], as_json)
    try:
        k = _checked_key(key_doc, master)
        proof = DoubleSpendProof(k, wj.spend_from_json(doc1[1]), wj.spend_from_json(doc2[1]))
        found = proof.verify(identity)
    except EcashError as exc:
        _invalid(exc, as_json)
    _verdict(found.hex(), {"valid": True, "what": "double_spend", "identity": found.hex()},
             as_json)
