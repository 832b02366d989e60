"""``ecash verify`` end to end: the console script run as a real subprocess.

Exit codes: 0 valid, 1 invalid (``invalid: <code>: ...`` on stderr), 2 input
unreadable or usage error. Never a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import load_vector

ECASH = Path(sys.executable).with_name("ecash")

DENOM = load_vector("denomination.json")
MASTER = DENOM["master_public_key"]
OTHER_PUBLIC_KEY = load_vector("signatures.json")["merchant_public_key"]
DOUBLE = load_vector("double_spend.json")
REGISTERED_I = DOUBLE["registered_I"]
OTHER_I = load_vector("registration.json")["I_g2"]  # a valid element, not the registered I
INVALID = {c["name"]: c for c in load_vector("invalid.json")["cases"]}
KEY_FIELDS = ("key_id", "h", "value", "currency", "withdraw_start", "withdraw_end", "deposit_end")


def _key(index: int, signed: bool = True) -> dict:
    d = DENOM["denominations"][index]
    key = {k: d[k] for k in KEY_FIELDS}
    return {**key, "signature": d["master_signature"]} if signed else key


def _without(obj: dict, name: str) -> dict:
    return {k: v for k, v in obj.items() if k != name}


COIN = load_vector("withdrawal.json")["withdrawals"][0]["coin"]
SPENDS = load_vector("payment.json")["spends"]
SPEND = SPENDS[0]["spend"]
assert SPENDS[1]["spend"]["coin"]["A"] != SPEND["coin"]["A"]  # another coin, same key
SPEND1, SPEND2 = DOUBLE["transcript_1"]["spend"], DOUBLE["transcript_2"]["spend"]

# Every input file the table refers to, by name (written once per module).
FILES: dict[str, object] = {
    "key": _key(0),
    "key_unsigned": _key(0, signed=False),
    "key_other": _key(1),
    "key_value_changed": {**_key(0), "value": 501},  # key_id no longer matches
    "key_extra": {**_key(0), "comment": "x"},
    "key_missing_h": _without(_key(0), "h"),
    "key_signature_null": {**_key(0), "signature": None},
    "coin": COIN,
    "coin_tampered": INVALID["coin_r_tweaked"]["coin"],
    "coin_extra": {**COIN, "serial": COIN["A"]},
    "coin_missing_r": _without(COIN, "r"),
    "coin_bit255": INVALID["element_bit255_set"]["coin"],
    "coin_r_plus_q": INVALID["scalar_r_noncanonical"]["coin"],
    "coin_uppercase": {**COIN, "A": COIN["A"].upper()},
    "spend": SPEND,
    "spend_r1_tweaked": INVALID["spend_r1_tweaked"]["spend"],
    "spend_usd": {**SPEND, "request": {**SPEND["request"], "currency": "USD"}},
    "spend_merchant_65": INVALID["merchant_id_65_bytes"]["spend"],
    "spend_request_extra": {**SPEND, "request": {**SPEND["request"], "pos_url": ""}},
    "spend_other_coin": SPENDS[1]["spend"],
    "spend1": SPEND1,
    "spend2": SPEND2,
    "spend2_tampered": {**SPEND2, "r1": SPEND1["r1"]},
}
RAW_FILES = {
    "not_json": b"this is not JSON\n",
    "empty": b"",
    "coin_duplicate_name": json.dumps(COIN)[:-1].encode() + b', "r": "%s"}' % COIN["r"].encode(),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("verify")
    for name, obj in FILES.items():
        (d / f"{name}.json").write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    for name, raw in RAW_FILES.items():
        (d / f"{name}.json").write_bytes(raw)
    return d


def run(args: list[str], cwd: Path, stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run([str(ECASH), "verify", *args], cwd=cwd, input=stdin,
                          capture_output=True, timeout=60)


# (id, argv with file names relative to the fixture dir, stdin file or None,
#  exit code, expected stdout lines (None: not checked), substring of stderr)
CASES = [
    # --- valid (0) ---
    ("coin", ["coin", "--key", "key.json", "coin.json"], None, 0, ["valid"], ""),
    ("coin-unsigned-key", ["coin", "--key", "key_unsigned.json", "coin.json"], None, 0,
     ["valid"], ""),
    ("coin-master", ["coin", "--key", "key.json", "--master", MASTER, "coin.json"], None, 0,
     ["valid"], ""),
    ("spend", ["spend", "--key", "key.json", "spend.json"], None, 0, ["valid"], ""),
    ("spend-stdin", ["spend", "--key", "key_unsigned.json", "-"], "spend.json", 0, ["valid"], ""),
    ("key-stdin", ["coin", "--key", "-", "coin.json"], "key.json", 0, ["valid"], ""),
    ("double-spend", ["double-spend", "--key", "key.json", "spend1.json", "spend2.json"], None,
     0, [REGISTERED_I], ""),
    ("double-spend-reversed-master", ["double-spend", "--key", "key.json", "--master", MASTER,
                                      "spend2.json", "spend1.json"], None, 0, [REGISTERED_I], ""),
    ("identity-matches", ["double-spend", "--key", "key_unsigned.json", "--identity",
                          REGISTERED_I, "spend1.json", "spend2.json"], None, 0, [REGISTERED_I],
     ""),
    # --- invalid (1) ---
    ("master-wrong", ["coin", "--key", "key.json", "--master", OTHER_PUBLIC_KEY, "coin.json"],
     None, 1, [], "invalid: bad_signature: "),
    ("master-unsigned-key", ["spend", "--key", "key_unsigned.json", "--master", MASTER,
                             "spend.json"], None, 1, [], "invalid: unsigned_key: "),
    ("coin-tampered", ["coin", "--key", "key.json", "coin_tampered.json"], None, 1, [],
     "invalid: coin_equation: "),
    ("coin-extra-key", ["coin", "--key", "key.json", "coin_extra.json"], None, 1, [],
     "invalid: unknown_key: coin: unknown key(s) serial"),
    ("coin-missing-key", ["coin", "--key", "key.json", "coin_missing_r.json"], None, 1, [],
     "invalid: missing_key: coin: missing key(s) r"),
    ("coin-duplicate-name", ["coin", "--key", "key.json", "coin_duplicate_name.json"], None, 1,
     [], "invalid: duplicate_key: "),
    ("coin-noncanonical-element", ["coin", "--key", "key.json", "coin_bit255.json"], None, 1, [],
     "invalid: non_canonical_element: coin.A"),
    ("coin-noncanonical-scalar", ["coin", "--key", "key.json", "coin_r_plus_q.json"], None, 1,
     [], "invalid: non_canonical_scalar: coin.r"),
    ("coin-uppercase-hex", ["coin", "--key", "key.json", "coin_uppercase.json"], None, 1, [],
     "invalid: bad_hex: coin.A"),
    ("coin-wrong-key", ["coin", "--key", "key_other.json", "coin.json"], None, 1, [],
     "invalid: key_mismatch: "),
    ("key-id-mismatch", ["coin", "--key", "key_value_changed.json", "coin.json"], None, 1, [],
     "invalid: key_id_mismatch: "),
    ("key-extra-key", ["spend", "--key", "key_extra.json", "spend.json"], None, 1, [],
     "invalid: unknown_key: key: unknown key(s) comment"),
    ("key-missing-key", ["coin", "--key", "key_missing_h.json", "coin.json"], None, 1, [],
     "invalid: missing_key: key: missing key(s) h"),
    ("key-signature-null", ["coin", "--key", "key_signature_null.json", "coin.json"], None, 1,
     [], "invalid: bad_type: key.signature"),
    ("spend-tampered", ["spend", "--key", "key.json", "spend_r1_tweaked.json"], None, 1, [],
     "invalid: spend_equation: "),
    ("spend-currency-mismatch", ["spend", "--key", "key.json", "spend_usd.json"], None, 1, [],
     "invalid: currency_mismatch: "),
    ("spend-request-malformed", ["spend", "--key", "key.json", "spend_merchant_65.json"], None,
     1, [], "invalid: request_malformed: "),
    ("spend-request-extra-key", ["spend", "--key", "key.json", "spend_request_extra.json"], None,
     1, [], "invalid: unknown_key: request: unknown key(s) pos_url"),
    ("double-spend-same-transcript", ["double-spend", "--key", "key.json", "spend1.json",
                                      "spend1.json"], None, 1, [], "invalid: same_transcript: "),
    ("double-spend-two-coins", ["double-spend", "--key", "key.json", "spend.json",
                                "spend_other_coin.json"], None, 1, [],
     "invalid: different_coins: "),
    ("double-spend-one-invalid", ["double-spend", "--key", "key.json", "spend1.json",
                                  "spend2_tampered.json"], None, 1, [],
     "invalid: spend_equation: "),
    ("identity-mismatch", ["double-spend", "--key", "key.json", "--identity", OTHER_I,
                           "spend1.json", "spend2.json"], None, 1, [],
     "invalid: identity_mismatch: "),
    # --- unreadable input or usage error (2) ---
    ("missing-file", ["coin", "--key", "key.json", "no_such_file.json"], None, 2, [],
     "cannot read no_such_file.json"),
    ("missing-key-file", ["double-spend", "--key", "no_such_key.json", "spend1.json",
                          "spend2.json"], None, 2, [], "cannot read no_such_key.json"),
    ("not-json", ["spend", "--key", "key.json", "not_json.json"], None, 2, [], "not JSON"),
    ("empty-stdin", ["coin", "--key", "key.json", "-"], "empty.json", 2, [], "not JSON"),
    ("stdin-twice", ["double-spend", "--key", "key.json", "-", "-"], "spend1.json", 2, [],
     "only once"),
    ("identity-uppercase", ["double-spend", "--key", "key.json", "--identity",
                            REGISTERED_I.upper(), "spend1.json", "spend2.json"], None, 2, [],
     "--identity"),
    ("master-malformed", ["coin", "--key", "key.json", "--master", "0x" + MASTER[2:],
                          "coin.json"], None, 2, [], "--master"),
    ("missing-argument", ["spend", "--key", "key.json"], None, 2, [], "Missing argument"),
]


@pytest.mark.parametrize(("args", "stdin", "code", "stdout", "stderr"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_verify(files, args, stdin, code, stdout, stderr):
    res = run(args, files, (files / stdin).read_bytes() if stdin else b"")
    out, err = res.stdout.decode(), res.stderr.decode()
    assert res.returncode == code, (out, err)
    assert "Traceback" not in out + err
    if stdout is not None:
        assert out.splitlines() == stdout
    assert stderr in err
    if code == 1:  # exactly one reason line
        assert err.startswith("invalid: ") and len(err.splitlines()) == 1, err


def test_console_script_is_installed():
    assert ECASH.exists(), f"console script not found next to {sys.executable}"


@pytest.mark.parametrize(("args", "stdin", "code", "stdout", "stderr"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_verify_json(files, args, stdin, code, stdout, stderr):
    """The same cases with ``--json``: the same exit code, exactly one JSON object
    on stdout (the verdict, or the contract's error), the words still on stderr."""
    res = run([*args, "--json"], files, (files / stdin).read_bytes() if stdin else b"")
    out, err = res.stdout.decode(), res.stderr.decode()
    assert res.returncode == code, (out, err)
    assert "Traceback" not in out + err
    obj = json.loads(out)  # one object, nothing else
    if code == 0:
        assert obj["valid"] is True and obj["what"] == args[0].replace("-", "_")
        if args[0] == "double-spend":
            assert [obj["identity"]] == stdout
        return
    assert set(obj) == {"error", "message", "exit"} and obj["exit"] == code, obj
    assert stderr in err
    if code == 1:  # the same code and words as the plain line
        assert err == f"invalid: {obj['error']}: {obj['message']}\n"
    else:
        assert obj["error"] in ("unreadable_input", "usage") and obj["message"], obj
