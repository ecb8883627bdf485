"""Parse, classify and police visitor phone numbers before they are stored or dialled.

This is callengine's toll-fraud gate: every number a website visitor types goes
through :func:`check_number` and only a :class:`VisitorNumber` that came out of it
may be handed to the trunk (via :func:`dial_string_digits`).

Design rules:

* Parsing, validation and classification are done by ``phonenumbers`` (Google's
  libphonenumber metadata); nothing here hand-rolls numbering-plan knowledge.
* Deny by default: an empty region allowlist refuses everything, and only
  ordinary subscriber numbers (mobile / fixed line) are allowed unless the
  operator opts in to more kinds.
* No I/O and no logging. Nothing that can end up in a log line -- ``str()``,
  ``repr()``, exception messages -- ever contains a full number; they use the
  masked form (``+48 *** *** 567``) or no number at all.
"""

from __future__ import annotations

import copy
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

import phonenumbers
from phonenumbers import (
    NumberParseException,
    PhoneNumberFormat,
    PhoneNumberType,
    ValidationResult,
)

__all__ = [
    "DEFAULT_ALLOWED_KINDS",
    "DIAL_FORMATS",
    "KINDS",
    "MAX_RAW_LENGTH",
    "REJECT_CODES",
    "SUPPORTED_REGIONS",
    "NumberPolicy",
    "NumberRejected",
    "VisitorNumber",
    "check_number",
    "dial_string_digits",
    "mask",
]

#: Longest input (after stripping surrounding whitespace) we even try to parse.
#: A real international number, generously punctuated, fits comfortably.
MAX_RAW_LENGTH = 32

_KIND_BY_TYPE: dict[int, str] = {
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.PERSONAL_NUMBER: "personal_number",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
    PhoneNumberType.UNKNOWN: "unknown",
}

#: Every kind a :class:`VisitorNumber` can have.
KINDS: frozenset[str] = frozenset(_KIND_BY_TYPE.values())

#: Kinds allowed when a policy does not say otherwise: ordinary subscriber lines.
DEFAULT_ALLOWED_KINDS: frozenset[str] = frozenset({"mobile", "fixed_line", "fixed_line_or_mobile"})

#: Machine codes carried by :class:`NumberRejected`.
REJECT_CODES: frozenset[str] = frozenset(
    {"unparseable", "invalid", "too-long", "too-short", "country-not-allowed", "type-not-allowed"}
)

#: Formats understood by :func:`dial_string_digits`.
DIAL_FORMATS: frozenset[str] = frozenset({"e164", "e164-digits", "00"})

# Syntactic E.164: "+", a non-zero country-code digit, at most 15 digits in total.
# ASCII only on purpose ([0-9], not \d, which would match any Unicode digit).
_E164_RE = re.compile(r"\+[1-9][0-9]{1,14}")
_REGION_RE = re.compile(r"[A-Z]{2}")

#: The ISO 3166 regions a policy may name: those libphonenumber has metadata for (not "UK",
#: "EU", "XK" or "ZZ"; not "001", the non-geographic numbers).
SUPPORTED_REGIONS: frozenset[str] = frozenset(
    r for r in phonenumbers.SUPPORTED_REGIONS if _REGION_RE.fullmatch(r)
)

# Characters a visitor may legitimately type around the digits: plus signs and
# the usual punctuation (ASCII and the full-width / typographic variants that
# phones, IMEs and copy-paste produce). Letters are refused outright, which also
# refuses vanity numbers ("1-800-FLOWERS"), extensions ("ext. 12", "x12"), URIs
# ("tel:", "sip:") and anything else that is not plainly a phone number.
_ALLOWED_PUNCTUATION = frozenset(
    "+\uff0b"  # plus, full-width plus
    "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\uff0d"  # hyphens, dashes, minus
    "().[]/"
    "\uff08\uff09\uff0e\uff3b\uff3d\uff0f"  # full-width ( ) . [ ] /
    "\u00ad\u200b\u2060"  # soft hyphen, zero-width space, word joiner (copy-paste debris)
)
_PLUS_SIGNS = frozenset("+\uff0b")

_PARSE_ERROR_CODES = {
    NumberParseException.NOT_A_NUMBER: "unparseable",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too-short",
    NumberParseException.TOO_SHORT_NSN: "too-short",
    NumberParseException.TOO_LONG: "too-long",
}

_KIND_LABELS = {kind: kind.replace("_", " ") for kind in KINDS}
_KIND_LABELS["uan"] = "universal access (UAN)"
_KIND_LABELS["voip"] = "VoIP"


class NumberRejected(ValueError):
    """A visitor-supplied number was refused.

    ``code`` is a stable machine code (see :data:`REJECT_CODES`); ``message`` (also
    ``str(exc)``) is a human explanation that never contains the number itself.
    ``region`` / ``kind`` are filled in when the number was understood but refused
    by policy ("country-not-allowed" / "type-not-allowed").
    """

    def __init__(
        self, code: str, message: str, *, region: str | None = None, kind: str | None = None
    ) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.region = region
        self.kind = kind

    def __str__(self) -> str:
        return self.message


def _mask_keep(n_digits: int) -> int:
    """How many trailing digits stay visible out of ``n_digits`` maskable ones.

    Normally 3, but at least 3 digits are always hidden, so the handful of
    countries with 4- or 5-digit subscriber numbers (Niue, St Helena, ...) are not
    effectively printed in full.
    """
    return 3 if n_digits >= 6 else max(0, n_digits - 3)


def _mask_fallback(text: str) -> str:
    keep = _mask_keep(len(text))
    return "*" * (len(text) - keep) + (text[-keep:] if keep else "")


def mask(e164: str, parsed: phonenumbers.PhoneNumber | None = None) -> str:
    """Masked, log-safe rendering of a stored number, e.g. ``+48 *** *** 567``.

    The international format of the number is kept (country code and grouping),
    and every digit after the country code except the last 3 becomes ``*``.
    Never raises: input that is not a parseable international number is masked
    character by character, leaving only its last 3 characters visible.
    parsed: the number as phonenumbers parsed it already (check_number's: no second parse).
    """
    try:
        if e164 is None:
            return ""
        text = e164 if isinstance(e164, str) else str(e164)
        text = text.strip()
        if not text:
            return ""
        if parsed is not None:
            return _mask_parsed(parsed, text)
        try:
            num = phonenumbers.parse(text, None)
        except NumberParseException:
            return _mask_fallback(text)
        return _mask_parsed(num, text)
    except Exception:  # noqa: BLE001 - masking must never be the thing that crashes
        return "***"


def _mask_parsed(num: phonenumbers.PhoneNumber, text: str) -> str:
    """mask() of a number phonenumbers has parsed already."""
    if num.extension:  # never render an extension (a copy: the caller's stays whole)
        num = copy.copy(num)
        num.extension = None
    intl = phonenumbers.format_number(num, PhoneNumberFormat.INTERNATIONAL)
    prefix = f"+{num.country_code}"
    if not intl.startswith(prefix):  # pragma: no cover - defensive
        return _mask_fallback(text)
    rest = intl[len(prefix):]
    n_digits = sum(ch.isdigit() for ch in rest)
    to_hide = n_digits - _mask_keep(n_digits)
    out = []
    for ch in rest:
        if ch.isdigit() and to_hide > 0:
            out.append("*")
            to_hide -= 1
        else:
            out.append(ch)
    return prefix + "".join(out)


@dataclass(frozen=True, repr=False)
class VisitorNumber:
    """A number that passed :func:`check_number`.

    ``e164`` is the canonical ``+CCNSN`` form, ``region`` the ISO 3166 country the
    number belongs to, ``kind`` one of :data:`KINDS`. ``str()`` and ``repr()`` give
    the masked form so an accidental log line never leaks the number.
    """

    e164: str
    region: str
    kind: str
    # The number as check_number parsed it, for masked() (made only when asked: most refused
    # requests and every duplicate never show it) without a second parse.
    parsed: phonenumbers.PhoneNumber | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.e164, str) or not _E164_RE.fullmatch(self.e164):
            raise ValueError(
                "VisitorNumber.e164 must be an E.164 string: '+', country code, national number"
            )
        if not isinstance(self.region, str) or not _REGION_RE.fullmatch(self.region):
            raise ValueError("VisitorNumber.region must be an upper-case ISO 3166 alpha-2 code")
        if self.kind not in KINDS:
            raise ValueError(f"VisitorNumber.kind must be one of {sorted(KINDS)}")

    def masked(self) -> str:
        """E.g. ``+48 *** *** 567``."""
        return mask(self.e164, self.parsed)

    def __str__(self) -> str:
        return self.masked()

    def __repr__(self) -> str:
        return self.masked()


def _normalize_regions(value: object, name: str) -> frozenset[str]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a set of ISO region codes, e.g. frozenset({{'PL'}})")
    regions = set()
    for item in value:
        if not isinstance(item, str):
            raise TypeError(f"{name} must contain strings, got {type(item).__name__}")
        regions.add(item.strip().upper())
    unknown = regions - phonenumbers.SUPPORTED_REGIONS
    if unknown:
        hints = []
        if "UK" in unknown:
            hints.append("use 'GB' for the United Kingdom")
        if phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY in unknown:
            hints.append(
                "non-geographic numbers (+800, +870, +881, +882, ...: international freephone,"
                " satellite, international networks) cannot be allowed"
            )
        hint = f" ({'; '.join(hints)})" if hints else ""
        raise ValueError(f"{name}: unknown region code(s) {sorted(unknown)}{hint}")
    return frozenset(regions)


def _normalize_kinds(value: object) -> frozenset[str]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError("allowed_kinds must be a set of kinds, e.g. frozenset({'mobile'})")
    kinds = set()
    for item in value:
        if not isinstance(item, str):
            raise TypeError(f"allowed_kinds must contain strings, got {type(item).__name__}")
        kinds.add(item.strip().lower())
    unknown = kinds - KINDS
    if unknown:
        raise ValueError(
            f"allowed_kinds: unknown kind(s) {sorted(unknown)}; valid: {sorted(KINDS)}"
        )
    return frozenset(kinds)


@dataclass(frozen=True)
class NumberPolicy:
    """Which numbers the engine may call.

    * ``allowed_regions`` -- ISO 3166 alpha-2 codes (case-insensitive, normalised to
      upper case). Empty means *nothing* is allowed: the operator must configure the
      allowlist explicitly. Note that regions sharing a country calling code are
      distinct: allowing ``US`` does not allow Jamaica (+1 876) and allowing ``GB``
      does not allow Guernsey/Jersey/Isle of Man (+44). Unknown codes (e.g. ``UK``)
      raise ``ValueError``, as does ``001`` (non-geographic / satellite numbers).
    * ``allowed_kinds`` -- subset of :data:`KINDS`; default
      :data:`DEFAULT_ALLOWED_KINDS`. ``voip`` and the paid/special kinds must be
      opted into explicitly.
    * ``default_region`` -- region used to read national-format input such as
      ``601 234 567`` (``PL``); ``None`` means only international input is accepted.
    """

    allowed_regions: frozenset[str] = field(default_factory=frozenset)
    allowed_kinds: frozenset[str] = DEFAULT_ALLOWED_KINDS
    default_region: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "allowed_regions", _normalize_regions(self.allowed_regions, "allowed_regions")
        )
        object.__setattr__(self, "allowed_kinds", _normalize_kinds(self.allowed_kinds))
        if self.default_region is not None:
            if not isinstance(self.default_region, str):
                raise TypeError("default_region must be an ISO region code or None")
            region = self.default_region.strip().upper()
            if region not in phonenumbers.SUPPORTED_REGIONS:
                raise ValueError(f"default_region: unknown region code {region!r}")
            object.__setattr__(self, "default_region", region)


def _is_blank(ch: str) -> bool:
    """Space-like separators (incl. NBSP, thin space); not newlines or control characters."""
    return ch == "\t" or unicodedata.category(ch) == "Zs"


def _is_zero(ch: str) -> bool:
    return unicodedata.decimal(ch, None) == 0


def check_number(raw: str, policy: NumberPolicy) -> VisitorNumber:
    """Turn visitor input into a :class:`VisitorNumber` or raise :class:`NumberRejected`.

    Steps: strip and length-limit the input, refuse characters that cannot be part
    of a plainly typed phone number, accept ``+`` or ``00`` as the international
    prefix (and national format when ``policy.default_region`` is set), parse and
    require a *valid* number, classify it, then enforce the region and kind
    allowlists. Error messages never contain the number.
    """
    if not isinstance(policy, NumberPolicy):
        raise TypeError("policy must be a NumberPolicy")
    if not isinstance(raw, str):
        raise NumberRejected("unparseable", "phone number must be given as text")

    text = raw.strip()
    if not text:
        raise NumberRejected("unparseable", "no phone number given")
    if len(text) > MAX_RAW_LENGTH:
        raise NumberRejected(
            "too-long", f"phone number input is too long (at most {MAX_RAW_LENGTH} characters)"
        )
    for ch in text:
        if not (ch.isdecimal() or ch in _ALLOWED_PUNCTUATION or _is_blank(ch)):
            raise NumberRejected(
                "unparseable",
                "phone number may only contain digits, spaces, a leading + and - ( ) . /",
            )

    # "00" is the ITU international prefix; phonenumbers only understands it when
    # the default region's IDD happens to be 00, so normalise it to "+" up front.
    if len(text) >= 2 and _is_zero(text[0]) and _is_zero(text[1]):
        text = "+" + text[2:]
    international = text[0] in _PLUS_SIGNS

    # Map parse failures to codes outside the except block, so the library
    # exception is not kept as __context__ on the one we raise.
    parse_error: int | None = None
    try:
        num = phonenumbers.parse(text, None if international else policy.default_region)
    except NumberParseException as exc:
        parse_error = exc.error_type
    if parse_error is not None:
        if parse_error == NumberParseException.INVALID_COUNTRY_CODE:
            if international:
                raise NumberRejected("invalid", "unknown country calling code")
            raise NumberRejected(
                "unparseable",
                "enter the number in international format:"
                " + or 00, then the country code and the number",
            )
        code = _PARSE_ERROR_CODES.get(parse_error, "unparseable")
        messages = {
            "unparseable": "this does not look like a phone number",
            "too-short": "phone number is too short",
            "too-long": "phone number is too long",
        }
        raise NumberRejected(code, messages[code])

    if num.extension:  # unreachable with the character allowlist above; defensive
        raise NumberRejected("invalid", "phone number extensions are not supported")

    if not phonenumbers.is_valid_number(num):
        reason = phonenumbers.is_possible_number_with_reason(num)
        if reason == ValidationResult.TOO_SHORT:
            raise NumberRejected("too-short", "phone number is too short")
        if reason == ValidationResult.IS_POSSIBLE_LOCAL_ONLY:
            raise NumberRejected("too-short", "phone number is too short; include the area code")
        if reason == ValidationResult.TOO_LONG:
            raise NumberRejected("too-long", "phone number is too long")
        if reason == ValidationResult.INVALID_COUNTRY_CODE:
            raise NumberRejected("invalid", "unknown country calling code")
        raise NumberRejected("invalid", "this is not a valid phone number")

    region = phonenumbers.region_code_for_number(num)
    if not region or not _REGION_RE.fullmatch(region):
        # None, or "001" for non-geographic numbers (+800, +870, +881, +882, ...).
        raise NumberRejected(
            "country-not-allowed",
            "calls to non-geographic numbers are not allowed",
            region=region or None,
        )
    kind = _KIND_BY_TYPE.get(phonenumbers.number_type(num), "unknown")

    if region not in policy.allowed_regions:
        raise NumberRejected(
            "country-not-allowed",
            f"calls to region {region} are not allowed",
            region=region,
            kind=kind,
        )
    if kind not in policy.allowed_kinds:
        raise NumberRejected(
            "type-not-allowed",
            f"calls to {_KIND_LABELS[kind]} numbers are not allowed",
            region=region,
            kind=kind,
        )

    e164 = phonenumbers.format_number(num, PhoneNumberFormat.E164)
    return VisitorNumber(e164=e164, region=region, kind=kind, parsed=num)


def dial_string_digits(number: VisitorNumber, fmt: str = "e164") -> str:
    """The number as sent to the trunk.

    ``"e164"`` -> ``+48601234567``, ``"e164-digits"`` -> ``48601234567``,
    ``"00"`` -> ``0048601234567``. The result is re-checked to be ``+``/digits only,
    so nothing else can ever be spliced into an Asterisk dial string.
    """
    if not isinstance(number, VisitorNumber):
        raise TypeError("dial_string_digits() needs a VisitorNumber from check_number()")
    if fmt not in DIAL_FORMATS:
        raise ValueError(f"unknown dial format {fmt!r}; expected one of {sorted(DIAL_FORMATS)}")
    e164 = number.e164
    if not isinstance(e164, str) or not _E164_RE.fullmatch(e164):
        raise ValueError("VisitorNumber does not hold a well-formed E.164 number")
    digits = e164[1:]
    if fmt == "e164":
        return "+" + digits
    if fmt == "e164-digits":
        return digits
    return "00" + digits


def any_number(raw: str) -> VisitorNumber:
    """Parse a number for lookups (data-subject requests): valid, any region, any kind.

    Never used to decide what may be dialled; that is check_number with a widget's policy."""
    policy = NumberPolicy(
        allowed_regions=frozenset(phonenumbers.SUPPORTED_REGIONS), allowed_kinds=KINDS
    )
    return check_number(raw, policy)
