"""``ecash demo`` as a real process: exit 0, and the files it writes are
ECASH-1 section 8 JSON that ``ecash.wire.json`` and ``ecash verify`` accept."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from ecash.crypto import DoubleSpendProof, verify_spend
from ecash.wire import json as wj


def ecash() -> list[str]:
    exe = shutil.which("ecash", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-c", "from ecash.cli.main import app; app()"]


def test_demo_runs_and_writes_the_proof(tmp_path):
    out = tmp_path / "out"
    run = subprocess.run([*ecash(), "demo", "--out", str(out), "--dir", str(tmp_path / "work")],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "COLUMNS": "200"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "every check passed" in run.stdout
    _assert_told_in_plain_words(run)

    keys = {k.key_id: k for k in map(wj.key_from_json, json.loads((out / "keys.json").read_text()))}
    spend_files = sorted((out / "spends").glob("*.json"))
    names = [p.name for p in spend_files]
    assert names == [f"{i:03d}.json" for i in range(1, len(names) + 1)]
    spends = [wj.spend_from_json(wj.loads(p.read_bytes())) for p in spend_files]
    assert len(spends) >= 4
    for s in spends:  # every spend's key is in keys.json, and every spend is valid
        verify_spend(s, keys[s.coin.key_id])

    ds = out / "double-spend"
    s1, s2 = (wj.spend_from_json(wj.loads((ds / f"spend{i}.json").read_bytes())) for i in (1, 2))
    written = {wj.dumps(wj.spend_to_json(s)) for s in spends}
    assert wj.dumps(wj.spend_to_json(s1)) in written and wj.dumps(wj.spend_to_json(s2)) in written
    assert s1.coin == s2.coin and s1.request.merchant_id != s2.request.merchant_id
    identity = (ds / "identity.txt").read_text()
    assert identity.endswith("\n") and len(identity) == 65 and identity == identity.lower()
    found = DoubleSpendProof(keys[s1.coin.key_id], s1, s2).verify(bytes.fromhex(identity[:-1]))
    assert found.hex() == identity[:-1]

    # the third-party check, with keys.json's key for the coin
    key_file = tmp_path / "key.json"
    key_file.write_text(wj.dumps(wj.key_to_json(keys[s1.coin.key_id])))
    check = subprocess.run([*ecash(), "verify", "double-spend", "--key", str(key_file),
                            str(ds / "spend1.json"), str(ds / "spend2.json"),
                            "--identity", identity.strip()], capture_output=True, text=True,
                           timeout=60)
    assert check.returncode == 0 and check.stdout.strip() == identity.strip(), check.stderr


def _assert_told_in_plain_words(run: subprocess.CompletedProcess) -> None:
    """The story in yuan through the money module, terms explained, no log line."""
    told = " ".join(run.stdout.split())  # Babel puts a no-break space after "CNY"
    for line in ("balance CNY 500.00",  # 50,000 fen credited to each holder
                 "loaded CNY 80.00 as",
                 "Alice pays CNY 12.50 to bakery for '2 croissants'",
                 "Bob pays CNY 7.30 to bookshop for 'a notebook'",
                 "Alice pays CNY 0.99 to bookshop for 'a bookmark'",
                 "QR code (a payment link)",
                 "coins (pieces of cash the bank signs, each of a fixed value)",
                 "below the floor limit (the amount under which a till accepts",
                 "spend transcript (the signed record of that payment)",
                 "spent twice (a double spend)",
                 "made good by the bank",
                 "his account is frozen",
                 "the bank has frozen this account (case 1): double spending: case 1;"
                 " contact the bank"):
        assert line in told, (line, run.stdout)
    # never minor units beside the currency: every amount has the yuan's two decimals
    assert not re.search(r"\b\d+ CNY\b", told), run.stdout
    bare = re.findall(r"CNY (\d[\d,]*)(?![\d,]*\.\d\d)", told)
    assert not bare, (bare, run.stdout)
    # the bank's warning of the double spend is told by the story, not logged
    assert run.stderr == "", run.stderr
    assert "names account" not in run.stdout
