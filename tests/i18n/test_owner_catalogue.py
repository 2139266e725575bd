"""The owner's catalogue at run time: every message of `owner.pot`, in every shipped language,
is translated (not the English again, bar names and codes) and formats with the values the code
passes (a misspelt placeholder would raise KeyError in the middle of a page or a mail)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from callnow.i18n import SHIPPED, gettext, ngettext, pgettext, use_language

POT = Path(__file__).resolve().parents[2] / "callnow" / "i18n" / "owner.pot"
NAMED = re.compile(r"%\((\w+)\)([sd])")
# Messages that read the same in some languages: names, codes, "Portal", "Total", "Position".
SAME_IN_SOME = 40


def messages():
    with POT.open("rb") as pot:
        return [m for m in read_po(pot) if m.id]


def values(text: str) -> dict[str, object]:
    return {name: (7 if kind == "d" else f"<{name}>") for name, kind in NAMED.findall(text)}


@pytest.mark.parametrize("language", [code for code in SHIPPED if code != "en"])
def test_every_owner_message_is_translated_and_formats(language):
    same = []
    with use_language(language):
        for message in messages():
            if isinstance(message.id, tuple):
                singular, plural = message.id
                for count in (0, 1, 2, 3, 5, 11, 22, 100):
                    text = ngettext(singular, plural, count)
                    text % values(plural)  # every form takes the plural's values
                english = plural
                text = ngettext(singular, plural, 5)
            elif message.context:
                english = message.id
                text = pgettext(message.context, message.id)
                text % values(english)
            else:
                english = message.id
                text = gettext(message.id)
                text % values(english)
            if text == english:
                same.append(english)
    assert len(same) <= SAME_IN_SOME, same


def test_german_and_arabic_say_it_their_way():
    with use_language("de"):
        assert gettext("Saved.") == "Gespeichert."
        assert ngettext("%(count)s waiting", "%(count)s waiting", 2) % {"count": 2} == "2 warten"
    with use_language("ar"):
        forms = [
            ngettext("CallNow digest: %(count)d notice", "CallNow digest: %(count)d notices", n)
            % {"count": n}
            for n in (2, 3, 11)
        ]
        assert forms == [
            "ملخص CallNow: 2 إشعاران",
            "ملخص CallNow: 3 إشعارات",
            "ملخص CallNow: 11 إشعارًا",
        ]
    with use_language("pl"):
        said = [
            ngettext("%(day)s: %(count)d call", "%(day)s: %(count)d calls", n)
            % {"day": "1 gru", "count": n}
            for n in (1, 3, 5, 22)
        ]
        assert said == [
            "1 gru: 1 połączenie",
            "1 gru: 3 połączenia",
            "1 gru: 5 połączeń",
            "1 gru: 22 połączenia",
        ]
