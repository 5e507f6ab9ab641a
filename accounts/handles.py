"""Handles: the unique @name a member is mentioned by and found at (/u/<handle>/).

Lowercase letters, digits, "_" and "-", 3 to 30 characters, stored lowercase (so unique
whatever the case the member typed). The same refusals as display names (accounts.names):
nothing that reads as Fanhub staff or as a brand the member does not run, nor the
placeholder of members without a name; plus words our URLs and mentions use."""

from __future__ import annotations

import re
import secrets
import unicodedata

from django.core.exceptions import ValidationError

from accounts.names import _PLACEHOLDER, check_not_imitating

HANDLE_MIN, HANDLE_MAX = 3, 30
HANDLE_RE = re.compile(r"[a-z0-9_-]{3,30}")
# Paths and words that a handle must not pass for ("/u/me/", "@everyone").
RESERVED_HANDLES = {
    "me", "you", "new", "edit", "admin", "root", "api", "www", "mail", "help", "support",
    "all", "everyone", "here", "channel", "moderator", "moderators", "staff", "system",
    "fanhub", "official", "null", "none", "undefined", "anonymous", "member", "members",
    "settings", "account", "accounts", "login", "logout", "signup",
}  # fmt: skip
_GENERATED = re.compile(r"^fan-\d+$")


def handle_clean(value: str) -> str:
    return (value or "").strip().lstrip("@").lower()


def handle_check(*, handle: str, user=None) -> None:
    """Raise ValidationError when `handle` (already cleaned) may not be used by `user` (None
    for someone signing up)."""
    from accounts.models import User

    if not HANDLE_RE.fullmatch(handle):
        raise ValidationError(
            f"Use {HANDLE_MIN} to {HANDLE_MAX} lowercase letters, digits, “_” or “-”.",
            code="invalid",
        )
    own_generated = bool(user and user.pk and handle == f"fan-{user.pk}")
    if handle in RESERVED_HANDLES or (_GENERATED.match(handle) and not own_generated):
        raise ValidationError("That handle is reserved. Choose another.", code="reserved")
    spaced = handle.replace("_", " ").replace("-", " ")
    if _PLACEHOLDER.match(spaced):
        raise ValidationError("That handle is reserved. Choose another.", code="reserved")
    check_not_imitating(text=spaced, user=user, what="handle")
    taken = User.objects.filter(handle=handle)
    if user is not None and user.pk:
        taken = taken.exclude(pk=user.pk)
    if taken.exists():
        raise ValidationError("Another member already uses that handle.", code="taken")


def handle_from_name(name: str) -> str:
    """A display name as a handle: accents dropped, other characters as "-", lowercase."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9_]+", "-", ascii_name.lower()).strip("-_")
    return re.sub(r"-{2,}", "-", slug)[:HANDLE_MAX].strip("-_")


def handle_suggest(*, name: str, user=None) -> str:
    """A free handle made from `name` (a display name): the name itself, else with a
    number, else a random one. Never from the email address: that stays private."""
    base = handle_from_name(name)
    candidates = []
    if len(base) >= HANDLE_MIN:
        candidates.append(base)
        candidates += [f"{base[: HANDLE_MAX - 3]}-{n}" for n in range(2, 10)]
        candidates += [f"{base[: HANDLE_MAX - 5]}-{secrets.randbelow(9000) + 1000}"]
    for candidate in candidates:
        try:
            handle_check(handle=candidate, user=user)
        except ValidationError:
            continue
        return candidate
    return handle_fallback(user=user)


def handle_fallback(*, user=None) -> str:
    if user is not None and user.pk:
        return f"fan-{user.pk}"
    return f"fan{secrets.randbelow(10**8):08d}"
