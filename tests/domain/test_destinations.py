import pytest

from callnow.domain.destinations import (
    Destination,
    DestinationClass,
    NumberRefused,
    RefusalReason,
    classify_destination,
)

SYDNEY_EXTENSION = "+61290001111"  # (02) 9000 1111


def classify(number: str, external: str | None = SYDNEY_EXTENSION, region: str = "AU"):
    return classify_destination(number, external, region)


def class_of(number: str, external: str | None = SYDNEY_EXTENSION, region: str = "AU"):
    result = classify(number, external, region)
    assert isinstance(result, Destination), result
    return result.destination_class


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("+61290375678", DestinationClass.LOCAL),  # 02 in the extension's area
        ("+61240123456", DestinationClass.LOCAL),  # 02 elsewhere in NSW: same area code
        ("+61396001234", DestinationClass.NATIONAL_FIXED),  # 03 Melbourne
        ("+61731234567", DestinationClass.NATIONAL_FIXED),  # 07 Brisbane
        ("+61881234567", DestinationClass.NATIONAL_FIXED),  # 08 Adelaide
        ("+61412345678", DestinationClass.MOBILE),  # 04 mobile
        ("+61131234", DestinationClass.SPECIAL),  # 13 12 34
        ("+611300123456", DestinationClass.SPECIAL),  # 1300 local rate
        ("+611800123456", DestinationClass.SPECIAL),  # 1800 free call
        ("+611900123456", DestinationClass.PREMIUM),  # 1900 premium
    ],
)
def test_australian_numbers_from_a_sydney_extension(number: str, expected: DestinationClass):
    assert class_of(number) == expected


def test_local_is_relative_to_the_extensions_area_code():
    melbourne_extension = "+61390001111"
    assert class_of("+61396001234", melbourne_extension) == DestinationClass.LOCAL
    assert class_of("+61290375678", melbourne_extension) == DestinationClass.NATIONAL_FIXED


def test_without_an_external_number_no_call_is_local():
    assert class_of("+61290375678", None) == DestinationClass.NATIONAL_FIXED


def test_a_mobile_external_number_makes_no_fixed_line_local():
    assert class_of("+61290375678", "+61412345678") == DestinationClass.NATIONAL_FIXED


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("+447911123456", DestinationClass.INTERNATIONAL),  # UK mobile (Guernsey range)
        ("+447400123456", DestinationClass.INTERNATIONAL),  # UK mobile
        ("+442079460000", DestinationClass.INTERNATIONAL),  # London fixed
        ("+12125550123", DestinationClass.INTERNATIONAL),  # New York
        ("+64211234567", DestinationClass.INTERNATIONAL),  # NZ mobile
        ("+6493031234", DestinationClass.INTERNATIONAL),  # Auckland fixed
        ("+449012345678", DestinationClass.PREMIUM),  # UK 09 premium stays premium abroad
    ],
)
def test_international_numbers_from_australia(number: str, expected: DestinationClass):
    assert class_of(number) == expected


def test_domestic_is_decided_by_country_code_not_region():
    # phonenumbers puts +44 7911 12x in Guernsey; from the UK it is still a national mobile.
    destination = classify("+447911123456", "+442079460000", "GB")
    assert isinstance(destination, Destination)
    assert destination.region_code == "GG"
    assert destination.destination_class == DestinationClass.MOBILE


def test_uk_tenant_sees_london_as_local_and_australia_as_international():
    assert class_of("+442079460001", "+442079460000", "GB") == DestinationClass.LOCAL
    assert class_of("+61290375678", "+442079460000", "GB") == DestinationClass.INTERNATIONAL


def test_destination_carries_digits_for_rate_deck_lookup():
    destination = classify("+61412345678")
    assert isinstance(destination, Destination)
    assert destination.digits == "61412345678"
    assert destination.number_type == "mobile"
    assert destination.country_code == 61


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("0290375678", RefusalReason.NOT_E164),  # national format
        ("+61 2 9037 5678", RefusalReason.NOT_E164),  # spaces
        ("", RefusalReason.NOT_E164),
        ("+0290375678", RefusalReason.NOT_E164),
        ("+6129037567812345", RefusalReason.NOT_E164),  # 16 digits
        ("+61812345678", RefusalReason.INVALID_NUMBER),  # 08 1 is not allocated
        ("+61190012345", RefusalReason.INVALID_NUMBER),  # too short for 1900
        ("+999123456", RefusalReason.INVALID_NUMBER),  # no such country code
        ("+447011234567", RefusalReason.UNSUPPORTED_NUMBER_TYPE),  # UK 070 personal number
    ],
)
def test_refusals_say_why(number: str, reason: RefusalReason):
    result = classify(number)
    assert isinstance(result, NumberRefused)
    assert result.reason == reason
    assert result.number == number
    assert result.detail


def test_a_broken_external_number_is_a_configuration_error():
    with pytest.raises(ValueError, match="external number"):
        classify("+61290375678", "+6129")


def test_an_unknown_region_is_a_configuration_error():
    with pytest.raises(ValueError, match="region"):
        classify("+61290375678", region="XX")
