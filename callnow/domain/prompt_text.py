"""The words the owner hears: the confirmation prompt, the short whisper and the notice.

Text only, in the language in use (`callnow.i18n.use_language`, the owner's language: the flow
chooses it from the request's facts); rendering it to audio (espeak-ng with that language's
voice, caching by text and language) is the telephony layer's job.

Phone numbers are read group by group, the way a speaker of that language reads them
(`spoken_number`): the groups are those of the number's national format (phonenumbers), the
groups are separated by a pause (a comma), and inside a group the digits are written either one
by one ("0 2") or, where the language reads pairs as numbers (French "douze, trente-quatre"), as
two-digit numbers. So a text-to-speech engine never reads "0290375678" as "two hundred and
ninety million…".
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum

import phonenumbers

from callnow.i18n import active_language, use_language
from callnow.i18n import gettext as _

# Visitors type the name; keep what is read out short enough not to drown the number.
MAX_SPOKEN_NAME_CHARS = 60


class PairReading(StrEnum):
    """Which digits of a number a language reads as two-digit numbers."""

    NONE = "none"  # every digit on its own: "zero two, nine zero three seven"
    ALL = "all"  # French: every group read in pairs, "zéro six, douze, trente-quatre"
    TWO_DIGIT_GROUPS = "two_digit_groups"  # Spanish: "seis uno dos, treinta y cuatro"


@dataclass(frozen=True)
class NumberReading:
    """How one language reads a phone number aloud."""

    pairs: PairReading = PairReading.NONE
    # Written between groups; espeak-ng pauses on it in that language.
    separator: str = ", "


NUMBER_READINGS: dict[str, NumberReading] = {
    "en": NumberReading(),
    "de": NumberReading(),
    "fr": NumberReading(PairReading.ALL),
    "es": NumberReading(PairReading.TWO_DIGIT_GROUPS),
    "it": NumberReading(),
    "pt": NumberReading(),
    "nl": NumberReading(),
    "pl": NumberReading(),
    "ja": NumberReading(separator="、"),
    "ar": NumberReading(separator="، "),
}


def number_groups(number: str, region: str) -> tuple[bool, list[str]]:
    """(international, digit groups) of `number` as a local of `region` would write it.

    National format when the number belongs to `region` (+61290375678 in AU gives
    ["02", "9037", "5678"]); otherwise the international format's groups, country code first
    (international is then True); if the number cannot be parsed at all, its digits as one
    group.
    """
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return False, _digit_groups(number)
    if not phonenumbers.is_possible_number(parsed):
        return False, _digit_groups(number)
    if phonenumbers.region_code_for_number(parsed) == region.upper():
        national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
        return False, _digit_groups(national, split=True)
    international = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return True, _digit_groups(international, split=True)


def spoken_number(number: str, region: str, language: str | None = None) -> str:
    """`number` written for a voice of `language` (the language in use when None).

    English, AU: "0 2, 9 0 3 7, 5 6 7 8"; French, FR: "0 6, 12, 34, 56, 78"; a number from
    another country: "plus 4 4, 2 0, …" in that language's words.
    """
    with use_language(language or active_language()) as chosen:
        reading = NUMBER_READINGS.get(chosen, NUMBER_READINGS["en"])
        international, groups = number_groups(number, region)
        spoken = reading.separator.join(_read_group(group, reading.pairs) for group in groups)
        if international:
            return _("plus %(number)s") % {"number": spoken}
        return spoken


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
    """The prompt that asks the owner to accept or decline, in the language in use.

    `cost_phrase` is billing's hook, for example "a local call, 12 cents" (already in that
    language); it is read right after the number so the owner hears what accepting will cost.
    """
    words = {
        "name": spoken_name(caller_name),
        "number": spoken_number(caller_number, region),
        "cost": cost_phrase.strip() if cost_phrase else "",
    }
    if words["name"] and words["cost"]:
        text = _(
            "Call request from %(name)s, %(number)s, %(cost)s. "
            "Press 1 to call back now, 2 to decline."
        )
    elif words["name"]:
        text = _("Call request from %(name)s, %(number)s. Press 1 to call back now, 2 to decline.")
    elif words["cost"]:
        text = _("Call request from %(number)s, %(cost)s. Press 1 to call back now, 2 to decline.")
    else:
        text = _("Call request from %(number)s. Press 1 to call back now, 2 to decline.")
    return text % words


def whisper_prompt(*, caller_number: str, region: str, caller_name: str | None = None) -> str:
    """What an owner hears before an already-accepted callback rings out."""
    name = spoken_name(caller_name)
    if name:
        return _("CallNow call to %(name)s.") % {"name": name}
    return _("CallNow call to %(number)s.") % {"number": spoken_number(caller_number, region)}


def unreachable_notice(*, caller_number: str, region: str, caller_name: str | None = None) -> str:
    """What an owner who accepted hears when the visitor could not be reached."""
    name = spoken_name(caller_name)
    if name:
        return _("Sorry, we could not reach %(name)s. Goodbye.") % {"name": name}
    number = spoken_number(caller_number, region)
    return _("Sorry, we could not reach %(number)s. Goodbye.") % {"number": number}


def _digit_groups(text: str, *, split: bool = False) -> list[str]:
    """The runs of ASCII digits in `text` (each a group when `split`, else all as one)."""
    groups: list[str] = []
    current = ""
    for ch in text:
        if ch.isdigit() and ch.isascii():
            current += ch
        elif current and split:
            groups.append(current)
            current = ""
    if current:
        groups.append(current)
    return groups


def _read_group(group: str, pairs: PairReading) -> str:
    as_pairs = pairs is PairReading.ALL or (
        pairs is PairReading.TWO_DIGIT_GROUPS and len(group) == 2
    )
    if not as_pairs:
        return " ".join(group)
    # An odd group starts with one digit alone: "123" is read "1 23", "un, vingt-trois".
    cut = len(group) % 2
    chunks = ([group[:cut]] if cut else []) + [group[i : i + 2] for i in range(cut, len(group), 2)]
    # A pair with a leading zero is two digits ("0 6": "zéro six"), never "six".
    return " ".join(" ".join(chunk) if chunk.startswith("0") else chunk for chunk in chunks)
