"""Geometry of the "calls and spend per day" chart, computed on the server.

The portal draws it as inline SVG from these numbers, so it reads without scripts; the same
day totals are also given as a table for screen readers and for anyone who wants the figures.
Two panels share the day axis: calls per day on top, spend per day below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from babel.dates import format_skeleton

from callnow.billing.money import format_minor
from callnow.billing.statements import DayTotal
from callnow.i18n import active_language, ngettext
from callnow.i18n import gettext as _

WIDTH = 720
PANEL_HEIGHT = 120
LEFT = 56  # room for the value axis labels
RIGHT = 8
TOP = 22  # room for the panel title
AXIS = 18  # room for day labels under a panel
GAP = 2


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # "20 Nov: 3 calls", the bar's accessible title


@dataclass(frozen=True, slots=True)
class Tick:
    x: float
    text: str


@dataclass(frozen=True, slots=True)
class Panel:
    title: str
    top: float  # y of the panel's plotting area
    baseline: float  # y of the zero line
    maximum_text: str  # label of the top gridline
    bars: tuple[Bar, ...]


@dataclass(frozen=True, slots=True)
class DailyChart:
    width: int
    height: int
    left: int
    right_edge: int
    panels: tuple[Panel, ...]
    ticks: tuple[Tick, ...]  # day labels, under each panel


def _day(day: date) -> str:
    """Day and month in the language in use: "03 Dec" in English as before, else CLDR's
    "MMMd" ("3. Dez.", "12月3日")."""
    language = active_language()
    return f"{day:%d %b}" if language == "en" else format_skeleton("MMMd", day, locale=language)


def daily_chart(days: Sequence[DayTotal], currency: str, exponent: int = 2) -> DailyChart:
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(days))
    panel_span = TOP + PANEL_HEIGHT + AXIS
    calls = _panel(
        _("Calls per day"),
        0,
        days,
        slot,
        value=lambda day: day.calls,
        text=lambda value: str(value),
        describe=lambda day: (
            ngettext("%(day)s: %(count)d call", "%(day)s: %(count)d calls", day.calls)
            % {"day": _day(day.day), "count": day.calls}
        ),
    )
    spend = _panel(
        _("Spend per day (%(currency)s, incl. tax)") % {"currency": currency},
        panel_span,
        days,
        slot,
        value=lambda day: day.gross_minor,
        text=lambda value: format_minor(value, exponent),
        describe=lambda day: f"{_day(day.day)}: {format_minor(day.gross_minor, exponent)}",
    )
    ticks = tuple(
        Tick(LEFT + slot * (index + 0.5), f"{day.day.day}")
        for index, day in enumerate(days)
        if day.day.day == 1 or day.day.day % 5 == 0
    )
    return DailyChart(WIDTH, 2 * panel_span, LEFT, WIDTH - RIGHT, (calls, spend), ticks)


def _panel(title, offset, days, slot, *, value, text, describe) -> Panel:
    values = [value(day) for day in days]
    top = offset + TOP
    baseline = top + PANEL_HEIGHT
    peak = max(values, default=0)
    bars = []
    for index, (day, amount) in enumerate(zip(days, values, strict=True)):
        height = PANEL_HEIGHT * amount / peak if peak else 0
        bars.append(
            Bar(
                x=round(LEFT + slot * index + GAP / 2, 2),
                y=round(baseline - height, 2),
                width=round(max(1.0, slot - GAP), 2),
                height=round(height, 2),
                label=describe(day),
            )
        )
    return Panel(title, top, baseline, text(peak), tuple(bars))
