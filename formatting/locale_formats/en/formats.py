"""Django's own date output (the admin's lists and pages, `|date` without a format) in the
same shape as formatting.formats.day / when: "3 Dec 2026" and "3 Dec 2026, 18:00 UTC", not
Django's "Dec. 3, 2026, 6 p.m."."""

DATE_FORMAT = "j M Y"
DATETIME_FORMAT = "j M Y, H:i T"
SHORT_DATE_FORMAT = "j M Y"
SHORT_DATETIME_FORMAT = "j M Y, H:i T"
TIME_FORMAT = "H:i"
MONTH_DAY_FORMAT = "j F"
YEAR_MONTH_FORMAT = "F Y"
