"""The embeddable button's settings: origins a browser would send, a bounded label, a colour
whose label always meets WCAG AA contrast, a known position."""

import itertools

import pytest

from callnow.domain.embed import (
    MAX_ORIGINS,
    InvalidEmbed,
    contrast_ratio,
    frame_ancestors,
    parse_colour,
    parse_label,
    parse_origin,
    parse_origins,
    parse_position,
    text_colour_for,
)


@pytest.mark.parametrize(
    ("typed", "origin"),
    [
        ("https://Shop.Example.com", "https://shop.example.com"),
        ("https://shop.example.com/", "https://shop.example.com"),
        ("https://shop.example.com:443", "https://shop.example.com"),
        ("http://127.0.0.2:8081", "http://127.0.0.2:8081"),
        ("  http://localhost:80  ", "http://localhost"),
    ],
)
def test_origins_are_written_as_browsers_send_them(typed, origin):
    assert parse_origin(typed) == origin


@pytest.mark.parametrize(
    "typed",
    [
        "shop.example.com",
        "ftp://shop.example.com",
        "https://shop.example.com/contact",
        "https://*.example.com",
        "https://user@shop.example.com",
        "https://shop.example.com?x=1",
        "https://shop.example.com:99999",
        "https://shop.example.com; script-src *",
        "https://" + "a" * 250 + ".com",
        "'self'",
    ],
)
def test_anything_but_a_plain_origin_is_refused_with_the_expected_form(typed):
    with pytest.raises(InvalidEmbed) as refused:
        parse_origin(typed)
    assert (
        "https://www.example.com" in str(refused.value)
        or "port" in str(refused.value)
        or ("too long" in str(refused.value))
    )


def test_origin_lists_drop_repeats_and_are_bounded():
    assert parse_origins("https://a.example\nhttps://A.example/, http://b.example") == (
        "https://a.example",
        "http://b.example",
    )
    assert parse_origins("   ") == ()
    many = "\n".join(f"https://s{n}.example" for n in range(MAX_ORIGINS + 1))
    with pytest.raises(InvalidEmbed, match=f"At most {MAX_ORIGINS}"):
        parse_origins(many)


def test_frame_ancestors_names_callnow_and_the_owner_sites_only():
    assert frame_ancestors(()) == "frame-ancestors 'self'"
    assert frame_ancestors(("https://a.example",)) == "frame-ancestors 'self' https://a.example"


def test_labels_are_bounded_and_printable():
    assert parse_label("  Call   me\tback ") == "Call me back"
    for bad in ("", "   ", "x" * 41, "Call\u200eme"):
        with pytest.raises(InvalidEmbed):
            parse_label(bad)


def test_colours_and_positions():
    assert parse_colour("#0B62C4") == "#0b62c4"
    assert parse_colour("fa0") == "#ffaa00"
    for bad in ("red", "#12345", "#0b62c4; x", "url(x)"):
        with pytest.raises(InvalidEmbed):
            parse_colour(bad)
    assert parse_position("Bottom-Left") == "bottom-left"
    with pytest.raises(InvalidEmbed, match="bottom-right"):
        parse_position("top")


def test_the_label_colour_always_meets_wcag_aa_whatever_the_button_colour():
    assert text_colour_for("#0b62c4") == "#ffffff"
    assert text_colour_for("#ffee00") == "#000000"
    assert contrast_ratio("#ffffff", "#000000") == pytest.approx(21)
    steps = range(0, 256, 5)
    for red, green, blue in itertools.product(steps, steps, steps):
        colour = f"#{red:02x}{green:02x}{blue:02x}"
        assert contrast_ratio(colour, text_colour_for(colour)) >= 4.5, colour
