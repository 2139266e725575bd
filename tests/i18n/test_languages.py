from callnow.i18n import SHIPPED, negotiate, offered_languages, text_direction


def test_first_offered_browser_language_wins() -> None:
    assert negotiate("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7", SHIPPED, "en") == "fr"
    assert negotiate("sv, de;q=0.5", SHIPPED, "en") == "de"


def test_quality_orders_ranges_not_their_position() -> None:
    assert negotiate("de;q=0.2, it;q=0.9", SHIPPED, "en") == "it"


def test_languages_the_page_does_not_offer_fall_back_to_its_default() -> None:
    assert negotiate("ja", ("de", "en"), "de") == "de"
    assert negotiate(None, ("de", "en"), "de") == "de"
    assert negotiate("*", ("de", "en"), "en") == "en"
    # A default the page does not offer yields its first language.
    assert negotiate("sv", ("de", "fr"), "en") == "de"


def test_malformed_or_huge_headers_are_read_safely() -> None:
    assert negotiate("de;q=abc, ;;, 12, fr", SHIPPED, "en") == "fr"
    assert negotiate("de;q=0", SHIPPED, "en") == "en"
    assert negotiate("x" * 10_000 + ", de", SHIPPED, "en") == "en"


def test_stored_page_languages() -> None:
    assert offered_languages("") == SHIPPED
    assert offered_languages("de, EN,xx") == ("en", "de")


def test_arabic_is_right_to_left() -> None:
    assert text_direction("ar") == "rtl"
    assert text_direction("de") == "ltr"
