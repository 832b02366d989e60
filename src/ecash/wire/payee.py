"""The payee name (``merchant_id``) a wallet shows before its holder pays.

The bank certifies the name, and a holder decides to pay on reading it, so
it must read as what it is: no bidirectional overrides that reorder what is
shown, no invisible characters, no letters of one script standing in for
look-alikes of another. The rules are a maintained implementation of a
standard profile, not a hand-written filter: PRECIS (RFC 8264) through the
UsernameCasePreserved profile of RFC 8265 (letters, digits and symbols of
the IdentifierClass, the Bidi Rule of RFC 5893, no spaces, no controls, no
default-ignorable code points), and the name must already be in the form
the profile gives it (so what is stored and certified is what is shown).
On top, Unicode's confusables data (UTS #39) refuses a name that mixes
scripts, like a Cyrillic "о" among Latin letters.

A whole name in a single other script that happens to look like a Latin
word is not caught here; that is a matter of the bank's review of names.
"""

from __future__ import annotations

import unicodedata

from confusable_homoglyphs import categories, confusables
from precis_i18n import get_profile

MAX_BYTES = 64  # a certificate's merchant_id field

_PROFILE = get_profile("UsernameCasePreserved")
_NEUTRAL = {"COMMON", "INHERITED"}  # digits, "-", "." and combining marks go with any script
# the script mixes UTS #39 allows even at its "highly restrictive" level: how
# Japanese, Chinese and Korean are written
_WRITTEN_TOGETHER = ({"HAN", "HIRAGANA", "KATAKANA"}, {"HAN", "BOPOMOFO"}, {"HAN", "HANGUL"})


class BadPayeeName(ValueError):
    """A ``merchant_id`` a wallet could not show faithfully; the message says why."""


def _describe(ch: str) -> str:
    return f"U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed character')}"


def check_merchant_id(name: str) -> str:
    """``name`` if it may be a payee name; otherwise :class:`BadPayeeName`
    saying in words what is wrong with it."""
    if not name:
        raise BadPayeeName("merchant_id is empty")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise BadPayeeName(f"merchant_id is longer than {MAX_BYTES} UTF-8 bytes")
    try:
        canonical = _PROFILE.enforce(name)
    except UnicodeEncodeError as exc:
        ch = name[exc.start] if 0 <= exc.start < len(name) else ""
        reason = exc.reason.split("/", 1)[-1].replace("_", " ")
        where = f" {_describe(ch)} at position {exc.start}" if ch else ""
        raise BadPayeeName(f"merchant_id is not allowed by RFC 8265 (PRECIS): the"
                           f" character{where} is refused ({reason}); use letters, digits"
                           " and - . _ without spaces, controls or invisible"
                           " characters") from None
    if canonical != name:
        raise BadPayeeName(f"merchant_id is not in its canonical form; write it as"
                           f" {canonical!r} (RFC 8265: width and Unicode normalisation)")
    scripts = {categories.alias(ch) for ch in name} - _NEUTRAL
    mixed = len(scripts) > 1 and not any(scripts <= ok for ok in _WRITTEN_TOGETHER)
    if mixed or confusables.is_dangerous(name):
        raise BadPayeeName("merchant_id mixes scripts (" + ", ".join(sorted(scripts)) + "):"
                           " letters of one script that look like another's could pass"
                           " it off as another payee")
    return name


def shown(name: str) -> str:
    """``name`` as a screen may show it: any character a payee name may not
    hold (a control, a bidi override, an invisible one) as a visible ``\\u``
    escape, so that a name that was never checked cannot reorder or hide
    what is shown around it."""
    out = []
    for ch in name:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") or \
                (unicodedata.category(ch) == "Zs" and ch != " "):
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    return "".join(out)
