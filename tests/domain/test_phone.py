import pytest

from callnow.domain.phone import InvalidNumber, NumberScope, e164_prefix, parse_visitor_number


@pytest.mark.parametrize(
    "typed",
    [
        "0290375678",
        "02 9037 5678",
        "(02) 9037-5678",
        "+61 2 9037 5678",
        "+61290375678",
        "٠٢٩٠٣٧٥٦٧٨",
    ],
)
def test_every_way_of_writing_a_sydney_number_becomes_the_same_e164(typed):
    number = parse_visitor_number(typed, "AU")
    assert number.e164 == "+61290375678"
    assert number.scope is NumberScope.NATIONAL
    assert number.national == "0290375678"


def test_a_number_keeps_what_was_typed_beside_its_normal_form():
    number = parse_visitor_number(" (02) 9037-5678 ", "AU")
    assert number.typed == " (02) 9037-5678 "
    assert number.digits == "61290375678"


def test_the_region_of_a_number_comes_from_the_number_not_its_country_code():
    number = parse_visitor_number("+1 809 555 1234", "AU")
    assert number.region == "DO"
    assert number.scope is NumberScope.INTERNATIONAL


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("", "enter a phone number"),
        ("   ", "enter a phone number"),
        ("02 9037 CALL", "letters"),
        ("0290375678\x00", "control characters"),
        ("02\r\n9037", "control characters"),
        ("500&SIP/x", "only contain digits"),
        ("0290375678;user=phone", "only contain digits"),
        ("0290375678@evil", "only contain digits"),
        ("0290375678,1", "only contain digits"),
        ("029037/5678", "only contain digits"),
        ("1" * 21, "at most 20 digits"),
        ("0" * 41, "at most 40 characters"),
        ("12", "not valid"),
        ("02 9037 56", "not valid"),
        ("+", "enter a phone number"),
        ("++61290375678", "only contain digits"),
    ],
)
def test_what_is_not_a_number_is_refused_with_a_reason(typed, reason):
    with pytest.raises(InvalidNumber, match=reason):
        parse_visitor_number(typed, "AU")


def test_mobile_numbers_are_parsed_in_the_tenant_region():
    assert parse_visitor_number("0412 345 678", "AU").e164 == "+61412345678"
    assert parse_visitor_number("07911 123456", "GB").e164 == "+447911123456"


@pytest.mark.parametrize(
    ("pattern", "digits"),
    [("+614", "614"), ("04", "614"), ("614", "614"), ("+1 809", "1809"), ("02 9037", "6129037")],
)
def test_rule_prefixes_are_stored_as_e164_digits(pattern, digits):
    assert e164_prefix(pattern, "AU") == digits


def test_a_rule_prefix_must_be_digits():
    with pytest.raises(InvalidNumber):
        e164_prefix("04x", "AU")
