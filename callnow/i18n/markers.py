"""`N_`: marks an English message for the catalogue where it is defined (a constant, a table),
so extraction finds it; the code translates it with `gettext` where it is shown."""

from __future__ import annotations


def N_(message: str) -> str:  # the gettext convention's name
    return message
