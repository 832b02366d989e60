"""The ECASH-1 cryptography: pure functions and frozen dataclasses, no I/O.

Letters follow the paper and the spec (``I``, ``u1``, ``A``, ``B``, ``r1``...).
"""

from . import group
from .coin import Coin, CoinSecrets, coin_challenge, compute_coin_id, verify_coin
from .errors import (
    BadSignature,
    CurrencyMismatch,
    EcashError,
    EncodingError,
    IdentityElement,
    InvalidCoin,
    InvalidRefusal,
    InvalidRegistration,
    InvalidRequest,
    InvalidSpend,
    InvalidWithdrawalResponse,
    KeyMismatch,
    KeysetInvalid,
    NonCanonicalElement,
    NonCanonicalScalar,
    NotADoubleSpend,
    WrongLength,
    WrongMerchant,
    ZeroScalar,
)
from .hashing import H_bytes, H_group, H_scalar
from .identify import DoubleSpendProof, Identification, identify, verify_double_spend
from .keys import (
    DenominationKey,
    DenominationSecret,
    MerchantCertificate,
    Policy,
    canonical_json,
    certify_merchant,
    check_keyset,
    compute_key_id,
    make_denomination_key,
)
from .params import g, g1, g2
from .payment import (
    PaymentRequest,
    Receipt,
    SignedRequest,
    Spend,
    make_receipt,
    make_spend,
    sign_request,
    spend_challenge,
    verify_spend,
)
from .refusal import Refusal, make_refusal, payment_digest
from .sign import SigningKey
from .withdrawal import (
    Commitment,
    WithdrawalState,
    bank_commit,
    bank_respond,
    user_blind,
    user_finish,
)

__all__ = [
    "BadSignature", "Coin", "CoinSecrets", "Commitment", "CurrencyMismatch",
    "DenominationKey", "DenominationSecret", "DoubleSpendProof", "EcashError",
    "EncodingError", "H_bytes", "H_group", "H_scalar", "Identification", "IdentityElement",
    "InvalidCoin", "InvalidRefusal", "InvalidRegistration", "InvalidRequest", "InvalidSpend",
    "InvalidWithdrawalResponse", "KeyMismatch", "KeysetInvalid", "MerchantCertificate",
    "NonCanonicalElement", "NonCanonicalScalar", "NotADoubleSpend", "PaymentRequest",
    "Policy", "Receipt", "Refusal", "SignedRequest", "SigningKey", "Spend", "WithdrawalState",
    "WrongLength", "WrongMerchant", "ZeroScalar", "bank_commit", "bank_respond",
    "canonical_json", "certify_merchant", "check_keyset", "coin_challenge", "compute_coin_id",
    "compute_key_id", "g", "g1", "g2", "group", "identify", "make_denomination_key",
    "make_receipt", "make_refusal", "make_spend", "payment_digest", "sign_request",
    "spend_challenge", "user_blind", "user_finish", "verify_coin", "verify_double_spend",
    "verify_spend",
]
