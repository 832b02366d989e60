"""``ecash:`` payment links, the offline text forms and the sale's description
(docs/extensions.md): sizes for a QR code read at arm's length, strict
decoders that say what is wrong in words, and the documented test vector."""

from __future__ import annotations

import base64

import pytest
import segno

from ecash.crypto.errors import EcashError
from ecash.crypto.keys import certify_merchant
from ecash.crypto.payment import PaymentRequest, sign_request
from ecash.crypto.sign import SigningKey
from ecash.wire import binary, text
from ecash.wire.description import (
    MAX_CHARS,
    BadDescription,
    Description,
    check_description,
    description_from_bytes,
    description_message,
    description_to_bytes,
    sign_description,
)
from ecash.wire.uri import (
    BadPaymentLink,
    envelope_hash,
    offline_text,
    parse_payment_uri,
    payment_uri,
)

# the vector of docs/extensions.md
MASTER = SigningKey.from_seed(bytes(range(32)))
TERMINAL = SigningKey.from_seed(bytes(range(32, 64)))
CERT = certify_merchant(MASTER, "shop-42", TERMINAL.public_key, 1_900_000_000)
REQUEST = PaymentRequest("shop-42", 2048, "CNY", 1_764_800_000_000, bytes(range(16)))
RID = REQUEST.request_id
ENVELOPE = sign_request(TERMINAL, CERT, REQUEST, f"https://till.example.com/pay/{RID.hex()}")
DESCRIPTION = sign_description(TERMINAL, RID, "2 coffees, 1 croissant")


def envelope_at(base: str) -> object:
    return sign_request(TERMINAL, CERT, REQUEST, f"{base}/pay/{RID.hex()}")


def test_vector_of_the_docs():
    assert RID.hex() == "98b378aa79555ae979363e04a62626ddd14231f1e3d6eeabcf32ea242fdc12c4"
    assert description_message(RID, DESCRIPTION.text).hex() == (
        "45434153482d31782f6465736372697074696f6e" + RID.hex()
        + "00000016" + b"2 coffees, 1 croissant".hex())
    assert DESCRIPTION.signature.hex() == (
        "9cb8a9eee2b2c80a12af2031b97811f7629f6ba5c8ac7c9133c5c47f5c42fa17"
        "3ca3b5e11f086ec68e3b0c580104add781eb2e7a5ae64677d368af8981a3b40b")
    DESCRIPTION.verify(TERMINAL.public_key, RID)
    assert envelope_hash(ENVELOPE, DESCRIPTION).hex() == "38c3ccc5efce3f9206a6e22bfb1b42ca"
    assert payment_uri(ENVELOPE, DESCRIPTION) == (
        "ecash://pay/till.example.com/mLN4qnlVWul5Nj4EpiYm3dFCMfHj1u6rzzLqJC_cEsQ/"
        "OMPMxe_OP5IGpuIr-xtCyg")
    assert payment_uri(ENVELOPE) == (
        "ecash://pay/till.example.com/mLN4qnlVWul5Nj4EpiYm3dFCMfHj1u6rzzLqJC_cEsQ/"
        "B4DN20PMioMqwDuDMoSPaA")


BASES = ["https://till.example.com", "http://192.168.1.20:8480", "http://[::1]:8480",
         "https://pay.some-long-shop-name.example.com:8443/till/lane-03",
         "http://pay.some-long-shop-name.example.com:8443/tills/lane03",
         "https://xn--fiqs8s.example.cn/%E6%94%B6%E9%93%B6/a1b2c3d4e5"]


@pytest.mark.parametrize("base", BASES)
def test_links_fit_a_small_qr_code_and_read_back(base):
    assert len(base) <= 61
    env = envelope_at(base)
    for description in (None, DESCRIPTION):
        uri = payment_uri(env, description)
        assert uri is not None and uri.isascii()
        qr = segno.make(uri, error="m")
        assert qr.version <= 10 and qr.error in ("M", "Q", "H")
        if len(base) <= 60:
            assert qr.version <= 8
        link = parse_payment_uri(uri)
        assert link.base_url == base and link.request_id == RID
        assert link.pos_url == env.pos_url
        assert link.fetch_url == f"{base}/r/{RID.hex()}"
        assert link.envelope_hash == envelope_hash(env, description)
        assert uri.startswith("ecash://pay/" if base.startswith("https") else
                              "ecash+http://pay/")


def test_no_link_without_a_terminal_url():
    assert payment_uri(sign_request(TERMINAL, CERT, REQUEST, "")) is None
    # a pos_url not of the form BASE/pay/<request_id>: no link can name it
    assert payment_uri(sign_request(TERMINAL, CERT, REQUEST, "https://a.example/pay")) is None
    assert payment_uri(sign_request(TERMINAL, CERT, REQUEST,
                                    f"https://a.example/x?y=1/pay/{RID.hex()}")) is None
    assert payment_uri(sign_request(TERMINAL, CERT, REQUEST,
                                    f"ftp://a.example/pay/{RID.hex()}")) is None


GOOD = payment_uri(ENVELOPE)
RID_TEXT, HASH_TEXT = GOOD.rsplit("/", 2)[1:]


@pytest.mark.parametrize(("uri", "words"), [
    ("ECASH://pay/till.example.com/" + RID_TEXT + "/" + HASH_TEXT, "lower case"),
    ("ecash://PAY/till.example.com/" + RID_TEXT + "/" + HASH_TEXT, "not a payment"),
    ("ecash://withdraw/till.example.com/" + RID_TEXT + "/" + HASH_TEXT, "not a payment"),
    ("ecash://pay/" + RID_TEXT + "/" + HASH_TEXT, "cut short"),
    ("ecash://pay/till.example.com//" + RID_TEXT + "/" + HASH_TEXT, "empty part"),
    (GOOD + "/", "empty part"),
    (GOOD + "?x=1", "'?' at position"),
    (GOOD[:30] + " " + GOOD[30:], "'U+0020' at position 31"),
    (GOOD[:-1] + "B", "not in canonical form"),  # trailing bits set
    (GOOD[:-1], "must be 22 characters"),
    (GOOD.replace(RID_TEXT, RID_TEXT + "A"), "must be 43 characters"),
    (GOOD.replace(RID_TEXT, RID_TEXT[:-1] + "="), "must be 43 characters of base64url"),
    ("ecash://pay/tïll.example.com/" + RID_TEXT + "/" + HASH_TEXT, "'ï' at position 14"),
    ("ecash://pay/user@till.example.com/" + RID_TEXT + "/" + HASH_TEXT, "not a URL"),
    ("bitcoin:abc", "not an ecash: payment link"),
])
def test_links_are_decoded_strictly_with_words(uri, words):
    with pytest.raises(BadPaymentLink) as info:
        parse_payment_uri(uri)
    assert words in str(info.value)
    assert info.value.code == "bad_payment_link"


def test_surrounding_whitespace_is_forgiven():
    assert parse_payment_uri(f"  {GOOD}\n").request_id == RID


# --- the offline text forms -------------------------------------------------------

def test_the_spec_text_form_is_unchanged():
    raw = binary.envelope_to_bytes(ENVELOPE)
    plain = offline_text(ENVELOPE)
    assert plain == "ecreq1:" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    assert text.request_from_text(plain) == ENVELOPE
    assert text.any_request_from_text(plain) == (ENVELOPE, None)


def wrapped(s: str, width: int = 76, sep: str = "\n") -> str:
    return sep.join(s[i:i + width] for i in range(0, len(s), width))


@pytest.mark.parametrize("sep", ["\n", "\r\n", " ", "\n  > "[:3]])
def test_long_texts_survive_line_wrapping(sep):
    described = offline_text(ENVELOPE, DESCRIPTION)
    assert described.startswith("ecreqd1:")
    assert text.any_request_from_text(wrapped(described, sep=sep)) == (ENVELOPE, DESCRIPTION)
    assert text.request_from_text(wrapped(offline_text(ENVELOPE), 64, sep)) == ENVELOPE


def test_a_described_text_is_not_read_by_the_spec_decoder_as_garbage():
    with pytest.raises(EcashError) as info:
        text.request_from_text(offline_text(ENVELOPE, DESCRIPTION))
    assert "this reader takes only texts that start with 'ecreq1:'" in str(info.value)


PLAIN = offline_text(ENVELOPE)


@pytest.mark.parametrize(("raw", "words", "code"), [
    (PLAIN[:300], f"this text is cut short: 300 of {len(PLAIN)} characters", "wrong_length"),
    (PLAIN[:200], f"this text is cut short: 200 of at least {len(PLAIN) - 10}", "wrong_length"),
    (PLAIN[:20], "this text is cut short: 20 of at least", "wrong_length"),
    (PLAIN + "AAAA", f"{len(PLAIN) + 4} characters where {len(PLAIN)} were expected",
     "wrong_length"),
    (PLAIN + "\n" + PLAIN, f"two codes were pasted together (a second beginning at position"
     f" {len(PLAIN) + 2})", "wrong_length"),
    (PLAIN[:39] + "é" + PLAIN[40:], "a character is not part of the code: 'é' at position 40",
     "bad_character"),
    ("ecpay1:" + PLAIN[7:], "this is a payment, not a payment request", "wrong_kind"),
    ("ECREQ1:" + PLAIN[7:], "write the beginning 'ecreq1:' in lower case", "bad_prefix"),
    (GOOD, "this is a payment link (ecash:), not a payment request", "wrong_kind"),
    ('{"request": {}}', "this is JSON", "wrong_kind"),
    ("hello", "this is not a payment request", "bad_prefix"),
    ("", "the text is empty", "bad_prefix"),
])
def test_a_wrong_request_text_says_what_is_wrong(raw, words, code):
    with pytest.raises(EcashError) as info:
        text.request_from_text(raw)
    assert words in str(info.value) and info.value.code == code, str(info.value)


def test_a_wrong_payment_text_says_what_is_wrong():
    with pytest.raises(EcashError) as info:
        text.payment_from_text(PLAIN)
    assert str(info.value) == "this is a payment request, not a payment"
    with pytest.raises(EcashError) as info:
        text.payment_from_text("ecpay1:" + PLAIN[7:60])
    assert "this text is cut short: 60 of at least" in str(info.value)


def test_an_altered_last_character_is_refused():
    raw = binary.envelope_to_bytes(ENVELOPE)
    assert len(raw) % 3  # the last character carries unused bits
    body = PLAIN[len("ecreq1:"):]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = alphabet[alphabet.index(body[-1]) + 1]
    with pytest.raises(EcashError) as info:
        text.request_from_text(PLAIN[:-1] + twin)
    assert "last character" in str(info.value)


# --- descriptions ---------------------------------------------------------------------

@pytest.mark.parametrize(("bad", "words"), [
    ("", "empty"),
    ("x" * (MAX_CHARS + 1), f"at most {MAX_CHARS}"),
    ("tea\u202eaet", "U+202E RIGHT-TO-LEFT OVERRIDE at position 3"),
    ("two\nlines", "U+000A"),
    ("tab\there", "U+0009"),
    ("zero\u200bwidth", "U+200B ZERO WIDTH SPACE"),
    (" coffee", "starts or ends with a space"),
    ("coffee\u00a0x2", "canonical form"),
    ("cafe\u0301", "canonical form"),
])
def test_descriptions_that_cannot_be_shown_faithfully_are_refused(bad, words):
    with pytest.raises(BadDescription) as info:
        check_description(bad)
    assert words in str(info.value)
    with pytest.raises(BadDescription):
        sign_description(TERMINAL, RID, bad)


@pytest.mark.parametrize("good", ["2 coffees, 1 croissant", "拿铁 ×2（大杯）", "Café crème",
                                  "x" * MAX_CHARS, "¥20.48 lunch set — #12"])
def test_descriptions_people_write(good):
    d = sign_description(TERMINAL, RID, good)
    d.verify(TERMINAL.public_key, RID)
    assert description_from_bytes(description_to_bytes(d)) == d


def test_a_description_signature_binds_text_request_and_key():
    other = PaymentRequest("shop-42", 2048, "CNY", 1_764_800_000_001, bytes(range(16)))
    with pytest.raises(EcashError):
        DESCRIPTION.verify(TERMINAL.public_key, other.request_id)
    with pytest.raises(EcashError):
        Description("3 coffees, 1 croissant", DESCRIPTION.signature).verify(
            TERMINAL.public_key, RID)
    with pytest.raises(EcashError):
        DESCRIPTION.verify(MASTER.public_key, RID)
    # the envelope's signature does not cover it: another domain, another message
    assert not description_message(RID, "").startswith(b"ECASH-1/request")
