"""``ecash bank signer``: a :class:`.signer_local.LocalSigner` served on a UNIX
socket (framing in :mod:`.signer`). Standard library only: a threading
``socketserver``; each connection's requests are answered in order.
"""

from __future__ import annotations

import logging
import os
import socket
import socketserver
from collections.abc import Callable
from pathlib import Path

from ..crypto.errors import EcashError
from ..files import private_dir
from ..wire import json as wj
from .errors import BankError
from .signer import recv_frame, send_frame
from .signer_local import LocalSigner

log = logging.getLogger("ecash.bank.signer")


# --- the server --------------------------------------------------------------

def _dispatch(signer: LocalSigner, req: dict) -> object:
    op, h = req["op"], bytes.fromhex
    if op == "commit":
        c = signer.commit(h(req["identity"]), h(req["key_ids"]))
        return {"nonce": c.nonce.hex(), "commitments": c.commitments.hex(),
                "z": {k.hex(): z.hex() for k, z in c.z.items()}, "group_cpu_s": c.group_cpu_s}
    if op == "respond":
        return signer.respond(h(req["nonce"]), h(req["key_ids"]), h(req["challenges"])).hex()
    if op == "stats":
        return signer.stats()
    if op == "public_info":
        info = signer.public_info()
        return {"master_public_key": info.master_public_key.hex(),
                "generations": {str(n): [wj.key_to_json(k) for k in keys]
                                for n, keys in info.keys.items()}}
    if op == "new_generation":
        keys = signer.new_generation(int(req["number"]), [int(v) for v in req["values"]],
                                     req["currency"], int(req["withdraw_start"]),
                                     int(req["withdraw_end"]), int(req["deposit_end"]))
        return [wj.key_to_json(k) for k in keys]
    if op == "certify_terminal":
        cert = signer.certify_terminal(req["merchant_id"], h(req["public_key"]),
                                       int(req["valid_until"]))
        return cert.signature.hex()
    if op == "sign_policy":
        return signer.sign_policy(wj.policy_from_json(req["policy"])).hex()
    raise BankError("bad_request", f"unknown operation {op!r}", 400)


def _answer(signer: LocalSigner, req: object) -> dict:
    try:
        if not isinstance(req, dict):
            raise BankError("bad_request", "a request is a JSON object", 400)
        return {"ok": _dispatch(signer, req)}
    except BankError as exc:
        return {"error": {"code": exc.code, "detail": exc.detail, "status": exc.status}}
    except EcashError as exc:
        return {"error": {"code": exc.code, "detail": str(exc), "status": 422}}
    except FileExistsError as exc:
        return {"error": {"code": "generation_exists", "detail": str(exc), "status": 409}}
    except (KeyError, ValueError, TypeError) as exc:
        return {"error": {"code": "bad_request", "detail": repr(exc), "status": 400}}


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        """Requests of one connection, one after the other, until it closes."""
        while True:
            try:
                req = recv_frame(self.request)
            except (EOFError, OSError, ValueError):
                return
            try:
                reply = _answer(self.server.signer, req)
            except Exception:  # a bug: say so, and keep serving others
                log.exception("signer operation failed")
                reply = {"error": {"code": "signer_error", "detail": "internal error",
                                   "status": 500}}
            try:
                send_frame(self.request, reply)
            except OSError:
                return


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, signer: LocalSigner) -> None:
        self.signer = signer
        super().__init__(path, _Handler)


def claim_socket(path: Path) -> None:
    """Make ``path`` free to bind: its directory made (0700) if missing; a
    stale socket file removed; refused if a live signer answers there or the
    path is something else."""
    private_dir(path.parent)
    if not path.exists() and not path.is_symlink():
        return
    if not path.is_socket():
        raise FileExistsError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        path.unlink(missing_ok=True)  # left by a signer that died
        return
    finally:
        probe.close()
    raise FileExistsError(f"a signer is already listening on {path}")


def serve_signer(signer: LocalSigner, path: Path, *, mode: int = 0o660,
                 ready: Callable[[], None] | None = None) -> None:
    """Serve until SIGTERM/SIGINT (raised here as ``SystemExit``/``KeyboardInterrupt``
    by the caller's handlers); the socket file is removed on the way out."""
    claim_socket(path)
    old = os.umask(0o777 & ~mode)  # created with its final mode: no window
    try:
        server = _Server(str(path), signer)
    finally:
        os.umask(old)
    try:
        os.chmod(path, mode)
        if ready is not None:
            ready()
        server.serve_forever()
    finally:
        server.server_close()
        path.unlink(missing_ok=True)
        signer.close()
