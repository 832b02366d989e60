"""The operator credential over HTTPS: ``ecash bank serve`` with a TLS
certificate made here (self-signed, for 127.0.0.1), its signer a process of
its own, and the operator CLI on another "machine" trusting that certificate
with ``--cacert`` (or ``ECASH_BANK_CACERT``). Without the trust, the CLI says
it cannot reach the bank (exit 3) and names the certificate.

Needs the ``cryptography`` package to make the certificate; without it the
test is skipped (the same commands over plain HTTP are in
``test_operator_cli``)."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ecash.serving.threaded import free_port

ECASH = Path(sys.executable).with_name("ecash")


def self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1, valid for a day."""
    x509 = pytest.importorskip("cryptography.x509", reason="cryptography makes the certificate")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ecash test bank")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "bank.crt", tmp / "bank.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(ECASH), *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})


def test_operator_commands_over_https_with_the_init_credential(tmp_path):
    cert, key = self_signed(tmp_path)
    db = ["--db", f"sqlite:///{tmp_path / 'bank.db'}", "--keys", str(tmp_path / "keys")]
    init = run("bank", "init", *db, "--json")
    assert init.returncode == 0, init.stderr
    credential = json.loads(init.stdout)["operator_credential"]
    sock, port = tmp_path / "signer.sock", free_port()
    signer = subprocess.Popen([str(ECASH), "bank", "signer", "--keys", str(tmp_path / "keys"),
                               "--socket", str(sock), "--private"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = subprocess.Popen([str(ECASH), "bank", "serve", *db[:2], "--signer", str(sock),
                               "--port", str(port), "--tls-cert", str(cert), "--tls-key",
                               str(key)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True)
    url = f"https://127.0.0.1:{port}"
    trust = ssl.create_default_context(cafile=str(cert))
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/v1/health", verify=trust, timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                assert server.poll() is None and time.monotonic() < deadline, "did not start"
                time.sleep(0.1)
        cred_file = tmp_path / "operator.credential"
        cred_file.write_text(credential)
        remote = ["--bank", url, "--cacert", str(cert), "--credential-file", str(cred_file)]
        opened = run("bank", "open-account", "--holder", "Li Lei", *remote, "--json")
        assert opened.returncode == 0, opened.stderr
        account = json.loads(opened.stdout)["account_id"]
        credited = run("bank", "credit", account, "250.00", *remote, "--json")
        assert credited.returncode == 0, credited.stderr
        assert json.loads(credited.stdout)["balance"] == 25_000
        # the trust and the credential from the environment instead
        frozen = run("bank", "freeze", account, "--reason", "checking a transfer", "--bank", url,
                     "--json", env={"ECASH_BANK_CACERT": str(cert),
                                    "ECASH_OPERATOR_CREDENTIAL": credential})
        assert frozen.returncode == 0, frozen.stderr
        assert json.loads(frozen.stdout)["frozen_reason"] == "checking a transfer"
        policy = tmp_path / "policy.toml"
        policy.write_text('[limits]\nfloor_limit = "150.00"\n')
        changed = run("bank", "policy", "set", str(policy), *remote, "--json")
        assert changed.returncode == 0, changed.stderr
        assert json.loads(changed.stdout)["floor_limit"] == 15_000
        # without trusting the certificate: unreachable, in one line that says why
        untrusted = run("bank", "audit", "--bank", url, "--credential-file", str(cred_file))
        assert untrusted.returncode == 3, untrusted.stderr
        assert "certificate" in untrusted.stderr.lower() and "Traceback" not in untrusted.stderr
    finally:
        for proc in (server, signer):
            proc.terminate()
        out, _ = server.communicate(timeout=30)
        signer.wait(timeout=30)
    assert f"Serving the bank at {url}" in out
