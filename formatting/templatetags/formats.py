"""{% load formats %}: {{ amount|money }}, {{ amount|money:currency }}, {{ moment|when }},
{{ date|day }}."""

from django import template

from formatting import formats

register = template.Library()


@register.filter
def money(amount, currency=None) -> str:
    return formats.money(amount, currency or None)


@register.filter
def when(value) -> str:
    return formats.when(value)


@register.filter
def day(value) -> str:
    return formats.day(value)
