"""What the owner's phone says, in every shipped language: whole sentences from the `prompts`
catalogue, numbers read group by group the way that language reads them, prices said the way
that language says them."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from callnow.domain.calls import LegRole
from callnow.domain.cost_phrase import describe_cost
from callnow.domain.destinations import DestinationClass as C
from callnow.domain.flow import (
    AcceptanceMode,
    CallbackFlow,
    LegAnswered,
    PlayPrompt,
    RequestFacts,
    Start,
)
from callnow.domain.prompt_text import (
    NUMBER_READINGS,
    confirm_prompt,
    number_groups,
    spoken_number,
    unreachable_notice,
    whisper_prompt,
)
from callnow.domain.rating import BillingPolicy, FlatRate, OwnerLegRate, Quote, RateEntry
from callnow.i18n import SHIPPED, use_language
from callnow.i18n.catalogues import LOCALE_DIR

TRANSLATED = [code for code in SHIPPED if code != "en"]
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def per_minute(cents: str, connect: str = "0", minimum: str = "0") -> RateEntry:
    micros = {
        name: int(Decimal(value) * 10_000)
        for name, value in (("rate", cents), ("connect", connect), ("minimum", minimum))
    }
    return RateEntry(
        prefix="61",
        description="test",
        connection_fee_micros=micros["connect"],
        price_per_minute_micros=micros["rate"],
        initial_increment_s=60,
        subsequent_increment_s=60,
        minimum_charge_micros=micros["minimum"],
    )


def say_cost(language: str, quote: Quote, policy: BillingPolicy | None = None, **kw: bool) -> str:
    with use_language(language):
        return describe_cost(quote, policy or BillingPolicy(), **kw)


MOBILE_45 = Quote(C.MOBILE, per_minute("45"), "deck")


# -- the catalogue ------------------------------------------------------------------------------


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_prompt_string_is_translated_with_its_placeholders(language: str) -> None:
    template = LOCALE_DIR.parent / "prompts.pot"
    with template.open("rb") as pot:
        wanted = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(pot) if m.id}
    path = LOCALE_DIR / language / "LC_MESSAGES" / "prompts.po"
    with path.open("rb") as po:
        catalog = read_po(po, locale=language)
    found = {}
    for message in catalog:
        if not message.id:
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(s.strip() for s in strings), f"{language}: {key!r} is untranslated"
        assert "fuzzy" not in message.flags, f"{language}: {key!r} is fuzzy"
        for string in strings:
            assert set(PLACEHOLDER.findall(string)) <= set(PLACEHOLDER.findall(key)) | {"count"}
            assert "%(" not in key or PLACEHOLDER.findall(string), f"{language}: {key!r}"
        found[key] = strings
    assert set(found) == wanted
    assert not [error for _message, errors in catalog.check() for error in errors]


@pytest.mark.parametrize("language", TRANSLATED)
def test_each_language_says_its_own_sentences(language: str) -> None:
    def prompts() -> list[str]:
        return [
            confirm_prompt(caller_number="+61290375678", region="AU", caller_name="Mary"),
            confirm_prompt(caller_number="+61290375678", region="AU", cost_phrase="X"),
            whisper_prompt(caller_number="+61290375678", region="AU", caller_name="Mary"),
            unreachable_notice(caller_number="+61290375678", region="AU"),
        ]

    english = prompts()
    with use_language(language):
        spoken = prompts()
    for theirs, ours in zip(spoken, english, strict=True):
        assert theirs != ours
        assert "Call request" not in theirs and "Goodbye" not in theirs
    assert "Mary" in spoken[0] and "Mary" in spoken[2]  # the name as written
    assert "1" in spoken[0] and "2" in spoken[0]  # the keys to press


# -- numbers --------------------------------------------------------------------------------------


def test_groups_are_the_national_format_of_the_numbers_country() -> None:
    assert number_groups("+33612345678", "FR") == (False, ["06", "12", "34", "56", "78"])
    assert number_groups("+61290375678", "AU") == (False, ["02", "9037", "5678"])
    assert number_groups("+4930123456", "DE") == (False, ["030", "123456"])
    assert number_groups("+34612345678", "ES") == (False, ["612", "34", "56", "78"])
    assert number_groups("+819012345678", "JP") == (False, ["090", "1234", "5678"])
    assert number_groups("+442079460000", "AU") == (True, ["44", "20", "7946", "0000"])
    assert number_groups("ext. 12", "AU") == (False, ["12"])


def test_french_reads_pairs_as_numbers_and_a_leading_zero_as_a_digit() -> None:
    assert spoken_number("+33612345678", "FR", "fr") == "0 6, 12, 34, 56, 78"
    # Another country's groups, still in pairs: "quatre-vingt-dix, trente-sept".
    assert spoken_number("+61290375678", "AU", "fr") == "0 2, 90 37, 56 78"
    # An odd group starts with one digit alone; "00" stays two zeros.
    assert spoken_number("+4930123456", "DE", "fr") == "0 30, 12 34 56"
    assert spoken_number("+442079460000", "AU", "fr") == "plus 44, 20, 79 46, 0 0 0 0"


def test_spanish_reads_its_two_digit_groups_as_numbers() -> None:
    assert spoken_number("+34612345678", "ES", "es") == "6 1 2, 34, 56, 78"
    assert spoken_number("+61290375678", "AU", "es") == "0 2, 9 0 3 7, 5 6 7 8"
    assert spoken_number("+442079460000", "AU", "es") == "más 44, 20, 7 9 4 6, 0 0 0 0"


@pytest.mark.parametrize("language", ["en", "de", "it", "pt", "nl", "pl"])
def test_other_languages_read_digit_by_digit_with_a_pause_between_groups(language: str) -> None:
    assert spoken_number("+4930123456", "DE", language) == "0 3 0, 1 2 3 4 5 6"
    assert spoken_number("+61290375678", "AU", language) == "0 2, 9 0 3 7, 5 6 7 8"


def test_japanese_and_arabic_pause_with_their_own_commas() -> None:
    assert spoken_number("+819012345678", "JP", "ja") == "0 9 0、1 2 3 4、5 6 7 8"
    assert spoken_number("+61290375678", "AU", "ar") == "0 2، 9 0 3 7، 5 6 7 8"


@pytest.mark.parametrize(
    ("language", "plus"),
    [
        ("en", "plus"),
        ("de", "plus"),
        ("fr", "plus"),
        ("es", "más"),
        ("it", "più"),
        ("pt", "mais"),
        ("nl", "plus"),
        ("pl", "plus"),
        ("ja", "プラス"),
        ("ar", "زائِد"),
    ],
)
def test_a_foreign_number_starts_with_that_languages_plus(language: str, plus: str) -> None:
    with use_language(language):
        spoken = spoken_number("+442079460000", "AU")
    assert spoken.startswith(f"{plus} ")
    assert re.sub(r"\D", "", spoken) == "442079460000"  # every digit, in order


@pytest.mark.parametrize("language", SHIPPED)
def test_the_prompt_speaks_every_digit_of_the_number_in_order(language: str) -> None:
    assert language in NUMBER_READINGS
    with use_language(language):
        text = confirm_prompt(caller_number="+33612345678", region="FR", caller_name="Zoë")
        number = spoken_number("+33612345678", "FR")
    assert number in text
    assert re.sub(r"\D", "", number) == "0612345678"


# -- prices ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "a mobile, 45 cents a minute"),
        ("de", "ein Anruf auf ein Handy, 45 Cent pro Minute"),
        ("fr", "un appel vers un mobile, 45 centimes la minute"),
        ("es", "una llamada a un móvil, 45 céntimos por minuto"),
        ("it", "una chiamata verso cellulare, 45 centesimi al minuto"),
        ("pt", "uma chamada para telemóvel, 45 cêntimos por minuto"),
        ("nl", "een gesprek naar een mobiel nummer, 45 cent per minuut"),
        ("pl", "połączenie na komórkę, 45 centów za minutę"),
        ("ja", "けいたい でんわ、いっぷん あたり 45 セント"),
        ("ar", "مُكالَمَةٌ إِلى هاتِفٍ مَحْمولٍ، 45 سِنْتًا لِلدَّقيقَةِ"),
    ],
)
def test_the_cost_phrase_in_every_language(language: str, expected: str) -> None:
    assert say_cost(language, MOBILE_45) == expected


@pytest.mark.parametrize(
    ("language", "one", "two", "five"),
    [
        ("en", "1 cent", "2 cents", "5 cents"),
        ("fr", "1 centime", "2 centimes", "5 centimes"),
        ("pl", "1 cent", "2 centy", "5 centów"),
        ("ar", "1 سِنْت", "2 سِنْت", "5 سِنْتات"),
        ("ja", "1 セント", "2 セント", "5 セント"),
    ],
)
def test_cents_take_the_plural_form_of_their_count(
    language: str, one: str, two: str, five: str
) -> None:
    for cents, words in (("1", one), ("2", two), ("5", five)):
        assert words in say_cost(language, Quote(C.MOBILE, per_minute(cents), "deck"))


def test_pence_and_fractions_of_a_cent() -> None:
    gbp = BillingPolicy(currency_code="GBP", tariffs={C.MOBILE: FlatRate(12)})
    assert say_cost("de", Quote(C.MOBILE, FlatRate(12), None), gbp) == (
        "ein Anruf auf ein Handy, 12 Pence"
    )
    assert "12,5 centimes la minute" in say_cost("fr", Quote(C.MOBILE, per_minute("12.5"), "d"))


def test_amounts_of_a_whole_unit_or_more_are_said_with_the_currencys_name() -> None:
    dollar_20 = Quote(C.INTERNATIONAL, per_minute("120"), "deck")
    assert say_cost("en", dollar_20) == "an international call, $1.20 a minute"
    assert say_cost("fr", dollar_20) == "un appel international, 1,20 dollar australien la minute"
    assert say_cost("de", dollar_20) == (
        "ein Auslandsgespräch, 1,20 Australische Dollar pro Minute"
    )
    eur = BillingPolicy(currency_code="EUR")
    assert "2,50 euros la minute" in say_cost("fr", Quote(C.MOBILE, per_minute("250"), "d"), eur)


def test_connection_fee_minimum_owner_leg_and_tax_are_whole_phrases() -> None:
    quote = Quote(C.INTERNATIONAL, per_minute("5", connect="10", minimum="20"), "deck")
    assert say_cost("fr", quote) == (
        "un appel international, 5 centimes la minute plus 10 centimes de frais de connexion, "
        "minimum 20 centimes"
    )
    policy = BillingPolicy(tariffs={**BillingPolicy().tariffs, C.INTERNAL: OwnerLegRate(5, 0)})
    assert say_cost("de", MOBILE_45, policy, mention_tax=True) == (
        "ein Anruf auf ein Handy, 45 Cent pro Minute; der Abschnitt zu Ihrer Nebenstelle, "
        "5 Cent zuzüglich GST"
    )
    free = Quote(C.LOCAL, FlatRate(0), None)
    assert say_cost("es", free) == "una llamada local, gratis"


# -- the flow -----------------------------------------------------------------------------------


def test_the_flow_speaks_the_owners_language_and_says_which_it_is() -> None:
    facts = RequestFacts(
        request_ref="r1",
        visitor_e164="+33612345678",
        owner_internal_number="1001",
        owner_external_e164="+33198765432",
        acceptance=AcceptanceMode.CONFIRM,
        caller_name="Mary",
        region="FR",
        cost_phrase=say_cost("fr", MOBILE_45),
        language="fr",
    )
    flow = CallbackFlow(facts)
    flow.handle(Start())
    [play] = [c for c in flow.handle(LegAnswered(LegRole.OWNER)) if isinstance(c, PlayPrompt)]
    assert play.language == "fr"
    assert play.text == (
        "Demande de rappel : Mary, au 0 6, 12, 34, 56, 78, un appel vers un mobile, "
        "45 centimes la minute. Appuyez sur 1 pour rappeler maintenant, sur 2 pour refuser."
    )


def test_a_language_that_is_not_shipped_is_spoken_in_english() -> None:
    facts = RequestFacts(
        request_ref="r1",
        visitor_e164="+61290375678",
        owner_internal_number="1001",
        owner_external_e164="+61290371234",
        acceptance=AcceptanceMode.AUTO,
        language="xx",
    )
    flow = CallbackFlow(facts)
    flow.handle(Start())
    [play] = [c for c in flow.handle(LegAnswered(LegRole.OWNER)) if isinstance(c, PlayPrompt)]
    assert (play.language, play.text) == ("en", "CallNow call to 0 2, 9 0 3 7, 5 6 7 8.")


def test_the_catalogue_files_are_where_the_languages_read_them() -> None:
    for language in TRANSLATED:
        assert Path(LOCALE_DIR / language / "LC_MESSAGES" / "prompts.po").is_file()
