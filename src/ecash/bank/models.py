"""The API's request and response bodies as pydantic models, which FastAPI
validates and publishes in ``/openapi.json``.

Request models keep the wire's strictness (ECASH-1 section 8): unknown keys
are refused, types are strict (no ``"1"`` for ``1``, no floats, no booleans
posing as integers), hex is lowercase and of its exact length, integers lie in
``[0, 2^53-1]``. What a pattern cannot check (canonical points and scalars,
a merchant id's UTF-8 length) the handlers leave to the ``ecash.wire``
decoders. Response models forbid extra keys too, so that a response that
drifts from the document fails the tests that record it.

A list bounded by one of the bank's caps (``BankConfig``: coins per session,
deposit batch) carries ``x-cap``, the setting's name; the app writes that
bank's value into the document as ``maxItems`` (``api.document_caps``), and
the core enforces it with its own codes (``bad_coin_count``,
``batch_too_large``), so a deployment's caps and its document agree.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from .spentset import MAX_PREFIX_BITS, MAX_PREFIXES

MAX_JSON_INT = 2**53 - 1


def _hex(n: int, what: str = "") -> object:
    return Field(pattern=f"^[0-9a-f]{{{2 * n}}}$", description=(
        f"{what}: " if what else "") + f"{n} bytes as {2 * n} lowercase hex characters")


Hex16 = Annotated[str, _hex(16)]
Hex32 = Annotated[str, _hex(32)]
Element = Annotated[str, _hex(32, "a canonical ristretto255 element, not the identity")]
Scalar = Annotated[str, _hex(32, "a canonical scalar, little-endian")]
Signature = Annotated[str, _hex(64, "an Ed25519 signature")]
KeyId = Annotated[str, _hex(32, "a denomination key id")]
Int53 = Annotated[int, Field(ge=0, le=MAX_JSON_INT)]


def _storable(s: str) -> str:
    """Text the database can store: JSON escapes can carry a lone surrogate
    (not UTF-8, so no driver can send it) and NUL (which PostgreSQL text
    refuses); either would otherwise fail inside a transaction as a 500."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise PydanticCustomError("bad_text", "not valid UTF-8 text") from None
    if "\x00" in s:
        raise PydanticCustomError("bad_text", "NUL is not allowed in text")
    return s


Text = Annotated[str, AfterValidator(_storable)]


class Wire(BaseModel):
    """A request body: strict types, no unknown keys."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Out(BaseModel):
    """A response body: no keys beyond the documented ones."""

    model_config = ConfigDict(extra="forbid")


# --- the objects of ECASH-1 section 8 -------------------------------------------

class Coin(Wire):
    key_id: KeyId
    A: Element
    B: Element
    z: Element
    a: Element
    b: Element
    r: Scalar


class PaymentRequest(Wire):
    merchant_id: Annotated[str, Field(min_length=1, max_length=64,
                                      description="1 to 64 UTF-8 bytes")]
    amount: Int53
    currency: Annotated[str, Field(pattern="^[A-Z]{3}$")]
    timestamp_ms: Int53
    nonce: Hex16


class Spend(Wire):
    coin: Coin
    request: PaymentRequest
    r1: Scalar
    r2: Scalar


class Certificate(Wire):
    merchant_id: Annotated[str, Field(min_length=1, max_length=64)]
    public_key: Hex32
    valid_until: Int53
    signature: Signature


class Envelope(Wire):
    request: PaymentRequest
    pos_url: str
    certificate: Certificate
    signature: Signature


class Refusal(Wire):
    request_id: Hex32
    payment_digest: Hex32
    code: Annotated[str, Field(pattern="^[a-z0-9_]{1,64}$")]
    signature: Signature


class Key(Wire):
    key_id: KeyId
    h: Element
    value: Int53
    currency: str
    withdraw_start: Int53
    withdraw_end: Int53
    deposit_end: Int53
    signature: Signature


class Policy(Wire):
    currency: str
    deposit_window_s: Int53
    floor_limit: Int53
    holding_limit: Int53
    single_payment_limit: Int53
    daily_offline_limit: Int53
    consecutive_offline_limit: Int53
    issued_at: Int53


# --- request bodies ---------------------------------------------------------------

def cap(name: str, description: str, *, min_length: int | None = None) -> Any:
    """A list bounded by the bank's setting ``name`` (see the module's docstring)."""
    return Field(min_length=min_length, description=description,
                 json_schema_extra={"x-cap": name})


COINS = "max_coins_per_session"
BATCH = "max_deposit_batch"
KeyIds = Annotated[list[KeyId], cap(
    COINS, "one denomination key per coin, at most max_coins_per_session coins per session;"
           " an account holds at most max_outstanding_coins open, unanswered commitments",
    min_length=1)]


class WithdrawalStart(Wire):
    key_ids: KeyIds


class ExchangeStart(Wire):
    spends: Annotated[list[Spend], cap(COINS, "the spends paying for it", min_length=1)]
    key_ids: KeyIds


ChallengePair = Annotated[list[Scalar], Field(
    min_length=2, max_length=2, description="[c0, c1]: the blinded challenges of the coin's"
                                            " two clauses, non-zero canonical scalars")]


class WithdrawalAnswer(Wire):
    challenges: Annotated[list[ChallengePair], cap(
        COINS, "one pair per coin, in the order of the session's coins", min_length=1)]


class Spends(Wire):
    spends: Annotated[list[Spend], cap(BATCH, "the transcripts", min_length=1)]


class Registration(Wire):
    I: Element
    t: Element
    p: Scalar


class SpentRangeQuery(Wire):
    generation: Int53
    prefix_bits: Annotated[int, Field(ge=0, le=MAX_PREFIX_BITS)]
    prefixes: Annotated[list[Int53], Field(
        min_length=1, max_length=MAX_PREFIXES, json_schema_extra={"uniqueItems": True},
        description=f"1 to {MAX_PREFIXES} distinct bucket prefixes below 2^prefix_bits")]
    after: Hex32 | None = Field(description="the previous page's next, or null")


class PublicKey(Wire):
    public_key: Hex32


class OpenAccount(Wire):
    holder: Annotated[Text, Field(min_length=1, max_length=200)]


class Credit(Wire):
    amount: Annotated[Int53, Field(description="positive, in the currency's smallest unit")]
    reference: Annotated[Text, Field(min_length=1, max_length=64,
                                     description="idempotency key, per account")]


class SetStatus(Wire):
    status: Literal["active", "frozen"]
    text: Annotated[Text, Field(min_length=1, max_length=500, description=(
        "why: the reason of a freeze (shown to the holder) or the note of an unfreeze;"
        " recorded with the time"))]


Amount = Annotated[int, Field(ge=0, le=MAX_JSON_INT, description="minor units")]
Seconds = Annotated[int, Field(ge=1, le=MAX_JSON_INT, description="seconds")]
Count = Annotated[int, Field(ge=0, le=MAX_JSON_INT)]


class PolicySettings(Wire):
    """Every tunable number of the bank (``ecash bank policy``), amounts in minor units."""

    currency: Annotated[str, Field(pattern="^[A-Z]{3}$",
                                   description="fixed when the bank is made")]
    floor_limit: Amount
    holding_limit: Amount
    single_payment_limit: Amount
    daily_offline_limit: Amount
    daily_load_limit: Amount
    net_load_limit: Amount
    consecutive_offline_limit: Count
    denominations: Annotated[list[Amount], Field(min_length=1, max_length=64)]
    deposit_window_s: Seconds
    withdraw_period_s: Seconds
    spend_period_s: Seconds
    session_ttl_s: Seconds
    certificate_validity_s: Seconds
    max_coins_per_session: Count
    max_outstanding_coins: Count
    max_deposit_batch: Count


class RegisterMerchant(Wire):
    merchant_id: Annotated[Text, Field(min_length=1, max_length=64,
                                       description="1 to 64 UTF-8 bytes, PRECIS-stable")]


class Dispute(Wire):
    envelope: Envelope
    spends: Annotated[list[Spend], cap(COINS, "the refused payment's spends", min_length=1)]
    refusal: Refusal


# --- response bodies --------------------------------------------------------------

class Health(Out):
    status: Literal["ok"]


class Keyset(Out):
    master_public_key: Hex32
    keys: list[Key]
    policy: Policy
    policy_signature: Signature


class Generation(Out):
    generation: int
    withdraw_start: int
    withdraw_end: int
    deposit_end: int
    closed: bool
    spent_count: int


class Generations(Out):
    generations: list[Generation]


class SpentPage(Out):
    generation: int
    closed: bool
    coin_ids: list[Hex32]
    next: Hex32 | None


class Account(Out):
    account_id: str
    holder: str
    status: str
    balance: int
    currency: str
    identity: Hex32 | None
    merchant_id: str | None
    daily_load_limit: int
    net_load_limit: int
    payout_after: int | None
    frozen_reason: str | None = Field(description=(
        "why the account is frozen: the operator's reason, or \"double spending: case N\";"
        " null when it is not frozen"))
    frozen_case: int | None = Field(description="the double-spending case that froze it, or"
                                                 " null")
    frozen_at: int | None = Field(description="when it was frozen (Unix seconds), or null")


class AccountEvent(Out):
    at: int
    action: Literal["frozen", "unfrozen"]
    text: str = Field(description="the reason of a freeze or the note of an unfreeze")
    case: int | None = Field(description="the double-spending case, for an automatic freeze")


class OperatorAccount(Account):
    events: list[AccountEvent] = Field(description="every freeze and unfreeze, oldest first")


class Registered(Out):
    status: Literal["registered"]
    identity: Hex32


class OfferedCoin(Out):
    key_id: KeyId
    commitments: Annotated[list[Element], Field(
        min_length=4, max_length=4,
        description="the clause-form commitments in the order a0, b0, a1, b1: clause 0's"
                    " (a, b), then clause 1's")]


class WithdrawalOffer(Out):
    """The bank's commitments for a session; answer them within ``expires_at``."""

    session_id: Hex16
    expires_at: int
    total: int
    redeem_total: int
    z: dict[KeyId, Element] = Field(description="z = x*I per key_id of the session")
    coins: Annotated[list[OfferedCoin], cap(COINS, "the session's coins, in order")]


class Answer(Out):
    beta: Literal[0, 1] = Field(description="the clause the bank answered")
    r: Scalar


class WithdrawalAnswers(Out):
    answers: Annotated[list[Answer], cap(COINS, "one per coin, in order")]


class RecordedCoin(Out):
    key_id: KeyId
    commitments: Annotated[list[Element], Field(min_length=4, max_length=4,
                                                description="a0, b0, a1, b1")]
    challenges: Annotated[list[Scalar], Field(min_length=2, max_length=2)]
    beta: Literal[0, 1]
    r: Scalar


class WithdrawalRecord(Out):
    session_id: Hex16
    kind: Literal["withdraw", "exchange"]
    answered_at: int
    coins: list[RecordedCoin]


class WithdrawalRecords(Out):
    withdrawals: list[WithdrawalRecord]


class Verdict(Out):
    """What one transcript earned: ``amount`` is the same on every replay,
    ``credited`` what this call moved (0 on a replay)."""

    status: Literal["accepted", "double_spent", "invalid", "late", "expired"]
    replay: bool
    credited: int
    amount: int
    code: str | None = Field(None, description="why, unless accepted")
    detail: str | None = None
    fraud_case: int | None = Field(None, description="the case naming the double spender")


class Verdicts(Out):
    verdicts: Annotated[list[Verdict], cap(BATCH, "one per spend, in order")]


class Closed(Out):
    status: Literal["closed"]
    payout_after: int
    balance: int


class DisputeAnswer(Out):
    dispute: int
    status: Literal["upheld", "rejected"]
    reason: str
    case: int | None


class DisputeSummary(DisputeAnswer):
    account_id: str
    merchant_id: str | None
    request_id: Hex32
    payment_digest: Hex32
    created_at: int
    updated_at: int


class Disputes(Out):
    disputes: list[DisputeSummary]


class Evidence(Out):
    envelope: Envelope
    spends: list[Spend]
    refusal: Refusal


class DepositedCoin(Out):
    coin_id: Hex32
    generation: int
    value: int
    spend: Spend


class MerchantCase(Out):
    case: int
    dispute: int
    value: int
    from_balance: int
    refunded: int
    receivable: int
    created_at: int
    deposited: list[DepositedCoin]


class DisputeInfo(DisputeSummary):
    evidence: Evidence
    voided_fraud_cases: list[int]
    merchant_case: MerchantCase | None


class Merchant(Out):
    merchant_id: str
    account_id: str
    balance: int
    status: str


class CertificateOut(Out):
    merchant_id: str
    public_key: Hex32
    valid_until: int
    signature: Signature


class OpenedAccount(Out):
    account_id: str
    credential: str


class Balance(Out):
    account_id: str
    balance: int


class Status(Out):
    account_id: str
    status: Literal["active", "frozen"]
    frozen_reason: str | None
    frozen_case: int | None
    frozen_at: int | None


class PolicyOut(Out):
    """The settings in force and the signed policy's date and signature."""

    currency: str
    floor_limit: int
    holding_limit: int
    single_payment_limit: int
    daily_offline_limit: int
    daily_load_limit: int
    net_load_limit: int
    consecutive_offline_limit: int
    denominations: list[int]
    deposit_window_s: int
    withdraw_period_s: int
    spend_period_s: int
    session_ttl_s: int
    certificate_validity_s: int
    max_coins_per_session: int
    max_outstanding_coins: int
    max_deposit_batch: int
    issued_at: int
    policy_signature: Signature


class MerchantCredential(Out):
    account_id: str
    merchant_id: str
    credential: str


class FraudCase(Out):
    case: int
    account_id: str | None
    identity: Hex32
    coin_id: Hex32
    value: int
    from_balance: int
    receivable: int
    alarm: bool
    created_at: int


class FraudSummary(FraudCase):
    voided_by: int | None = Field(description="the dispute that voided the case, or null")


class FraudCases(Out):
    cases: list[FraudSummary]


class FraudProof(FraudCase):
    """Both transcripts of the coin and its key: the proof that names the spender."""

    key: Key
    spend1: Spend
    spend2: Spend


class Audit(Out):
    ok: bool
    problems: list[str]
    figures: dict[str, int]


class Payout(Out):
    account_id: str
    amount: int


class Maintenance(Out):
    closed_generations: list[int]
    payouts: list[Payout]


class Problem(Out):
    """RFC 9457 problem details with the bank's stable ``code``."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    reason: str | None = Field(None, description="account_frozen: why the account is frozen")
    case: int | None = Field(None, description="account_frozen: the double-spending case that"
                                               " froze it, or null")
    key: str | None = Field(None, description="bad_policy: the setting refused")
