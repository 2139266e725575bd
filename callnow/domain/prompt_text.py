"""The words the owner hears: the confirmation prompt and the short whisper.

Text only; rendering it to audio (espeak-ng, caching by text) is the telephony layer's job.
Numbers are spelled digit by digit, so a text-to-speech engine cannot read "0290375678" as
"two hundred and ninety million…".
"""

from __future__ import annotations

import unicodedata

import phonenumbers

# Visitors type the name; keep what is read out short enough not to drown the number.
MAX_SPOKEN_NAME_CHARS = 60


def spoken_number(number: str, region: str) -> str:
    """Digits of `number` separated by spaces, as a local would dial it.

    National format when the number belongs to `region` (+61290375678 in AU reads
    "0 2 9 0 3 7 5 6 7 8"); otherwise international with a spoken "plus"; if the number cannot be
    parsed at all, whatever digits it contains.
    """
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return _spaced_digits(number)
    if not phonenumbers.is_possible_number(parsed):
        return _spaced_digits(number)
    if phonenumbers.region_code_for_number(parsed) == region.upper():
        national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
        return _spaced_digits(national)
    international = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return "plus " + _spaced_digits(international)


def spoken_name(name: str | None) -> str | None:
    """The name as the visitor gave it, minus control characters and runs of whitespace;
    None when nothing speakable is left."""
    if name is None:
        return None
    printable = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C" or ch == " ")
    collapsed = " ".join(printable.split())[:MAX_SPOKEN_NAME_CHARS].strip()
    return collapsed or None


def confirm_prompt(
    *,
    caller_number: str,
    region: str,
    caller_name: str | None = None,
    cost_phrase: str | None = None,
) -> str:
    """The prompt that asks the owner to accept or decline.

    `cost_phrase` is billing's hook, for example "a local call, 12 cents"; it is read right after
    the number so the owner hears what accepting will cost.
    """
    who = _who(caller_number, region, caller_name)
    cost = f", {cost_phrase.strip()}" if cost_phrase and cost_phrase.strip() else ""
    return f"Call request from {who}{cost}. Press 1 to call back now, 2 to decline."


def whisper_prompt(*, caller_number: str, region: str, caller_name: str | None = None) -> str:
    """What an owner hears before an already-accepted callback rings out."""
    return f"CallNow call to {spoken_name(caller_name) or spoken_number(caller_number, region)}."


def unreachable_notice(*, caller_number: str, region: str, caller_name: str | None = None) -> str:
    """What an owner who accepted hears when the visitor could not be reached."""
    who = spoken_name(caller_name) or spoken_number(caller_number, region)
    return f"Sorry, we could not reach {who}. Goodbye."


def _who(number: str, region: str, name: str | None) -> str:
    digits = spoken_number(number, region)
    name_text = spoken_name(name)
    return f"{name_text}, {digits}" if name_text else digits


def _spaced_digits(text: str) -> str:
    return " ".join(ch for ch in text if ch.isdigit() and ch.isascii())
