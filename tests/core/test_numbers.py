"""Tests for callengine.numbers: parsing, classification, policy and masking."""

from __future__ import annotations

import dataclasses
import pickle
import re

import phonenumbers
import pytest
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from callengine.numbers import (
    DEFAULT_ALLOWED_KINDS,
    KINDS,
    MAX_RAW_LENGTH,
    REJECT_CODES,
    NumberPolicy,
    NumberRejected,
    VisitorNumber,
    check_number,
    dial_string_digits,
    mask,
)

FIVE = frozenset({"PL", "DE", "GB", "US", "FR"})
POLICY = NumberPolicy(allowed_regions=FIVE)
ALL_KINDS = NumberPolicy(allowed_regions=FIVE, allowed_kinds=KINDS)


def digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def example(region: str, ptype: int) -> str:
    num = phonenumbers.example_number_for_type(region, ptype)
    assert num is not None, (region, ptype)
    return phonenumbers.format_number(num, PhoneNumberFormat.E164)


# --------------------------------------------------------------------------- accepted

ACCEPTED = [
    # raw, default_region, e164, region, kind
    ("+48 601 234 567", None, "+48601234567", "PL", "mobile"),
    ("+48 512 345 678", None, "+48512345678", "PL", "mobile"),
    ("+48 12 345 67 89", None, "+48123456789", "PL", "fixed_line"),
    ("+49 1512 3456789", None, "+4915123456789", "DE", "mobile"),
    ("+49 30 901820", None, "+4930901820", "DE", "fixed_line"),
    ("+44 7400 123456", None, "+447400123456", "GB", "mobile"),
    ("+44 121 234 5678", None, "+441212345678", "GB", "fixed_line"),
    ("+1 201-555-0123", None, "+12015550123", "US", "fixed_line_or_mobile"),
    ("+1 (650) 253-0000", None, "+16502530000", "US", "fixed_line_or_mobile"),
    ("+33 6 12 34 56 78", None, "+33612345678", "FR", "mobile"),
    ("+33 1 42 68 53 00", None, "+33142685300", "FR", "fixed_line"),
    ("+48601234567", None, "+48601234567", "PL", "mobile"),
    ("+48-601-234-567", None, "+48601234567", "PL", "mobile"),
    ("+48.601.234.567", None, "+48601234567", "PL", "mobile"),
    # national format, read with the policy's default region
    ("601 234 567", "PL", "+48601234567", "PL", "mobile"),
    ("12 345 67 89", "PL", "+48123456789", "PL", "fixed_line"),
    ("030 901820", "DE", "+4930901820", "DE", "fixed_line"),
    ("01512 3456789", "DE", "+4915123456789", "DE", "mobile"),
    ("07400 123456", "GB", "+447400123456", "GB", "mobile"),
    ("(201) 555-0123", "US", "+12015550123", "US", "fixed_line_or_mobile"),
    ("06 12 34 56 78", "FR", "+33612345678", "FR", "mobile"),
    # an explicit + wins over the default region
    ("+48 601 234 567", "DE", "+48601234567", "PL", "mobile"),
    # 00 international prefix, with or without a default region
    ("0048601234567", None, "+48601234567", "PL", "mobile"),
    ("00 48 601 234 567", None, "+48601234567", "PL", "mobile"),
    ("0049 30 901820", "PL", "+4930901820", "DE", "fixed_line"),
    ("0048601234567", "US", "+48601234567", "PL", "mobile"),  # 00 is not the US IDD
    ("0044 7400 123456", "GB", "+447400123456", "GB", "mobile"),
    ("011 48 601 234 567", "US", "+48601234567", "PL", "mobile"),  # US IDD via phonenumbers
    # surrounding whitespace, NBSP, full-width characters (phone IMEs / copy-paste)
    ("  +48 601 234 567\n", None, "+48601234567", "PL", "mobile"),
    ("+48\u00a0601\u00a0234\u00a0567", None, "+48601234567", "PL", "mobile"),
    ("\uff0b\uff14\uff18\uff16\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17", None,
     "+48601234567", "PL", "mobile"),
    ("\uff10\uff10\uff14\uff18\uff16\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17", None,
     "+48601234567", "PL", "mobile"),
]


@pytest.mark.parametrize(("raw", "default_region", "e164", "region", "kind"), ACCEPTED)
def test_accepts_valid_numbers(raw, default_region, e164, region, kind):
    policy = NumberPolicy(allowed_regions=FIVE, default_region=default_region)
    number = check_number(raw, policy)
    assert number == VisitorNumber(e164=e164, region=region, kind=kind)


@pytest.mark.parametrize("region", sorted(FIVE))
@pytest.mark.parametrize("ptype", [PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE])
def test_accepts_library_example_numbers(region, ptype):
    e164 = example(region, ptype)
    number = check_number(e164, POLICY)
    assert number.e164 == e164
    assert number.region == region
    assert number.kind in DEFAULT_ALLOWED_KINDS


# --------------------------------------------------------------------------- rejected

REJECTED = [
    # raw, default_region, code
    # garbage / not a phone number
    ("", None, "unparseable"),
    ("   \t ", None, "unparseable"),
    ("abc", None, "unparseable"),
    ("hello world", "PL", "unparseable"),
    ("+", None, "unparseable"),
    ("---", "PL", "unparseable"),
    ("()", "PL", "unparseable"),
    ("601234567abc", "PL", "unparseable"),
    ("1-800-FLOWERS", "US", "unparseable"),  # vanity letters are refused
    ("+48 601 234 567 ext. 12", None, "unparseable"),  # no extensions
    ("+48601234567x12", None, "unparseable"),
    ("+48601234567;ext=12", None, "unparseable"),
    ("tel:+48601234567", None, "unparseable"),
    ("sip:+48601234567@evil", None, "unparseable"),
    ("+48601234567&SIP/x", None, "unparseable"),
    ("*#06#", None, "unparseable"),
    ("+48 601\n234 567", None, "unparseable"),
    ("+48601234567\x00", None, "unparseable"),
    ("<script>", None, "unparseable"),
    ("+48601234567+1", None, "unparseable"),
    # national format without a default region
    ("601 234 567", None, "unparseable"),
    ("(201) 555-0123", None, "unparseable"),
    # too long (raw length limit, then number length)
    ("1" * (MAX_RAW_LENGTH + 1), "PL", "too-long"),
    ("+48 6 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4", None, "too-long"),
    ("+48 601 234 567 " + " " * 40 + "x", None, "too-long"),
    ("+4860123456789012345", None, "too-long"),
    ("0048601234567890123", None, "too-long"),
    # too short
    ("+48 12", None, "too-short"),
    ("12", "PL", "too-short"),
    ("+48 601", None, "too-short"),
    ("00 48 1", None, "too-short"),
    # invalid numbers
    ("+48 000 000 000", None, "invalid"),
    ("+999 123 456 789", None, "invalid"),  # unassigned country code
    ("0099 123456789", None, "invalid"),
    ("+1 201-055-0123", None, "invalid"),  # NANP exchange cannot start with 0
    ("+1 555-555-5555", None, "invalid"),
    ("601 234 567", "DE", "invalid"),  # a Polish national number read as German
]


@pytest.mark.parametrize(("raw", "default_region", "code"), REJECTED)
def test_rejects_bad_input(raw, default_region, code):
    policy = NumberPolicy(allowed_regions=FIVE, allowed_kinds=KINDS, default_region=default_region)
    with pytest.raises(NumberRejected) as info:
        check_number(raw, policy)
    assert info.value.code == code
    assert info.value.code in REJECT_CODES
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("raw", [None, 48601234567, b"+48601234567", ["+48601234567"]])
def test_rejects_non_text_input(raw):
    with pytest.raises(NumberRejected) as info:
        check_number(raw, POLICY)
    assert info.value.code == "unparseable"


def test_check_number_requires_policy():
    with pytest.raises(TypeError):
        check_number("+48601234567", {"allowed_regions": {"PL"}})


# --------------------------------------------------------------------------- number kinds

REFUSED_KINDS = [
    # raw, expected kind(s)
    # premium rate
    ("+44 909 123 4567", {"premium_rate"}),  # UK 09xx
    ("+44 901 234 5678", {"premium_rate"}),
    ("+44 908 123 4567", {"premium_rate"}),
    ("+48 701 234 567", {"premium_rate"}),  # PL 70x
    ("+48 703 123 456", {"premium_rate"}),
    ("+48 708 123 456", {"premium_rate"}),
    ("+49 900 1 234567", {"premium_rate"}),
    ("+1 900-234-5678", {"premium_rate"}),
    ("+33 891 12 34 56", {"premium_rate"}),
    # shared cost. libphonenumber currently files UK 084x/087x under premium_rate
    # (GB has no shared-cost range in its metadata); either way they are refused.
    ("+44 843 123 4567", {"shared_cost", "premium_rate"}),
    ("+44 845 123 4567", {"shared_cost", "premium_rate"}),
    ("+44 870 123 4567", {"shared_cost", "premium_rate"}),
    ("+44 871 234 5678", {"shared_cost", "premium_rate"}),
    ("+48 801 123 456", {"shared_cost"}),  # PL 801
    ("+49 180 1 2345", {"shared_cost"}),
    ("+33 884 01 23 45", {"shared_cost"}),
    # toll free
    ("+48 800 123 456", {"toll_free"}),
    ("+44 800 123 4567", {"toll_free"}),
    ("+44 808 157 0192", {"toll_free"}),
    ("+1 800-234-5678", {"toll_free"}),
    ("+1 888-234-5678", {"toll_free"}),
    ("+49 800 1234567890", {"toll_free"}),
    ("+33 801 23 45 67", {"toll_free"}),
    # personal numbers, pagers, UAN, voicemail
    ("+44 70 1234 5678", {"personal_number"}),
    ("+49 700 1234 5678", {"personal_number"}),
    ("+1 500-234-5678", {"personal_number"}),
    ("+44 76 4012 3456", {"pager"}),
    ("+48 641 234 567", {"pager"}),
    ("+48 804 123 456", {"uan"}),
    ("+44 55 1234 5678", {"uan"}),
    ("+33 806 12 34 56", {"uan"}),
    ("+49 177 99 1234567", {"voicemail"}),
    # VoIP is refused unless configured
    ("+44 56 1234 5678", {"voip"}),
    ("+48 391 234 567", {"voip"}),
    ("+33 9 12 34 56 78", {"voip"}),
]


@pytest.mark.parametrize(("raw", "kinds"), REFUSED_KINDS)
def test_refuses_special_kinds_by_default(raw, kinds):
    with pytest.raises(NumberRejected) as info:
        check_number(raw, POLICY)
    assert info.value.code == "type-not-allowed"
    assert info.value.kind in kinds
    assert info.value.region in FIVE


@pytest.mark.parametrize(("raw", "kinds"), REFUSED_KINDS)
def test_special_kinds_are_valid_numbers_and_pass_when_explicitly_allowed(raw, kinds):
    number = check_number(raw, ALL_KINDS)
    assert number.kind in kinds


@pytest.mark.parametrize(
    ("region", "ptype", "kind"),
    [
        ("GB", PhoneNumberType.PREMIUM_RATE, "premium_rate"),
        ("PL", PhoneNumberType.PREMIUM_RATE, "premium_rate"),
        ("DE", PhoneNumberType.PREMIUM_RATE, "premium_rate"),
        ("FR", PhoneNumberType.PREMIUM_RATE, "premium_rate"),
        ("US", PhoneNumberType.PREMIUM_RATE, "premium_rate"),
        ("PL", PhoneNumberType.SHARED_COST, "shared_cost"),
        ("DE", PhoneNumberType.SHARED_COST, "shared_cost"),
        ("FR", PhoneNumberType.SHARED_COST, "shared_cost"),
        ("GB", PhoneNumberType.TOLL_FREE, "toll_free"),
        ("US", PhoneNumberType.TOLL_FREE, "toll_free"),
        ("PL", PhoneNumberType.TOLL_FREE, "toll_free"),
        ("GB", PhoneNumberType.PERSONAL_NUMBER, "personal_number"),
        ("GB", PhoneNumberType.PAGER, "pager"),
        ("GB", PhoneNumberType.UAN, "uan"),
        ("DE", PhoneNumberType.VOICEMAIL, "voicemail"),
        ("GB", PhoneNumberType.VOIP, "voip"),
    ],
)
def test_refuses_library_example_special_numbers(region, ptype, kind):
    with pytest.raises(NumberRejected) as info:
        check_number(example(region, ptype), POLICY)
    assert info.value.code == "type-not-allowed"
    assert info.value.kind == kind


@pytest.mark.parametrize("raw", ["+44 56 1234 5678", "+48 391 234 567", "+33 9 12 34 56 78"])
def test_voip_allowed_only_when_configured(raw):
    with pytest.raises(NumberRejected) as info:
        check_number(raw, POLICY)
    assert info.value.code == "type-not-allowed"

    policy = NumberPolicy(allowed_regions=FIVE, allowed_kinds=DEFAULT_ALLOWED_KINDS | {"voip"})
    number = check_number(raw, policy)
    assert number.kind == "voip"

    # adding voip does not open up anything else
    with pytest.raises(NumberRejected) as info:
        check_number("+44 909 123 4567", policy)
    assert info.value.code == "type-not-allowed"


def test_kind_allowlist_can_be_narrowed():
    mobile_only = NumberPolicy(allowed_regions=FIVE, allowed_kinds=frozenset({"mobile"}))
    assert check_number("+48 601 234 567", mobile_only).kind == "mobile"
    with pytest.raises(NumberRejected) as info:
        check_number("+48 12 345 67 89", mobile_only)
    assert (info.value.code, info.value.kind) == ("type-not-allowed", "fixed_line")


# --------------------------------------------------------------------------- regions

NOT_ALLOWED_REGIONS = [
    # raw, allowed regions, region of the number
    ("+49 30 901820", {"PL"}, "DE"),
    ("+44 7400 123456", {"PL"}, "GB"),
    ("+1 201-555-0123", {"PL", "DE"}, "US"),
    ("+33 6 12 34 56 78", {"PL"}, "FR"),
    ("+48 601 234 567", {"DE", "GB", "US", "FR"}, "PL"),
    ("+7 912 345-67-89", FIVE, "RU"),
    # same country calling code, different country: a classic callback-scam angle
    ("+1 876-210-1234", {"US"}, "JM"),  # Jamaica, +1 876
    ("+1 809-234-5678", {"US"}, "DO"),  # Dominican Republic, +1 809
    ("+1 416-555-0199", {"US"}, "CA"),
    ("+44 1481 256789", {"GB"}, "GG"),  # Guernsey, +44
    ("+44 7911 123456", {"GB"}, "GG"),  # Guernsey mobile range
    ("+44 1534 456789", {"GB"}, "JE"),  # Jersey
    ("+44 1624 756789", {"GB"}, "IM"),  # Isle of Man
]


@pytest.mark.parametrize(("raw", "regions", "region"), NOT_ALLOWED_REGIONS)
def test_region_not_in_allowlist(raw, regions, region):
    policy = NumberPolicy(allowed_regions=frozenset(regions), allowed_kinds=KINDS)
    with pytest.raises(NumberRejected) as info:
        check_number(raw, policy)
    assert info.value.code == "country-not-allowed"
    assert info.value.region == region
    # ... and it is accepted once that region is allowed
    allowed = NumberPolicy(allowed_regions=frozenset(regions) | {region}, allowed_kinds=KINDS)
    assert check_number(raw, allowed).region == region


@pytest.mark.parametrize(
    "raw",
    [
        "+881 6 123 45678",  # Iridium satellite (classified "mobile")
        "+870 301 234 567",  # Inmarsat
        "+882 34 21234",  # international networks
        "+883 510 012 345",
        "+800 1234 5678",  # universal international freephone
        "+979 1 2345 6789",  # international premium rate
        "00 881 6 123 45678",
    ],
)
def test_non_geographic_numbers_always_refused(raw):
    everything = NumberPolicy(allowed_regions=phonenumbers.SUPPORTED_REGIONS, allowed_kinds=KINDS)
    with pytest.raises(NumberRejected) as info:
        check_number(raw, everything)
    assert info.value.code == "country-not-allowed"


@pytest.mark.parametrize(
    "raw", ["+48 601 234 567", "+49 30 901820", "+44 7400 123456", "+1 201-555-0123", "+33 6 12 34 56 78"]
)
@pytest.mark.parametrize(
    "policy",
    [
        NumberPolicy(),
        NumberPolicy(allowed_regions=frozenset()),
        NumberPolicy(allowed_kinds=KINDS, default_region="PL"),
    ],
)
def test_empty_allowlist_refuses_everything(raw, policy):
    assert policy.allowed_regions == frozenset()
    with pytest.raises(NumberRejected) as info:
        check_number(raw, policy)
    assert info.value.code == "country-not-allowed"


def test_region_checked_before_kind():
    policy = NumberPolicy(allowed_regions=frozenset({"US"}))
    with pytest.raises(NumberRejected) as info:
        check_number("+1 876-210-1234", policy)  # Jamaican mobile
    assert info.value.code == "country-not-allowed"


# --------------------------------------------------------------------------- policy object


def test_policy_defaults():
    policy = NumberPolicy()
    assert policy.allowed_regions == frozenset()
    assert policy.allowed_kinds == frozenset({"mobile", "fixed_line", "fixed_line_or_mobile"})
    assert policy.default_region is None
    for refused in ("premium_rate", "shared_cost", "toll_free", "personal_number", "uan",
                    "pager", "voicemail", "unknown", "voip"):
        assert refused not in policy.allowed_kinds


def test_policy_normalises_input():
    policy = NumberPolicy(allowed_regions=["pl", " de "], allowed_kinds=["Mobile"], default_region="pl")
    assert policy.allowed_regions == frozenset({"PL", "DE"})
    assert policy.allowed_kinds == frozenset({"mobile"})
    assert policy.default_region == "PL"
    assert isinstance(policy.allowed_regions, frozenset)
    hash(policy)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.allowed_regions = frozenset({"US"})  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "exc", "fragment"),
    [
        ({"allowed_regions": {"UK"}}, ValueError, "GB"),
        ({"allowed_regions": {"001"}}, ValueError, "non-geographic"),
        ({"allowed_regions": {"XX"}}, ValueError, "XX"),
        ({"allowed_regions": "PL"}, TypeError, "set"),
        ({"allowed_regions": {48}}, TypeError, "strings"),
        ({"allowed_regions": None}, TypeError, "set"),
        ({"allowed_regions": {"PL"}, "allowed_kinds": {"moblie"}}, ValueError, "moblie"),
        ({"allowed_regions": {"PL"}, "allowed_kinds": "mobile"}, TypeError, "set"),
        ({"allowed_regions": {"PL"}, "default_region": "XX"}, ValueError, "XX"),
        ({"allowed_regions": {"PL"}, "default_region": "001"}, ValueError, "001"),
        ({"allowed_regions": {"PL"}, "default_region": 48}, TypeError, "default_region"),
    ],
)
def test_policy_rejects_bad_configuration(kwargs, exc, fragment):
    with pytest.raises(exc, match=re.escape(fragment)):
        NumberPolicy(**kwargs)


# --------------------------------------------------------------------------- masking

MASKED = [
    # e164, masked
    ("+48601234567", "+48 *** *** 567"),
    ("+48123456789", "+48 ** *** *7 89"),
    ("+4915123456789", "+49 **** ****789"),
    ("+4930901820", "+49 ** ***820"),
    ("+447400123456", "+44 **** ***456"),
    ("+441212345678", "+44 *** *** *678"),
    ("+12015550123", "+1 ***-***-*123"),
    ("+33612345678", "+33 * ** ** *6 78"),
    ("+33142685300", "+33 * ** ** *3 00"),
    ("+390212345678", "+39 ** **** *678"),  # Italian leading zero kept in the grouping
    ("+5491123456789", "+54 * ** ****-*789"),
    # tiny numbering plans: at least 3 digits stay hidden
    ("+6837012", "+683 ***2"),  # Niue, 4-digit numbers
    ("+29022158", "+290 ***58"),  # St Helena, 5-digit numbers
    # formatted / padded input of a stored number
    ("+48 601 234 567", "+48 *** *** 567"),
    (" +48601234567\n", "+48 *** *** 567"),
    # parseable but not valid: still grouped as far as the library can
    ("+4812", "+48 **"),
    ("+48601", "+48 ***"),
]


@pytest.mark.parametrize(("e164", "masked"), MASKED)
def test_mask(e164, masked):
    assert mask(e164) == masked


ODD_MASKED = [
    ("", ""),
    ("   ", ""),
    (None, ""),
    ("48601234567", "********567"),  # no "+": not parseable without a region
    ("601234567", "******567"),
    ("+999123456789", "**********789"),  # unknown country code
    ("garbage!", "*****ge!"),
    ("abc", "***"),
    ("12", "**"),
    ("12345", "***45"),
    (48601234567, "********567"),
    ("+48 601 234 567 890 123 456 789", "*" * 28 + "789"),  # too long to parse
]


@pytest.mark.parametrize(("value", "masked"), ODD_MASKED)
def test_mask_odd_input_never_raises(value, masked):
    assert mask(value) == masked


def test_mask_survives_hostile_objects():
    class Boom:
        def __str__(self):
            raise RuntimeError("nope")

    assert mask(Boom()) == "***"
    assert mask(object()).startswith("*")


def test_mask_drops_extension():
    out = mask("+48601234567 ext. 1234")
    assert out == "+48 *** *** 567"


@pytest.mark.parametrize(("raw", "default_region", "e164", "region", "kind"), ACCEPTED)
def test_visitor_number_masked_matches_mask(raw, default_region, e164, region, kind):
    number = VisitorNumber(e164=e164, region=region, kind=kind)
    assert number.masked() == mask(e164)


# --------------------------------------------------------------------------- no leaks

LEAK_CASES = [row[2] for row in ACCEPTED] + [
    example(r, t) for r in sorted(FIVE) for t in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE)
]


@pytest.mark.parametrize("e164", sorted(set(LEAK_CASES)))
def test_str_and_repr_never_show_the_number(e164):
    number = check_number(e164, POLICY)
    num = phonenumbers.parse(e164)
    nsn = phonenumbers.national_significant_number(num)
    cc = str(num.country_code)
    renderings = [str(number), repr(number), f"{number}", f"{number!r}", repr([number]),
                  str({"n": number}), "%s %r" % (number, number), number.masked()]
    for text in renderings:
        assert nsn not in digits(text)
        assert e164 not in text
        assert e164[1:] not in digits(text)
        # exactly the country code and the last 3 digits are visible
        assert digits(text).endswith(nsn[-3:])
        assert digits(text).count(nsn[-3:]) >= 1
    assert str(number) == repr(number) == number.masked()
    assert digits(str(number)) == cc + nsn[-3:]


LEAKY_REJECTIONS = [
    # raw, policy
    ("+48 701 234 567", POLICY),  # type-not-allowed
    ("+48 601 234 567", NumberPolicy()),  # country-not-allowed
    ("+48 000 000 000", POLICY),  # invalid
    ("+48 601 234", POLICY),  # too-short
    ("+48 601 234 567 890 123", POLICY),  # too-long
    ("+48 601 234 567 89 " + "1" * 20, POLICY),  # too-long (raw)
    ("601 234 567", POLICY),  # unparseable (no default region)
    ("+48 601 234 567 ext 9", POLICY),  # unparseable (letters)
    ("+999 601 234 567", POLICY),  # invalid country code
    ("+1 876-210-1234", NumberPolicy(allowed_regions=frozenset({"US"}))),
    ("+881 6 123 45678", ALL_KINDS),
]


@pytest.mark.parametrize(("raw", "policy"), LEAKY_REJECTIONS)
def test_rejection_messages_never_show_the_number(raw, policy):
    with pytest.raises(NumberRejected) as info:
        check_number(raw, policy)
    exc = info.value
    secret = digits(raw)
    # the significant digits without the country code (drop the first 1-3 digits)
    tails = {secret, secret[1:], secret[2:], secret[3:]}
    for text in (str(exc), repr(exc), exc.message, " ".join(map(str, exc.args))):
        for tail in tails:
            assert tail not in digits(text)
    # the library exception is not chained either (tracebacks stay clean)
    assert exc.__cause__ is None
    assert exc.__context__ is None


def test_number_rejected_shape_and_pickle():
    with pytest.raises(NumberRejected) as info:
        check_number("+48 701 234 567", POLICY)
    exc = info.value
    assert str(exc) == exc.message
    assert exc.code == "type-not-allowed"
    assert (exc.region, exc.kind) == ("PL", "premium_rate")
    clone = pickle.loads(pickle.dumps(exc))
    assert (clone.code, clone.message, clone.region, clone.kind) == (
        exc.code, exc.message, exc.region, exc.kind)
    assert str(clone) == str(exc)


# --------------------------------------------------------------------------- VisitorNumber


def test_visitor_number_is_frozen_and_hashable():
    number = check_number("+48 601 234 567", POLICY)
    with pytest.raises(dataclasses.FrozenInstanceError):
        number.e164 = "+48123456789"  # type: ignore[misc]
    assert number == VisitorNumber("+48601234567", "PL", "mobile")
    assert len({number, VisitorNumber("+48601234567", "PL", "mobile")}) == 1


@pytest.mark.parametrize(
    ("e164", "region", "kind"),
    [
        ("48601234567", "PL", "mobile"),
        ("+48 601 234 567", "PL", "mobile"),
        ("+48601234567&SIP/evil", "PL", "mobile"),
        ("+48601234567\n", "PL", "mobile"),
        ("+0601234567", "PL", "mobile"),
        ("+1234567890123456", "PL", "mobile"),  # 16 digits: longer than E.164 allows
        ("+\uff14\uff18601234567", "PL", "mobile"),  # non-ASCII digits
        (48601234567, "PL", "mobile"),
        ("+48601234567", "pl", "mobile"),
        ("+48601234567", "001", "mobile"),
        ("+48601234567", "PL", "cellphone"),
    ],
)
def test_visitor_number_validates_fields(e164, region, kind):
    with pytest.raises(ValueError) as info:
        VisitorNumber(e164=e164, region=region, kind=kind)
    assert "601234567" not in str(info.value)


# --------------------------------------------------------------------------- dial strings


@pytest.mark.parametrize(
    ("e164", "fmt", "expected"),
    [
        ("+48601234567", "e164", "+48601234567"),
        ("+48601234567", "e164-digits", "48601234567"),
        ("+48601234567", "00", "0048601234567"),
        ("+12015550123", "e164", "+12015550123"),
        ("+12015550123", "e164-digits", "12015550123"),
        ("+12015550123", "00", "0012015550123"),
        ("+4930901820", "00", "004930901820"),
    ],
)
def test_dial_string_digits(e164, fmt, expected):
    number = check_number(e164, POLICY)
    assert dial_string_digits(number, fmt) == expected


def test_dial_string_default_is_e164():
    assert dial_string_digits(check_number("0048 601 234 567", POLICY)) == "+48601234567"


@pytest.mark.parametrize("fmt", ["", "E164", "national", "+", None])
def test_dial_string_unknown_format(fmt):
    number = check_number("+48601234567", POLICY)
    with pytest.raises(ValueError):
        dial_string_digits(number, fmt)


def test_dial_string_requires_visitor_number():
    with pytest.raises(TypeError):
        dial_string_digits("+48601234567")  # type: ignore[arg-type]


def test_dial_string_refuses_tampered_number():
    number = check_number("+48601234567", POLICY)
    object.__setattr__(number, "e164", "+48601234567&SIP/premium/0900")
    with pytest.raises(ValueError) as info:
        dial_string_digits(number)
    assert "601234567" not in str(info.value)
