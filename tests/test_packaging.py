"""Packaging: the wallet and ``ecash verify`` run without the server roles'
libraries, dependencies are ranges in pyproject.toml and exact versions in
constraints.txt, and every pin lies in its range."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "tests" / "vectors"

# what only a server role needs: none of it may be imported by the wallet or verify
SERVER_MODULES = ("fastapi", "starlette", "uvicorn", "httptools", "uvloop", "sqlalchemy",
                  "psycopg", "alembic", "prometheus_client", "orjson", "limits", "redis",
                  "structlog", "pythonjsonlogger", "segno")

# Runs the CLI with every server module made unimportable, as on a machine
# where only `pip install ecash` (no extras) was run.
BLOCKED_RUN = """
import sys
blocked = set(sys.argv[1].split(","))

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Block())
sys.argv = ["ecash", *sys.argv[2:]]
from ecash.cli.main import main
main()
"""


def run_without_servers(*args: str, env: dict[str, str] | None = None
                        ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKED_RUN, ",".join(SERVER_MODULES), *args],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_the_blocker_blocks() -> None:
    """The check below could pass vacuously if the blocker did nothing: a
    command that needs the bank's libraries must fail under it, in one line
    that names the extra to install."""
    res = run_without_servers("bank", "audit", "--db", "sqlite:///nowhere.db",
                              "--keys", "nowhere")
    assert res.returncode == 2, res.stderr
    assert "pip install 'ecash[bank" in res.stderr
    assert "Traceback" not in res.stderr


def test_wallet_and_verify_run_without_the_server_extras(tmp_path: Path) -> None:
    for command in (["--help"], ["wallet", "--help"], ["verify", "--help"]):
        res = run_without_servers(*command)
        assert res.returncode == 0, (command, res.stderr)
    # a real verification: the spec's double-spend vector names the spender
    vec = json.loads((VECTORS / "double_spend.json").read_text())
    denom = json.loads((VECTORS / "denomination.json").read_text())["denominations"]
    key = next(d for d in denom if d["key_id"] == vec["key_id"])
    fields = ("key_id", "h", "value", "currency", "withdraw_start", "withdraw_end", "deposit_end")
    (tmp_path / "key.json").write_text(json.dumps({k: key[k] for k in fields}))
    for i in (1, 2):
        (tmp_path / f"spend{i}.json").write_text(json.dumps(vec[f"transcript_{i}"]["spend"]))
    res = run_without_servers("verify", "double-spend", "--key", str(tmp_path / "key.json"),
                              str(tmp_path / "spend1.json"), str(tmp_path / "spend2.json"))
    assert res.returncode == 0, res.stderr
    assert vec["registered_I"] in res.stdout
    # the wallet's own commands: a new wallet file, then its balance
    wallet = tmp_path / "w.db"
    env = {"ECASH_WALLET_PASSPHRASE": "correct horse battery staple"}
    res = run_without_servers("wallet", "init", "--kdf", "interactive", "--wallet", str(wallet),
                              "--json", env=env)
    assert res.returncode == 0, res.stderr
    res = run_without_servers("wallet", "balance", "--wallet", str(wallet), "--json", env=env)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["spendable"] == 0


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep, f"constraints.txt: {line!r} is not an exact pin"
        pins[canonicalize_name(name.split("[")[0])] = version.strip()
    return pins


def test_ranges_in_pyproject_and_each_pin_within_its_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _pins()
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra, items in project["optional-dependencies"].items():
        reqs += [Requirement(r) for r in items if not r.startswith("ecash[")]
        assert extra in ("bank", "merchant", "dev")
    for req in reqs:
        name = canonicalize_name(req.name)
        exact = [s for s in req.specifier if s.operator == "=="]
        assert not exact or name == "ruff", f"{req}: a range, not an exact version"
        assert name in pins, f"{req.name} has no pin in constraints.txt"
        assert req.specifier.contains(pins[name], prereleases=True), (req, pins[name])


def test_the_base_install_has_no_server_library() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    servers = {canonicalize_name(m.replace("_", "-")) for m in SERVER_MODULES}
    servers |= {"prometheus-client", "python-json-logger"}
    assert not base & servers
