from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callnow.billing.deck_csv import (
    HEADER,
    MAX_ERRORS,
    DeckCsvError,
    DeckImportFailed,
    deck_to_csv,
    parse_deck_csv,
    parse_deck_csv_bytes,
)
from callnow.domain.rating import RateDeck, RateEntry

JAN = datetime(2026, 1, 1, tzinfo=UTC)
HEADER_LINE = ",".join(HEADER)


def parse(text: str, **limits) -> RateDeck | DeckImportFailed:
    return parse_deck_csv(text, deck_id="d", effective_from=JAN, **limits)


def errors_of(text: str, **limits) -> list[tuple[int, str]]:
    result = parse(text, **limits)
    assert isinstance(result, DeckImportFailed), result
    return [(error.line, error.message) for error in result.errors]


def csv_of(*rows: str) -> str:
    return "\n".join([HEADER_LINE, *rows]) + "\n"


GOOD = "614,Australia mobile,0,0.45,30,6,0"


def test_a_valid_deck_is_imported_whole():
    deck = parse(
        csv_of(
            GOOD,
            '44,"United Kingdom, fixed",0.10,0.05,1,1,0.25',
            "6113,13 numbers,0.25,0,60,60,0",
        )
    )
    assert isinstance(deck, RateDeck)
    assert len(deck) == 3
    uk = deck.find("442079460000")
    assert uk == RateEntry("44", "United Kingdom, fixed", 100_000, 50_000, 1, 1, 250_000)
    assert deck.deck_id == "d" and deck.effective_from == JAN


def test_windows_line_endings_a_bom_and_blank_lines_are_accepted():
    text = "\ufeff" + HEADER_LINE + "\r\n" + GOOD + "\r\n\r\n" + "61,Australia,0,0.10,60,60,0\r\n"
    deck = parse(text)
    assert isinstance(deck, RateDeck) and len(deck) == 2


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (",x,0,0.45,60,60,0", "prefix is empty"),
        ("61a,x,0,0.45,60,60,0", "prefix '61a' must be digits only"),
        ("+614,x,0,0.45,60,60,0", "prefix '+614': write the digits without '+'"),
        (
            "0412,x,0,0.45,60,60,0",
            "prefix '0412' starts with 0; E.164 digits start with the country code",
        ),
        ("6" * 16 + ",x,0,0.45,60,60,0", "prefix longer than 15 digits"),
        ("614,x,0,-0.45,60,60,0", "price_per_minute must not be negative"),
        ("614,x,-1,0.45,60,60,0", "connection_fee must not be negative"),
        ("614,x,0,0.45,60,60,-0.01", "minimum_charge must not be negative"),
        ("614,x,0,abc,60,60,0", "price_per_minute 'abc' is not an amount like 0.45"),
        ("614,x,0,1e3,60,60,0", "price_per_minute '1e3' is not an amount like 0.45"),
        ("614,x,0,,60,60,0", "price_per_minute is empty"),
        ("614,x,0,0.4500001,60,60,0", "price_per_minute 0.4500001 has more than 6 decimal places"),
        ("614,x,0,1000.01,60,60,0", "price_per_minute 1000.01 is more than 1000"),
        ("614,x,0,0.45,0,60,0", "initial_increment must be at least 1 second"),
        ("614,x,0,0.45,60,-6,0", "subsequent_increment must be at least 1 second"),
        ("614,x,0,0.45,6.5,6,0", "initial_increment '6.5' is not a whole number of seconds"),
        ("614,x,0,0.45,60,3601,0", "subsequent_increment 3601 is more than 3600 seconds"),
        ("614,x,0,0.45,60,60", "expected 7 columns, found 6"),
        ("614,x,0,0.45,60,60,0,extra", "expected 7 columns, found 8"),
        ('614,"unterminated,0,0.45,60,60,0', "not valid CSV (each row must be on one line)"),
        ("614," + "x" * 201 + ",0,0.45,60,60,0", "description longer than 200 characters"),
        ("614,tab\there,0,0.45,60,60,0", "description has control characters"),
    ],
)
def test_each_bad_row_is_reported_on_its_line(row: str, message: str):
    assert errors_of(csv_of(GOOD, "61,Australia,0,0.10,60,60,0", row)) == [(4, message)]


def test_every_error_is_collected_and_nothing_is_half_imported():
    text = csv_of(GOOD, "61x,x,0,-1,0,60,0", "61,Australia,0,0.10,60,60,0", "44,UK,0,zz,60,60,0")
    assert errors_of(text) == [
        (3, "prefix '61x' must be digits only"),
        (3, "price_per_minute must not be negative"),
        (3, "initial_increment must be at least 1 second"),
        (5, "price_per_minute 'zz' is not an amount like 0.45"),
    ]


def test_duplicate_prefixes_name_the_first_line():
    text = csv_of(GOOD, "61,Australia,0,0.10,60,60,0", "614,again,0,0.40,60,60,0")
    assert errors_of(text) == [(4, "duplicate prefix 614 (first on line 2)")]


def test_a_blank_line_keeps_later_line_numbers_true():
    text = HEADER_LINE + "\n" + GOOD + "\n\n" + "bad,x,0,0.10,60,60,0\n"
    assert errors_of(text) == [(4, "prefix 'bad' must be digits only")]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            "prefix,description,connection_fee,price_per_minute,initial_increment,subsequent_increment",
            "missing columns: minimum_charge",
        ),
        (HEADER_LINE + ",currency", "unexpected columns: currency"),
        (
            "prefix,desc,connection_fee,price_per_minute,initial_increment,subsequent_increment,"
            "minimum_charge",
            "missing columns: description; unexpected columns: desc",
        ),
        (
            "description,prefix,connection_fee,price_per_minute,initial_increment,"
            "subsequent_increment,minimum_charge",
            "columns are out of order",
        ),
        ("Prefix" + HEADER_LINE[6:], "missing columns: prefix; unexpected columns: Prefix"),
        ("", "missing columns: " + ", ".join(HEADER)),
    ],
)
def test_wrong_or_missing_columns_are_a_header_error(header: str, message: str):
    errors = errors_of(header + "\n" + GOOD + "\n")
    assert len(errors) == 1
    line, text = errors[0]
    assert line == 1
    assert text.startswith(message)
    assert text.endswith("expected exactly: " + HEADER_LINE)


def test_a_deck_without_rates_is_refused():
    assert errors_of(HEADER_LINE + "\n") == [(1, "the deck has no rates")]


def test_input_is_bounded():
    too_many = csv_of(GOOD, "61,a,0,0.10,60,60,0", "44,b,0,0.10,60,60,0")
    assert errors_of(too_many, max_rows=2) == [(4, "more than 2 rows")]
    long_line = csv_of(GOOD, "61," + "a" * 150 + ",0,0.10,60,60,0")
    assert errors_of(long_line, max_line_chars=120) == [(3, "line longer than 120 characters")]
    huge = csv_of(*([GOOD] * 50))
    assert errors_of(huge, max_rows=5, max_line_chars=40) == [
        (0, "the file is larger than 5 rows can be")
    ]


def test_error_lists_are_bounded():
    text = csv_of(*(f"x{n},x,0,0.10,60,60,0" for n in range(MAX_ERRORS + 50)))
    result = parse(text)
    assert isinstance(result, DeckImportFailed)
    assert result.truncated
    assert len(result.errors) == MAX_ERRORS


def test_bytes_must_be_utf8_and_the_bad_line_is_named():
    data = (csv_of(GOOD) + "61,caf\xe9,0,0.10,60,60,0\n").encode("latin-1")
    result = parse_deck_csv_bytes(data, deck_id="d", effective_from=JAN)
    assert result == DeckImportFailed((DeckCsvError(3, "is not valid UTF-8"),))
    ok = parse_deck_csv_bytes(("\ufeff" + csv_of(GOOD)).encode(), deck_id="d", effective_from=JAN)
    assert isinstance(ok, RateDeck)


def test_errors_read_well():
    assert str(DeckCsvError(3, "prefix is empty")) == "line 3: prefix is empty"
    assert str(DeckCsvError(0, "the file is too large")) == "the file is too large"


def test_export_is_stable_and_readable():
    deck = parse(
        csv_of("614,Australia mobile,0,0.45,30,6,0", '44,"UK, ""fixed""",0.1,0.0125,1,1,0')
    )
    assert isinstance(deck, RateDeck)
    assert deck_to_csv(deck) == csv_of(
        '44,"UK, ""fixed""",0.10,0.0125,1,1,0.00', "614,Australia mobile,0.00,0.45,30,6,0.00"
    )


def test_export_refuses_what_import_would_reject():
    deck = RateDeck("d", JAN, [RateEntry("61", "two\nlines", 0, 1, 60, 60, 0)])
    with pytest.raises(ValueError, match="control characters"):
        deck_to_csv(deck)


descriptions = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\u2028\u2029\x85"),
    max_size=40,
)
entries = st.builds(
    RateEntry,
    prefix=st.text("0123456789", min_size=1, max_size=15).filter(lambda p: p[0] != "0"),
    description=descriptions,
    connection_fee_micros=st.integers(0, 1_000_000_000),
    price_per_minute_micros=st.integers(0, 1_000_000_000),
    initial_increment_s=st.integers(1, 3600),
    subsequent_increment_s=st.integers(1, 3600),
    minimum_charge_micros=st.integers(0, 1_000_000_000),
)


@given(st.lists(entries, min_size=1, max_size=30, unique_by=lambda entry: entry.prefix))
def test_any_valid_deck_round_trips(deck_entries: list[RateEntry]):
    deck = RateDeck("d", JAN, deck_entries)
    again = parse(deck_to_csv(deck))
    assert isinstance(again, RateDeck), again
    assert list(again) == list(deck)
