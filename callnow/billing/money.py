"""Minor-unit amounts to and from the decimal text people read and type ("12.50")."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation


def format_minor(amount_minor: int, exponent: int = 2) -> str:
    """12345 -> "123.45" for a two-decimal currency; exact, never through float."""
    return f"{Decimal(amount_minor).scaleb(-exponent):f}" if exponent else str(amount_minor)


def parse_minor(text: str, exponent: int = 2) -> int:
    """ "12.5" -> 1250. Refuses negatives and more decimals than the currency has."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation as exc:
        raise ValueError(f"{text!r} is not an amount like 12.50") from exc
    if not value.is_finite() or value < 0:
        raise ValueError(f"{text!r} is not a non-negative amount")
    minor = value.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise ValueError(f"{text!r} has more than {exponent} decimal places")
    return int(minor)
