"""The CLI contract (README, "The command line"; ``ecash.cli.contract``) as
the holder and a checker meet it, through the installed ``ecash`` script:
``--version``, help that shows defaults and environment variables, exit codes
0/1/2/3 with one JSON object on stdout under ``--json``, and never a traceback
for a user's mistake nor for a bug (one line; ``ECASH_DEBUG=1`` shows it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version

import pytest

from .bankkit import running_bank
from .wallet.kit import ECASH, PASS, holder, run_cli

WALLET_COMMANDS = ("init", "register", "load", "pay", "sync", "balance", "history",
                   "disputes", "renew", "break", "restore", "close", "check")


def ecash(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(ECASH), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


def flat(text: str) -> str:
    """Help as words: Rich's boxes and line wrapping removed."""
    return " ".join(text.replace("│", " ").split())


def contract_error(r: subprocess.CompletedProcess, code: str, exit_code: int) -> dict:
    """The contract's failure: the exit code, one JSON object, one line on stderr."""
    assert r.returncode == exit_code, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert set(out) >= {"error", "message", "exit"} and out["exit"] == exit_code, out
    assert out["error"] == code, out
    assert " ".join(out["message"].split()) in " ".join(r.stderr.split()), r.stderr
    return out


def test_version_is_the_package_version():
    r = ecash("--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"ecash {version('ecash')}"


@pytest.mark.parametrize("command", WALLET_COMMANDS)
def test_wallet_help_shows_env_vars_and_defaults(command):
    r = ecash("wallet", command, "--help")
    assert r.returncode == 0, r.stderr
    text = flat(r.stdout)
    assert "[env var: ECASH_WALLET]" in text, text  # not eaten as Rich markup
    assert "[default: ($XDG_DATA_HOME/ecash/wallet.db)]" in text, text
    assert "ECASH_WALLET_PASSPHRASE" in text, text
    assert "--json" in text


def test_help_shows_the_other_defaults():
    assert "[default: moderate]" in flat(ecash("wallet", "init", "--help").stdout)
    assert "[default: 50]" in flat(ecash("wallet", "history", "--help").stdout)
    assert "[default: 30]" in flat(ecash("wallet", "renew", "--help").stdout)
    load = flat(ecash("wallet", "load", "--help").stdout)
    assert "major unit" in load and "minor units" in load  # typed in yuan, --json in fen
    for command in ("coin", "spend", "double-spend"):
        assert "--json" in flat(ecash("verify", command, "--help").stdout)


def test_a_usage_error_is_exit_2_with_the_json_shape():
    r = ecash("wallet", "load", "--json")
    out = contract_error(r, "usage", 2)
    assert "AMOUNT" in out["message"]
    r = ecash("wallet", "balance", "--no-such-option", "--json")
    contract_error(r, "usage", 2)


BOOM = ("import sys; from ecash.cli.main import app, main\n"
        "@app.command('boom')\n"
        "def boom() -> None:\n"
        "    raise RuntimeError('a bug, not the user')\n"
        "sys.argv = ['ecash', 'boom']; main()")


def test_an_escaping_exception_is_one_line_unless_debugging():
    env = {k: v for k, v in os.environ.items() if k != "ECASH_DEBUG"}
    r = subprocess.run([sys.executable, "-c", BOOM], capture_output=True, text=True,
                       timeout=60, env=env)
    assert r.returncode == 1, r.stderr
    assert r.stderr == ("error: internal error: RuntimeError: a bug, not the user; run with"
                        " ECASH_DEBUG=1 for the traceback\n")
    r = subprocess.run([sys.executable, "-c", BOOM], capture_output=True, text=True,
                       timeout=60, env={**env, "ECASH_DEBUG": "1"})
    assert r.returncode == 1
    assert "Traceback" in r.stderr and "RuntimeError: a bug, not the user" in r.stderr


MISSING_EXTRA = ("import sys; sys.modules['segno'] = None\n"
                 "from ecash.cli.main import app, main\n"
                 "@app.command('qr')\n"
                 "def qr() -> None:\n"
                 "    import segno  # noqa: F401\n"
                 "sys.argv = ['ecash', 'qr']; main()")


def test_a_missing_extra_names_it_with_exit_2():
    r = subprocess.run([sys.executable, "-c", MISSING_EXTRA], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2, r.stderr
    assert "pip install 'ecash[merchant]'" in r.stderr and "Traceback" not in r.stderr


# --- the holder's mistakes and a bank that is down: never a traceback --------------

@pytest.fixture
def registered(tmp_path):
    """A wallet registered at a bank that is then shut down (it stays registered)."""
    path = tmp_path / "w.db"
    with running_bank("sqlite", tmp_path) as env:
        h = holder(env)
        w = ["--wallet", str(path), "--json"]
        assert run_cli(["init", "--kdf", "interactive", *w]).returncode == 0
        r = run_cli(["register", "--bank", env.url, "--account", h.account_id, *w],
                    env_extra={"ECASH_WALLET_CREDENTIAL": h.credential})
        assert r.returncode == 0, r.stderr
        r = run_cli(["load", "2.5", *w])
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["amount"] == 250
        h.close()
    return path


@pytest.mark.parametrize(("amount", "words"), [
    ("1.005", "CNY amounts have at most 2 decimals"),
    ("-3", "an amount cannot be negative"),
    ("abc", "is not an amount"),
    ("0", "must be more than zero"),
])
def test_a_bad_amount_is_exit_2_in_words(registered, amount, words):
    r = run_cli(["load", amount, "--wallet", str(registered), "--json"])
    out = contract_error(r, "bad_amount", 2)
    assert words in out["message"], out
    r = run_cli(["break", amount, "--wallet", str(registered)])
    assert r.returncode == 2 and words in r.stderr and "Traceback" not in r.stderr


def test_bad_inputs_never_show_a_traceback(registered, tmp_path):
    w = ["--wallet", str(registered), "--json"]
    contract_error(run_cli(["balance", "--wallet", str(tmp_path / "none.db"), "--json"]),
                   "no_wallet", 2)
    # the wallet file from the environment, as --help says
    out = contract_error(run_cli(["balance", "--json"],
                                 env_extra={"ECASH_WALLET": str(tmp_path / "env.db")}),
                         "no_wallet", 2)
    assert str(tmp_path / "env.db") in out["message"]
    assert json.loads(run_cli(["balance", "--json"], env_extra={
        "ECASH_WALLET": str(registered)}).stdout)["spendable"] == 250
    unreadable = tmp_path / "pass.txt"
    unreadable.write_text(PASS)
    unreadable.chmod(0)
    if os.access(unreadable, os.R_OK):  # root reads anything: use a directory instead
        unreadable = tmp_path
    out = contract_error(run_cli(["balance", *w, "--passphrase-file", str(unreadable)]),
                         "unreadable_file", 2)
    assert str(unreadable) in out["message"]
    missing = tmp_path / "no-such-passphrase"
    contract_error(run_cli(["balance", *w, "--passphrase-file", str(missing)]),
                   "unreadable_file", 2)
    for text in ("hello", "ecreq1:AAAA", "ecash:nothing-here", "{not json"):
        contract_error(run_cli(["pay", text, *w]), "bad_request_text", 2)
    contract_error(run_cli(["pay", "--request-file", str(tmp_path / "no-request"), *w]),
                   "unreadable_file", 2)
    # the bank is down: pending or unreachable is exit 3, said as such
    out = contract_error(run_cli(["load", "1", *w]), "bank_unreachable", 3)
    assert "try again" in out["message"]
    r = run_cli(["sync", "--wallet", str(registered)])
    assert r.returncode == 3 and r.stderr.startswith("unreachable:"), r.stderr
    assert "Traceback" not in r.stderr
    # the money is still there, read in yuan
    r = run_cli(["balance", "--wallet", str(registered)])
    assert r.returncode == 0 and "Spendable CNY\xa02.50" in r.stdout, r.stdout


def test_json_results_say_their_amounts_are_minor_units(registered):
    out = json.loads(run_cli(["balance", "--wallet", str(registered), "--json"]).stdout)
    assert (out["spendable"], out["currency"], out["amount_unit"]) == (250, "CNY", "minor")
    out = json.loads(run_cli(["history", "--wallet", str(registered), "--json"]).stdout)
    assert (out["currency"], out["amount_unit"]) == ("CNY", "minor")
    assert [e["amount"] for e in out["events"] if e["kind"] == "load"] == [250]


def test_a_frozen_account_is_named_with_its_reason(tmp_path):
    with running_bank("sqlite", tmp_path) as env:
        h = holder(env)
        path = tmp_path / "w.db"
        w = ["--wallet", str(path), "--json"]
        assert run_cli(["init", "--kdf", "interactive", *w]).returncode == 0
        assert run_cli(["register", "--bank", env.url, "--account", h.account_id, *w],
                       env_extra={"ECASH_WALLET_CREDENTIAL": h.credential}).returncode == 0
        env.operator.set_status(h.account_id, "frozen", "card reported stolen")
        out = contract_error(run_cli(["load", "1", *w]), "account_frozen", 1)
        assert out["message"] == ("the bank has frozen this account: card reported stolen;"
                                  " contact the bank")
        assert (out["reason"], out["case"]) == ("card reported stolen", None)
        r = run_cli(["load", "1", "--wallet", str(path)])
        assert r.returncode == 1 and "error: the bank has frozen this account" in r.stderr
        h.close()


def _leaf_commands():
    """Every command of the ``ecash`` tree, as (words, click command), through
    Typer's public ``typer.main.get_command``."""
    import typer.main

    from ecash.cli.main import app

    def walk(command, path):
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in sorted(subcommands.items()):
                yield from walk(sub, [*path, name])
        else:
            yield path, command

    return list(walk(typer.main.get_command(app), []))


# long-running servers print where they serve, not a result: no --json
NO_JSON = {("demo",), ("bank", "signer"), ("bank", "serve"), ("merchant", "serve")}


def test_every_command_in_every_role_keeps_the_help_and_json_contract() -> None:
    """Across the bank, terminal, wallet and verify commands: each option read
    from the environment names its variable in ``--help``, and every command
    but the servers and the demo takes ``--json``."""
    from typer.testing import CliRunner

    from ecash.cli.main import app

    runner = CliRunner()
    leaves = _leaf_commands()
    assert len(leaves) >= 40 and {w[0] for w, _ in leaves} == {
        "bank", "demo", "merchant", "verify", "wallet"}
    for words, command in leaves:
        shown = runner.invoke(app, [*words, "--help"], env={"COLUMNS": "200"})
        assert shown.exit_code == 0, (words, shown.output)
        text = flat(shown.output)
        for param in command.params:
            if getattr(param, "envvar", None):
                assert f"env var: {param.envvar}" in text, (words, param.name)
        takes_json = any("--json" in getattr(p, "opts", ()) for p in command.params)
        assert takes_json == (tuple(words) not in NO_JSON), words
