"""The owner-facing words that come from the domain and billing layers follow the language in
use: rule and hours descriptions, refusals, the statement's destination classes."""

import pytest

from callnow.billing.statements import class_label
from callnow.domain.availability import InvalidWindow, Window
from callnow.domain.callnow_id import InvalidCallNowId, normalise_callnow_id
from callnow.domain.embed import InvalidEmbed, parse_label
from callnow.domain.rules import NameMatch, NumberMatch, Rule, RuleAction
from callnow.i18n import use_language

PREFIX_AND_NAME = Rule(
    RuleAction.REJECT,
    number_match=NumberMatch.PREFIX,
    number_value="614",
    name_match=NameMatch.CONTAINS,
    name_value="VIP",
)


def test_a_rule_reads_as_one_sentence_in_each_language():
    assert (
        PREFIX_AND_NAME.describe() == "Reject when number starts with +614 and name contains “VIP”"
    )
    with use_language("de"):
        assert PREFIX_AND_NAME.describe() == (
            "Abweisen, wenn die Nummer mit +614 beginnt und der Name „VIP“ enthält"
        )
    with use_language("fr"):
        assert PREFIX_AND_NAME.describe() == (
            "Rejeter si le numéro commence par +614 et le nom contient « VIP »"
        )
    with use_language("ja"):
        assert (
            PREFIX_AND_NAME.describe() == "却下する条件：番号が +614 で始まる、名前に「VIP」を含む"
        )
    scope = Rule(RuleAction.ACCEPT, number_match=NumberMatch.SCOPE, number_value="national")
    with use_language("pl"):
        assert scope.describe() == "Przyjmij, gdy numer jest krajowy"


def test_hours_use_the_locales_day_names():
    late = Window.parse(0, "22:00", "02:00")
    assert late.describe() == "Mon 22:00–02:00 (next day)"
    with use_language("de"):
        assert late.describe() == "Mo. 22:00–02:00 (bis zum Folgetag)"
        assert Window.parse(1, "00:00", "24:00").describe() == "Di. ganztägig"
        with pytest.raises(InvalidWindow, match="ist keine Uhrzeit wie 09:30"):
            Window.parse(0, "25:00", "17:00")


def test_refusals_and_their_counts_follow_the_language():
    with use_language("pl"), pytest.raises(InvalidEmbed) as label:
        parse_label("x" * 41)
    assert str(label.value) == "Etykieta przycisku ma najwyżej 40 znaków."
    with use_language("es"), pytest.raises(InvalidCallNowId) as short:
        normalise_callnow_id("ab")
    assert str(short.value) == "Un ID de CallNow tiene de 3 a 32 caracteres."


def test_destination_classes_are_named_in_the_language_in_use():
    assert class_label("national_fixed") == "national fixed"
    assert class_label("internal") == "your extension's leg"
    with use_language("de"):
        assert class_label("mobile") == "Mobilfunk"
        assert class_label("internal") == "Anteil Ihrer Nebenstelle"
