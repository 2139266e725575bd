"""Telling a visitor which numbers a page can call back, with an example they recognise."""

from __future__ import annotations

from collections.abc import Iterable

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType, geocoder

from callnow.domain.destination_policy import VISITOR_MESSAGE


def country_name(region: str) -> str:
    example = phonenumbers.example_number(region)
    name = geocoder.country_name_for_number(example, "en") if example else ""
    return name or region


def countries_phrase(regions: Iterable[str], home: str) -> str:
    """'Australia', 'Australia and New Zealand', 'Australia, Canada and New Zealand'."""
    others = sorted({country_name(r) for r in regions if r != home})
    names = [country_name(home), *others]
    if len(names) == 1:
        return names[0]
    return f"{', '.join(names[:-1])} and {names[-1]}"


def example_numbers(region: str) -> list[str]:
    """A mobile and a fixed-line example as people in `region` write them."""
    examples = []
    for kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE):
        number = phonenumbers.example_number_for_type(region, kind)
        if number is not None:
            examples.append(phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL))
    return list(dict.fromkeys(examples))


def number_hint(regions: Iterable[str], home: str) -> str:
    """The hint beside the number field."""
    accepted = countries_phrase(regions, home)
    examples = " or ".join(example_numbers(home))
    hint = f"A mobile or landline number in {accepted}"
    return f"{hint}, e.g. {examples}." if examples else f"{hint}."


def visitor_refusal(regions: Iterable[str], home: str) -> str:
    """One sentence for every refused destination (so probing learns nothing about the block
    lists), which still says which countries the page calls back."""
    accepted = countries_phrase(regions, home)
    return f"{VISITOR_MESSAGE} It calls back mobile and landline numbers in {accepted} only."
