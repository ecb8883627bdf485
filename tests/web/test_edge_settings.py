"""Widget settings as strict as the per-lead number policy: a widget that is accepted can't
make its leads fail on its settings. And the one-line rule for free text."""

from __future__ import annotations

import aiohttp
import phonenumbers
import pytest

from callengine.errors import InvalidInput
from callengine.checks import is_one_line
from callengine.model import lead_from_input, widget_settings_from_input
from callengine.numbers import SUPPORTED_REGIONS, NumberRejected
from tests.web.edge_support import ADMIN_HEADERS, edge, lead_body

MOBILE = phonenumbers.PhoneNumberType.MOBILE


@pytest.mark.parametrize("settings, field", [
    ({"allowed_regions": ["UK"]}, "allowed_regions"),
    ({"allowed_regions": ["EU"]}, "allowed_regions"),
    ({"allowed_regions": ["ZZ"]}, "allowed_regions"),
    ({"allowed_regions": ["001"]}, "allowed_regions"),
    ({"allowed_regions": ["pl"]}, "allowed_regions"),
    ({"allowed_regions": "PL,UK"}, "allowed_regions"),
    ({"default_region": "UK"}, "default_region"),
    ({"default_region": "ZZ"}, "default_region"),
    ({"allowed_origins": ["https://a.example\n"]}, "allowed_origins"),
    ({"whisper": "sound:beep\n"}, "whisper"),
    ({"visitor_endpoint": "PJSIP/{number}@pstn\n"}, "visitor_endpoint"),
    ({"caller_id": "Shop\u2028"}, "caller_id"),
    ({"group": "sales\n"}, "group"),
    ({"number_format": [[]]}, "number_format"),  # was a TypeError (unhashable): a 500
    ({"recording": [[]]}, "recording"),
])
def test_settings_the_number_policy_would_refuse_are_refused(settings, field):
    with pytest.raises(InvalidInput) as refused:
        widget_settings_from_input({"group": "sales", **settings})
    assert refused.value.field == field


async def test_api_refuses_unknown_regions(tmp_path):
    async with edge(tmp_path) as e, aiohttp.ClientSession(e.base) as http:
        for region in ("UK", "EU", "ZZ"):
            async with http.post("/api/v1/widgets", headers=ADMIN_HEADERS, json={
                    "id": f"w{region.lower()}", "settings": {
                        "group": "sales", "allowed_regions": [region]}}) as response:
                assert response.status == 422
                assert (await response.json())["field"] == "allowed_regions"
        assert [w.id for w in await e.store.list_widgets()] == ["shop"]


def test_every_accepted_region_takes_leads_without_error():
    """Each region phonenumbers supports (XK, Kosovo, among them) as the allowlist and the
    default region: a lead with its example number, national or international, is accepted
    or refused as a number, never an error from the settings."""
    assert "XK" in SUPPORTED_REGIONS and "UK" not in SUPPORTED_REGIONS
    for region in sorted(SUPPORTED_REGIONS):
        settings = widget_settings_from_input(
            {"group": "sales", "allowed_regions": [region], "default_region": region,
             "allowed_kinds": ["mobile", "fixed_line", "fixed_line_or_mobile", "voip"]})
        policy = settings.number_policy()
        example = (phonenumbers.example_number_for_type(region, MOBILE)
                   or phonenumbers.example_number(region))
        numbers = ["+48 601 234 567", "123"]
        if example is not None:
            numbers += [phonenumbers.format_number(example, fmt) for fmt in (
                phonenumbers.PhoneNumberFormat.E164, phonenumbers.PhoneNumberFormat.NATIONAL)]
        for raw in numbers:
            try:
                lead_from_input(lead_body(phone=raw), policy)
            except (InvalidInput, NumberRejected):
                pass


@pytest.mark.parametrize("char", [
    "\n", "\r", "\t", "\x00", "\x7f", "\x85", "\u2028", "\u2029", "\u200e", "\u200f",
    "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
    "\u200b", "\ufeff", "\ud800", "\udfff", "\ue000", "\U000f0000", "\u0378",
])
def test_one_line_rule_refuses(char):
    assert not is_one_line(f"Ann{char}Smith")
    with pytest.raises(InvalidInput) as refused:
        lead_from_input(lead_body(name=f"Ann{char}Smith"), widget_settings_from_input(
            {"group": "sales", "allowed_regions": ["PL"]}).number_policy())
    assert refused.value.field == "name"


@pytest.mark.parametrize("text", ["Ann Smith", "Zofia Przykładowa", "Anne\u00a0Marie",
                                  "Łukasz Żółć", "山田 太郎", "O'Brien-Smith", "José 😀"])
def test_one_line_rule_keeps_real_names(text):
    assert is_one_line(text)


@pytest.mark.parametrize("version", ["v1\n", "v1\r", " v1", "v1\u2028", ""])
def test_clause_version_is_matched_whole(version):
    with pytest.raises(InvalidInput) as refused:
        lead_from_input(lead_body(clause_version=version), widget_settings_from_input(
            {"group": "sales", "allowed_regions": ["PL"]}).number_policy())
    assert refused.value.field == "clause_version"
