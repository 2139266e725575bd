"""Dates, zones, money and numbers as each shipped language writes them (CLDR through Babel).

The expected strings are written out, not computed: a change of library or data that alters
what a reader sees shows up here."""

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from callnow.i18n import SHIPPED, formats, use_language

BERLIN = ZoneInfo("Europe/Berlin")
SYDNEY = ZoneInfo("Australia/Sydney")
MOMENT = datetime(2026, 12, 3, 13, 30, tzinfo=UTC)  # 14:30 in Berlin, 00:30 next day in Sydney


EXPECTED = {
    "en": ("Thu, Dec 3, 2026, 2:30\u202fPM", "Australian Eastern Daylight Time", "€1,234.50",
           "A$0.45", "1,234,567.891", "Mon", "Germany", "A, B, and C"),
    "de": ("Do., 3. Dez. 2026, 14:30", "Ostaustralische Sommerzeit", "1.234,50\xa0€",
           "0,45\xa0AU$", "1.234.567,891", "Mo.", "Deutschland", "A, B und C"),
    "fr": ("jeu. 3 déc. 2026, 14:30", "heure d’été de l’Est de l’Australie",
           "1\u202f234,50\xa0€", "0,45\xa0$AU", "1\u202f234\u202f567,891", "lun.", "Allemagne",
           "A, B et C"),
    "es": ("jue, 3 dic 2026, 14:30", "hora de verano de Australia oriental", "1.234,50\xa0€",
           "0,45\xa0AUD", "1.234.567,891", "lun", "Alemania", "A, B y C"),
    "it": ("gio 3 dic 2026, 14:30", "Ora legale dell’Australia orientale", "1.234,50\xa0€",
           "0,45\xa0A$", "1.234.567,891", "lun", "Germania", "A, B e C"),
    "pt": ("qui., 3 de dez. de 2026 14:30", "Horário de Verão da Austrália Oriental",
           "€\xa01.234,50", "AU$\xa00,45", "1.234.567,891", "seg.", "Alemanha", "A, B e C"),
    "nl": ("do 3 dec 2026, 14:30", "Oost-Australische zomertijd", "€\xa01.234,50",
           "AU$\xa00,45", "1.234.567,891", "ma", "Duitsland", "A, B en C"),
    "pl": ("czw., 3 gru 2026, 14:30", "czas wschodnioaustralijski letni", "1\xa0234,50\xa0€",
           "0,45\xa0AUD", "1\xa0234\xa0567,891", "pon.", "Niemcy", "A, B i C"),
    "ja": ("2026年12月3日(木) 14:30", "オーストラリア東部夏時間", "€1,234.50", "A$0.45",
           "1,234,567.891", "月", "ドイツ", "A、B、C"),
    "ar": ("الخميس، 3 ديسمبر 2026، 2:30 م", "توقيت شرق أستراليا الصيفي", "\u200f1,234.50\xa0€",
           "\u200f0.45\xa0AU$", "1,234,567.891", "الاثنين", "ألمانيا", "A وB وC"),
}  # fmt: skip


def test_every_shipped_language_is_covered():
    assert set(EXPECTED) == set(SHIPPED)


@pytest.mark.parametrize("language", SHIPPED)
def test_formats_per_language(language):
    when, zone, euros, cents, number, monday, germany, listed = EXPECTED[language]
    assert formats.date_time(MOMENT, BERLIN, language) == when
    assert formats.zone_name(MOMENT, SYDNEY, language) == zone
    assert formats.money(Decimal("1234.5"), "EUR", language) == euros
    assert formats.money(Decimal("0.45"), "AUD", language) == cents
    assert formats.number(1234567.891, language) == number
    assert formats.day_name(0, language) == monday
    assert formats.country("DE", language) == germany
    assert formats.list_of(["A", "B", "C"], language) == listed


def test_the_time_is_on_the_owner_clock_and_the_zone_named_for_the_season():
    summer = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    assert formats.time(summer, BERLIN, "de") == "12:00"
    assert formats.zone_name(summer, BERLIN, "de") == "Mitteleuropäische Sommerzeit"
    assert formats.zone_name(MOMENT, BERLIN, "de") == "Mitteleuropäische Normalzeit"
    # Midnight has passed in Sydney: the date is the next day's.
    assert formats.date(MOMENT, SYDNEY, "en") == "Fri, Dec 4, 2026"


def test_without_a_language_the_one_in_use_is_taken():
    with use_language("fr"):
        assert formats.number(1234.5) == "1\u202f234,5"
    assert formats.number(1234.5) == "1,234.5"


def test_a_region_without_a_name_keeps_its_code():
    assert formats.country("ZZX", "de") == "ZZX"
    assert formats.list_of([], "de") == ""
