"""Telling a visitor which numbers a page can call back, with an example they recognise.

Countries are named and listed in the language now in use; the examples stay as people in the
page's country write their numbers."""

from __future__ import annotations

from collections.abc import Iterable

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from callnow.domain.destination_policy import VISITOR_MESSAGE
from callnow.i18n import formats
from callnow.i18n import gettext as _


def country_name(region: str) -> str:
    return formats.country(region)


def countries_phrase(regions: Iterable[str], home: str) -> str:
    """'Australia', 'Australia and New Zealand', 'Australia, Canada, and New Zealand'."""
    others = sorted({country_name(r) for r in regions if r != home})
    return formats.list_of([country_name(home), *others])


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
    examples = example_numbers(home)
    if len(examples) >= 2:
        return _(
            "A mobile or landline number in %(countries)s, e.g. %(mobile)s or %(landline)s."
        ) % {"countries": accepted, "mobile": examples[0], "landline": examples[1]}
    if examples:
        return _("A mobile or landline number in %(countries)s, e.g. %(example)s.") % {
            "countries": accepted,
            "example": examples[0],
        }
    return _("A mobile or landline number in %(countries)s.") % {"countries": accepted}


def visitor_refusal(regions: Iterable[str], home: str) -> str:
    """One sentence for every refused destination (so probing learns nothing about the block
    lists), which still says which countries the page calls back."""
    accepted = countries_phrase(regions, home)
    return _("%(refusal)s It calls back mobile and landline numbers in %(countries)s only.") % {
        "refusal": _(VISITOR_MESSAGE),
        "countries": accepted,
    }
