import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callnow.domain.destination_policy import (
    DestinationPolicy,
    PrefixList,
    Refusal,
    check_destination,
    check_visitor_number,
    normalise_prefix_list,
)
from callnow.domain.phone import InvalidNumber, parse_visitor_number

AU_ONLY = DestinationPolicy(allowed_regions=frozenset({"AU"}))
WORLD = DestinationPolicy(allowed_regions=frozenset({"AU", "US", "GB", "DO", "CU"}))


@pytest.mark.parametrize("e164", ["+61290375678", "+61412345678", "+61731234567"])
def test_australian_fixed_lines_and_mobiles_may_be_called(e164):
    assert check_destination(e164, AU_ONLY) is None


@pytest.mark.parametrize(
    ("e164", "refusal"),
    [
        ("+19005551234", Refusal.NUMBER_TYPE),  # US premium 900
        ("+449091234567", Refusal.NUMBER_TYPE),  # UK premium 09
        ("+447012345678", Refusal.NUMBER_TYPE),  # UK personal 070
        ("+881612345678", Refusal.COUNTRY),  # satellite: no country at all
        ("+5351234567", Refusal.COUNTRY),  # Cuba, not allowed by default
        ("+611900123456", Refusal.NUMBER_TYPE),  # AU premium 1900
        ("+611300123456", Refusal.NUMBER_TYPE),  # AU shared cost
        ("+611800123456", Refusal.NUMBER_TYPE),  # AU toll free
        ("+6129037", Refusal.INVALID),
        ("0290375678", Refusal.INVALID),
        ("+61 2 9037 5678", Refusal.INVALID),  # only E.164 digits reach this check
    ],
)
def test_risky_destinations_are_refused(e164, refusal):
    assert check_destination(e164, WORLD if refusal is Refusal.NUMBER_TYPE else AU_ONLY) == refusal


def test_the_country_is_the_numbers_region_not_its_dialling_code():
    us_allowed = DestinationPolicy(allowed_regions=frozenset({"AU", "US"}))
    assert check_destination("+12125551234", us_allowed) is None  # New York
    assert check_destination("+18095551234", us_allowed) is Refusal.COUNTRY  # Dominican Rep.


def test_a_platform_fraud_prefix_is_refused_even_where_the_country_is_allowed():
    policy = DestinationPolicy(frozenset({"AU"}), platform=PrefixList(blocked=("6141234",)))
    assert check_destination("+61412345678", policy) is Refusal.PLATFORM_BLOCK
    assert check_destination("+61412000000", policy) is None


def test_a_platform_allow_prefix_overrides_a_platform_block():
    platform = PrefixList(blocked=("614",), allowed=("6141234",))
    policy = DestinationPolicy(frozenset({"AU"}), platform=platform)
    assert check_destination("+61412345678", policy) is None
    assert check_destination("+61499999999", policy) is Refusal.PLATFORM_BLOCK


def test_a_tenant_cannot_allow_what_the_platform_blocks():
    policy = DestinationPolicy(
        frozenset({"AU"}),
        platform=PrefixList(blocked=("6141234",)),
        tenant=PrefixList(allowed=("614",)),
    )
    assert check_destination("+61412345678", policy) is Refusal.PLATFORM_BLOCK


def test_a_tenant_blocks_and_allows_its_own_ranges():
    tenant = PrefixList(blocked=("614",), allowed=("61412",))
    policy = DestinationPolicy(frozenset({"AU"}), tenant=tenant)
    assert check_destination("+61498765432", policy) is Refusal.TENANT_BLOCK
    assert check_destination("+61412345678", policy) is None


def test_prefix_lists_are_normalised_and_checked():
    assert normalise_prefix_list(["+61 4", "614", "1900"]) == ("1900", "614")
    with pytest.raises(ValueError, match="not a number prefix"):
        normalise_prefix_list(["61x"])


REGIONS = ["AU", "US", "CA", "DO", "GB", "IM", "JE", "DE", "IT", "RU", "KZ", "NO", "SJ", "BR", "IN"]
POLICIES = [
    AU_ONLY,
    WORLD,
    DestinationPolicy(
        frozenset({"AU", "GB", "US"}),
        platform=PrefixList(blocked=("614", "4470"), allowed=("61412",)),
        tenant=PrefixList(blocked=("1212",)),
    ),
]


@settings(max_examples=600, deadline=None)
@given(
    digits=st.text(alphabet="0123456789", min_size=4, max_size=14),
    region=st.sampled_from(REGIONS),
    how=st.sampled_from(["national", "trunk", "international"]),
    calling_from=st.sampled_from(REGIONS),
)
def test_a_typed_number_is_judged_as_its_e164_form_would_be(digits, region, how, calling_from):
    """Intake judges the number it classified once; the engine re-checks its E.164 form. Both
    must agree, and a number is refused as invalid exactly where phonenumbers finds it so."""
    code = phonenumbers.country_code_for_region(region)
    typed = {"national": digits, "trunk": "0" + digits, "international": f"+{code}{digits}"}[how]
    try:
        parsed = phonenumbers.parse(typed, calling_from)
        valid = phonenumbers.is_valid_number(parsed)
    except phonenumbers.NumberParseException:
        valid = False
    try:
        number = parse_visitor_number(typed, calling_from)
    except InvalidNumber:
        assert not valid
        return
    assert valid
    assert number.region == phonenumbers.region_code_for_number(parsed)
    assert number.number_type == phonenumbers.number_type(parsed)
    for policy in POLICIES:
        assert check_visitor_number(number, policy) == check_destination(number.e164, policy)
