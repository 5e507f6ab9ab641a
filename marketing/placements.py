"""Scans of placements and what follows them.

/q/<token>/ records a scan and redirects to the placement's target. Not counted: bots and
link previews (by user agent, HEAD requests, prefetches), and a visitor's repeated scans of
the same placement on the same day (UniqueConstraint on placement, visitor, day; a signed-in
fan is also one visitor across browsers). The visitor is a long-lived random cookie.

What follows: a signed-in scan makes the account one of the placement's fans at once; a
visitor's scan is kept in the session, and the next request after they sign in or sign up
(marketing.middleware) makes them a fan ("signed up" when the account is younger than the
scan) and binds the placement's voucher to the account (a personal code, put in the cart).
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from marketing.models import Placement, PlacementFan, Scan
from marketing.vouchers import voucher_claim

# Crawlers, link-preview fetchers of chat and social apps, and HTTP libraries.
BOT_PATTERN = re.compile(
    r"bot|crawl|spider|slurp|preview|facebookexternalhit|facebot|whatsapp|telegram|discord|"
    r"slack|skype|embedly|pinterest|vkshare|linkedin|quora|outbrain|w3c_|curl|wget|"
    r"python-requests|python-urllib|httpx|aiohttp|go-http-client|java/|okhttp|headless|"
    r"lighthouse|pingdom|uptime|monitor",
    re.IGNORECASE,
)
SESSION_KEY = "marketing_scans"
VISITOR_COOKIE = "fh_visitor"


def scan_is_bot(*, method: str, user_agent: str, headers) -> bool:
    if method == "HEAD":
        return True
    purpose = (headers.get("Sec-Purpose") or headers.get("Purpose") or "").lower()
    if "prefetch" in purpose or "preview" in purpose or headers.get("X-Purpose") == "preview":
        return True
    return not user_agent.strip() or bool(BOT_PATTERN.search(user_agent))


def visitor_key(cookie: str) -> str:
    return hashlib.sha256(f"visitor:{cookie}".encode()).hexdigest()[:40]


def scan_record(
    *, placement: Placement, visitor: str, user: User | None, now: datetime | None = None
) -> Scan | None:
    """Count a scan, once per visitor (and per signed-in fan) per placement per day.
    Returns the new Scan, or None when this one was not counted."""
    now = now or timezone.now()
    day = timezone.localdate(now)
    if user is not None and Scan.objects.filter(placement=placement, user=user, day=day).exists():
        scan = None
    else:
        try:
            with transaction.atomic():
                scan = Scan.objects.create(
                    placement=placement,
                    visitor_key=visitor_key(visitor),
                    day=day,
                    user=user,
                    signed_in=user is not None,
                    created_at=now,
                )
        except IntegrityError:  # the same visitor today, maybe at the same moment
            scan = None
    if user is not None:
        placement_fan_add(placement=placement, user=user, scanned_at=now)
    return scan


def placement_fan_add(
    *, placement: Placement, user: User, scanned_at: datetime, claim: bool = True
) -> PlacementFan:
    """The account joins the placement's fans (once); claims its voucher when it has one.
    Runs on every scan of a signed-in fan and at sign-in after a visitor's scan."""
    fan = PlacementFan.objects.filter(placement=placement, user=user).first()
    if fan is None:
        try:
            with transaction.atomic():
                fan = PlacementFan.objects.create(
                    placement=placement,
                    user=user,
                    first_scan_at=scanned_at,
                    signed_up=user.date_joined >= scanned_at,
                )
        except IntegrityError:
            fan = PlacementFan.objects.get(placement=placement, user=user)
    if claim and placement.voucher_id and placement.voucher.is_active:
        _claim_into_cart(placement=placement, user=user)
    return fan


def _claim_into_cart(*, placement: Placement, user: User) -> None:
    from orders.models import Cart
    from orders.services import cart_code_set

    claim = voucher_claim(voucher=placement.voucher, user=user, placement=placement)
    if claim.code.used:  # already spent: nothing to put in the cart
        return
    cart, _created = Cart.objects.get_or_create(user=user)
    if cart.discount_code != claim.code.code:
        cart_code_set(cart=cart, code=claim.code.code)


def scans_follow(*, user: User, pending: list[dict]) -> None:
    """At the first request after sign-in or sign-up: the visitor's scans in this browser
    become the account's (fans, their scan rows, claimed vouchers)."""
    for item in pending[-10:]:
        placement = (
            Placement.objects.select_related("voucher").filter(pk=item.get("placement")).first()
        )
        if placement is None:
            continue
        scanned_at = datetime.fromisoformat(item["at"])
        if item.get("scan"):
            Scan.objects.filter(pk=item["scan"], user=None).update(user=user)
        placement_fan_add(placement=placement, user=user, scanned_at=scanned_at)


# Where a placement sends its scans and what it offers: the fields whose change is audited.
PLACEMENT_AUDITED = (
    "brand_id",
    "name",
    "kind",
    "target_kind",
    "target_id",
    "voucher_id",
    "is_active",
)
