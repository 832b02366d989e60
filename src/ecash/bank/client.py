"""A small HTTP client of the bank's ``/v1`` API, used by wallets, terminals,
the CLI and the tests. It speaks the wire JSON and raises :class:`BankHTTPError`
(with the problem's ``code``) on any refusal."""

from __future__ import annotations

from typing import Any

import httpx

from ..crypto import group
from ..crypto.keys import Keyset, MerchantCertificate
from ..crypto.payment import SignedRequest, Spend
from ..crypto.refusal import Refusal
from ..crypto.registration import RegistrationProof
from ..wire import json as wj


class BankHTTPError(Exception):
    def __init__(self, status: int, code: str, detail: str,
                 retry_after: int | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status, self.code, self.detail = status, code, detail
        self.retry_after = retry_after  # seconds, from a 429's Retry-After
        # the problem's own members beyond RFC 9457's (a frozen account's
        # ``reason`` and ``case``), so that a wallet can show them
        self.extra = extra or {}


_PROBLEM_MEMBERS = frozenset({"type", "title", "status", "detail", "code", "instance"})


class BankUnreachable(Exception):
    """No answer from the bank (connection refused, timeout, reset)."""


class BankClient:
    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers,
                                 timeout=timeout, transport=transport)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> BankClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            r = self.http.request(method, path, json=body)
        except httpx.TransportError as exc:
            raise BankUnreachable(f"bank unreachable: {exc}") from exc
        if r.status_code >= 400:
            wait = r.headers.get("retry-after", "")
            try:
                p = r.json()
                extra = ({k: v for k, v in p.items() if k not in _PROBLEM_MEMBERS}
                         if isinstance(p, dict) else {})
                raise BankHTTPError(r.status_code, p.get("code", "error"), p.get("detail", ""),
                                    int(wait) if wait.isdigit() else None, extra)
            except ValueError:
                raise BankHTTPError(r.status_code, "error", r.text[:200]) from None
        return r.json()

    # public
    def keyset(self) -> Keyset:
        return wj.keyset_from_json(self._call("GET", "/v1/keyset"))

    def generations(self) -> list[dict]:
        return self._call("GET", "/v1/generations")["generations"]

    def spent_range(self, generation: int, prefix_bits: int, prefixes: list[int],
                    after: bytes | None = None) -> dict:
        """One page of the generation's spent coin_ids in the buckets of
        ``prefixes``; pass the page's ``next`` (as bytes) as ``after`` for the
        following one."""
        return self._call("POST", "/v1/spent-range", {
            "generation": generation, "prefix_bits": prefix_bits, "prefixes": prefixes,
            "after": None if after is None else after.hex()})

    # holder
    def account(self, account_id: str) -> dict:
        return self._call("GET", f"/v1/accounts/{account_id}")

    def register(self, account_id: str, proof: RegistrationProof) -> dict:
        return self._call("POST", f"/v1/accounts/{account_id}/identity", {
            "I": proof.I.hex(), "t": proof.t.hex(), "p": group.encode_scalar(proof.p).hex()})

    def start_withdrawal(self, account_id: str, key_ids: list[bytes]) -> dict:
        return self._call("POST", f"/v1/accounts/{account_id}/withdrawals",
                          {"key_ids": [k.hex() for k in key_ids]})

    def start_exchange(self, account_id: str, spends: list[Spend], key_ids: list[bytes]) -> dict:
        return self._call("POST", f"/v1/accounts/{account_id}/exchanges",
                          {"spends": [wj.spend_to_json(s) for s in spends],
                           "key_ids": [k.hex() for k in key_ids]})

    def answer(self, account_id: str, session_id: str,
               challenges: list[tuple[int, int]]) -> list[tuple[int, int]]:
        body = {"challenges": [[group.encode_scalar(c0).hex(), group.encode_scalar(c1).hex()]
                               for c0, c1 in challenges]}
        out = self._call("POST", f"/v1/accounts/{account_id}/withdrawals/{session_id}", body)
        return [(a["beta"], group.decode_scalar(bytes.fromhex(a["r"]))) for a in out["answers"]]

    def withdrawal_records(self, account_id: str) -> list[dict]:
        return self._call("GET", f"/v1/accounts/{account_id}/withdrawals")["withdrawals"]

    def redeem(self, account_id: str, spends: list[Spend]) -> list[dict]:
        return self._call("POST", f"/v1/accounts/{account_id}/redemptions",
                          {"spends": [wj.spend_to_json(s) for s in spends]})["verdicts"]

    def close_account(self, account_id: str) -> dict:
        return self._call("POST", f"/v1/accounts/{account_id}/close")

    def dispute(self, account_id: str, envelope: SignedRequest, spends: list[Spend],
                refusal: Refusal) -> dict:
        """Show the bank a merchant's signed refusal of a payment it deposited
        anyway: ``{"dispute", "status": "upheld" | "rejected", "reason", "case"}``."""
        return self._call("POST", f"/v1/accounts/{account_id}/disputes", {
            "envelope": wj.envelope_to_json(envelope),
            "spends": [wj.spend_to_json(s) for s in spends],
            "refusal": wj.refusal_to_json(refusal)})

    # merchant
    def merchant(self) -> dict:
        return self._call("GET", "/v1/merchant")

    def certify(self, public_key: bytes) -> MerchantCertificate:
        return wj.certificate_from_json(self._call("POST", "/v1/merchant/certificate",
                                                   {"public_key": public_key.hex()}))

    def deposit(self, spends: list[Spend]) -> list[dict]:
        return self._call("POST", "/v1/merchant/deposits",
                          {"spends": [wj.spend_to_json(s) for s in spends]})["verdicts"]

    # operator
    def open_account(self, holder: str) -> tuple[str, str]:
        out = self._call("POST", "/v1/operator/accounts", {"holder": holder})
        return out["account_id"], out["credential"]

    def credit(self, account_id: str, amount: int, reference: str) -> int:
        return self._call("POST", f"/v1/operator/accounts/{account_id}/credit",
                          {"amount": amount, "reference": reference})["balance"]

    def set_status(self, account_id: str, status: str, text: str) -> dict:
        """Freeze (``text``: the reason the holder is shown) or unfreeze
        (``text``: the operator's note)."""
        return self._call("POST", f"/v1/operator/accounts/{account_id}/status",
                          {"status": status, "text": text})

    def register_merchant(self, account_id: str, merchant_id: str) -> str:
        return self._call("POST", f"/v1/operator/accounts/{account_id}/merchant",
                          {"merchant_id": merchant_id})["credential"]

    def operator_account(self, account_id: str) -> dict:
        return self._call("GET", f"/v1/operator/accounts/{account_id}")

    def fraud_cases(self) -> list[dict]:
        return self._call("GET", "/v1/operator/fraud")["cases"]

    def fraud_case(self, case_id: int) -> dict:
        return self._call("GET", f"/v1/operator/fraud/{case_id}")

    def disputes(self) -> list[dict]:
        return self._call("GET", "/v1/operator/disputes")["disputes"]

    def dispute_info(self, dispute_id: int) -> dict:
        return self._call("GET", f"/v1/operator/disputes/{dispute_id}")

    def audit(self) -> dict:
        return self._call("GET", "/v1/operator/audit")

    def maintenance(self) -> dict:
        return self._call("POST", "/v1/operator/maintenance")

    def policy(self) -> dict:
        """Every setting (minor units), the signed policy's date and signature."""
        return self._call("GET", "/v1/operator/policy")

    def set_policy(self, settings: dict) -> dict:
        """Replace every setting (minor units); the answer is :meth:`policy`'s."""
        return self._call("PUT", "/v1/operator/policy", settings)
