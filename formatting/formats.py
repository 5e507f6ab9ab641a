"""The store's one money format and one date format (Babel, in settings.STORE_LOCALE), for
templates (formatting.templatetags.formats) and for texts built in code. A leaf: it imports
nothing of ours, so every layer may use it."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from babel.dates import format_date, format_datetime
from babel.numbers import format_currency
from django.conf import settings
from django.utils import timezone

# Patterns, not Babel's locale "medium" styles: one look everywhere ("3 Dec 2026",
# "3 Dec 2026, 18:00 UTC"), with month names still in the store's language.
DAY_PATTERN = "d MMM y"
WHEN_PATTERN = "d MMM y, HH:mm z"


def store_locale() -> str:
    return getattr(settings, "STORE_LOCALE", "en_US")


def money(amount: Decimal | int | str | None, currency: str | None = None) -> str:
    """ "$2,397.00" in the store's locale and currency (or `currency`); "" for no amount."""
    if amount is None or amount == "":
        return ""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return str(amount)
    return format_currency(
        value, (currency or settings.STORE_CURRENCY).upper(), locale=store_locale()
    )


def day(value: date | datetime | None) -> str:
    """ "3 Dec 2026": a date, or the day of a moment in the store's time zone."""
    if value is None or value == "":
        return ""
    if isinstance(value, datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        value = value.date()
    return format_date(value, DAY_PATTERN, locale=store_locale())


def when(value: datetime | None) -> str:
    """ "3 Dec 2026, 18:00 UTC": a moment, with the time zone it is shown in."""
    if value is None or value == "":
        return ""
    if not isinstance(value, datetime):
        return day(value)
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    zone = timezone.get_current_timezone()
    return format_datetime(value, WHEN_PATTERN, tzinfo=zone, locale=store_locale())
