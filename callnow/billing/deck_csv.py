"""Rate decks to and from CSV, all or nothing.

An import either yields a complete RateDeck or every error found, each with its line number, so an
operator fixes the file in one pass and a half-read deck can never price calls. Input is bounded
(characters, rows, line length, error count) because decks are uploaded through the web.

Each record must fit on one physical line: line numbers then mean what an editor shows, and a
stray quote cannot swallow the rest of the file into one description.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from callnow.domain.rating import (
    MAX_PREFIX_DIGITS,
    MICRO_DIGITS,
    RateDeck,
    RateEntry,
    micros_to_decimal,
    money_to_micros,
)

HEADER = (
    "prefix",
    "description",
    "connection_fee",
    "price_per_minute",
    "initial_increment",
    "subsequent_increment",
    "minimum_charge",
)
DEFAULT_MAX_ROWS = 200_000
DEFAULT_MAX_LINE_CHARS = 512
MAX_ERRORS = 200
MAX_DESCRIPTION_CHARS = 200
MAX_AMOUNT = Decimal(1000)  # major units; anything dearer is a typo, not a tariff
MAX_INCREMENT_S = 3600
WHOLE_FILE = 0  # the line number of errors about the input as a whole

_AMOUNT = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_SECONDS = re.compile(r"[0-9]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class DeckCsvError:
    line: int  # 1 is the header; 0 means the file as a whole
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


@dataclass(frozen=True, slots=True)
class DeckImportFailed:
    errors: tuple[DeckCsvError, ...]
    truncated: bool = False  # more errors exist than MAX_ERRORS


def parse_deck_csv_bytes(
    data: bytes,
    *,
    deck_id: str,
    effective_from: datetime,
    max_rows: int = DEFAULT_MAX_ROWS,
    max_line_chars: int = DEFAULT_MAX_LINE_CHARS,
) -> RateDeck | DeckImportFailed:
    """As parse_deck_csv, for an uploaded file that must be UTF-8 (a BOM is allowed)."""
    if len(data) > _max_chars(max_rows, max_line_chars) * 4:
        return _failed(WHOLE_FILE, "the file is too large")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        return _failed(line, "is not valid UTF-8")
    return parse_deck_csv(
        text,
        deck_id=deck_id,
        effective_from=effective_from,
        max_rows=max_rows,
        max_line_chars=max_line_chars,
    )


def parse_deck_csv(
    text: str,
    *,
    deck_id: str,
    effective_from: datetime,
    max_rows: int = DEFAULT_MAX_ROWS,
    max_line_chars: int = DEFAULT_MAX_LINE_CHARS,
) -> RateDeck | DeckImportFailed:
    """A complete deck, or every error (up to MAX_ERRORS) with its line number."""
    if len(text) > _max_chars(max_rows, max_line_chars):
        return _failed(WHOLE_FILE, f"the file is larger than {max_rows} rows can be")
    lines = text.removeprefix("\ufeff").split("\n")
    header_error = _check_header(lines[0].removesuffix("\r"), max_line_chars)
    if header_error:
        return _failed(1, header_error)

    errors: list[DeckCsvError] = []
    entries: list[RateEntry] = []
    first_line_of_prefix: dict[str, int] = {}
    rows = 0
    for index, raw in enumerate(lines[1:], start=2):
        line = raw.removesuffix("\r")
        if not line.strip():
            continue
        rows += 1
        if rows > max_rows:
            errors.append(DeckCsvError(index, f"more than {max_rows} rows"))
            break
        entry, row_errors = _parse_row(line, max_line_chars)
        if entry is not None:
            first = first_line_of_prefix.setdefault(entry.prefix, index)
            if first != index:
                row_errors.append(f"duplicate prefix {entry.prefix} (first on line {first})")
            else:
                entries.append(entry)
        errors.extend(DeckCsvError(index, message) for message in row_errors)
        if len(errors) >= MAX_ERRORS:
            return DeckImportFailed(tuple(errors[:MAX_ERRORS]), truncated=True)
    if not errors and not entries:
        errors.append(DeckCsvError(1, "the deck has no rates"))
    if errors:
        return DeckImportFailed(tuple(errors))
    return RateDeck(deck_id, effective_from, entries)


def deck_to_csv(deck: RateDeck) -> str:
    """The deck as CSV that parse_deck_csv reads back to the same entries."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for entry in deck:
        if _CONTROL.search(entry.description):
            raise ValueError(f"description of prefix {entry.prefix} has control characters")
        writer.writerow(
            (
                entry.prefix,
                entry.description,
                _format_amount(entry.connection_fee_micros),
                _format_amount(entry.price_per_minute_micros),
                entry.initial_increment_s,
                entry.subsequent_increment_s,
                _format_amount(entry.minimum_charge_micros),
            )
        )
    return out.getvalue()


# ---------------------------------------------------------------------------- rows and fields


def _check_header(line: str, max_line_chars: int) -> str | None:
    if len(line) > max_line_chars:
        return f"header longer than {max_line_chars} characters"
    fields = _split(line)
    if fields is None:
        return "header is not valid CSV"
    if tuple(fields) == HEADER:
        return None
    missing = [name for name in HEADER if name not in fields]
    unexpected = [name for name in fields if name not in HEADER]
    problems = []
    if missing:
        problems.append(f"missing columns: {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected columns: {', '.join(unexpected)}")
    if not problems:
        problems.append("columns are out of order")
    return "; ".join(problems) + f"; expected exactly: {','.join(HEADER)}"


def _parse_row(line: str, max_line_chars: int) -> tuple[RateEntry | None, list[str]]:
    if len(line) > max_line_chars:
        return None, [f"line longer than {max_line_chars} characters"]
    fields = _split(line)
    if fields is None:
        return None, ["not valid CSV (each row must be on one line)"]
    if len(fields) != len(HEADER):
        return None, [f"expected {len(HEADER)} columns, found {len(fields)}"]
    prefix, description, connection, price, initial, subsequent, minimum = fields
    errors: list[str] = []
    _check_prefix(prefix, errors)
    _check_description(description, errors)
    connection_micros = _amount("connection_fee", connection, errors)
    price_micros = _amount("price_per_minute", price, errors)
    minimum_micros = _amount("minimum_charge", minimum, errors)
    initial_s = _seconds("initial_increment", initial, errors)
    subsequent_s = _seconds("subsequent_increment", subsequent, errors)
    if (
        errors
        or connection_micros is None
        or price_micros is None
        or minimum_micros is None
        or initial_s is None
        or subsequent_s is None
    ):
        return None, errors
    entry = RateEntry(
        prefix,
        description,
        connection_micros,
        price_micros,
        initial_s,
        subsequent_s,
        minimum_micros,
    )
    return entry, errors


def _split(line: str) -> list[str] | None:
    try:
        return next(csv.reader([line], strict=True))
    except (csv.Error, StopIteration):
        return None


def _check_prefix(prefix: str, errors: list[str]) -> None:
    if not prefix:
        errors.append("prefix is empty")
    elif prefix.startswith("+"):
        errors.append(f"prefix {prefix!r}: write the digits without '+'")
    elif not (prefix.isascii() and prefix.isdigit()):
        errors.append(f"prefix {prefix!r} must be digits only")
    elif len(prefix) > MAX_PREFIX_DIGITS:
        errors.append(f"prefix longer than {MAX_PREFIX_DIGITS} digits")
    elif prefix[0] == "0":
        errors.append(f"prefix {prefix!r} starts with 0; E.164 digits start with the country code")


def _check_description(description: str, errors: list[str]) -> None:
    if len(description) > MAX_DESCRIPTION_CHARS:
        errors.append(f"description longer than {MAX_DESCRIPTION_CHARS} characters")
    if _CONTROL.search(description):
        errors.append("description has control characters")


def _amount(column: str, text: str, errors: list[str]) -> int | None:
    if not text:
        errors.append(f"{column} is empty")
    elif text.startswith("-"):
        errors.append(f"{column} must not be negative")
    elif not _AMOUNT.fullmatch(text):
        errors.append(f"{column} {text!r} is not an amount like 0.45")
    elif Decimal(text) > MAX_AMOUNT:
        errors.append(f"{column} {text} is more than {MAX_AMOUNT}")
    elif "." in text and len(text.split(".")[1]) > MICRO_DIGITS:
        errors.append(f"{column} {text} has more than {MICRO_DIGITS} decimal places")
    else:
        return money_to_micros(text)
    return None


def _seconds(column: str, text: str, errors: list[str]) -> int | None:
    if not text:
        errors.append(f"{column} is empty")
    elif text.startswith("-") or (_SECONDS.fullmatch(text) and int(text) == 0):
        errors.append(f"{column} must be at least 1 second")
    elif not _SECONDS.fullmatch(text):
        errors.append(f"{column} {text!r} is not a whole number of seconds")
    elif int(text) > MAX_INCREMENT_S:
        errors.append(f"{column} {text} is more than {MAX_INCREMENT_S} seconds")
    else:
        return int(text)
    return None


def _format_amount(micros: int) -> str:
    amount = micros_to_decimal(micros)
    cents = amount.quantize(Decimal("0.01"))
    return f"{cents:f}" if cents == amount else f"{amount.normalize():f}"


def _max_chars(max_rows: int, max_line_chars: int) -> int:
    return (max_rows + 1) * (max_line_chars + 2)


def _failed(line: int, message: str) -> DeckImportFailed:
    return DeckImportFailed((DeckCsvError(line, message),))
