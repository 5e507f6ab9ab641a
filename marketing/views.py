import secrets

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from marketing.models import Placement
from marketing.placements import SESSION_KEY, VISITOR_COOKIE, scan_is_bot, scan_record
from marketing.targets import target_url
from marketing.vouchers import voucher_label
from orders.carts import cart_for_request, code_client_keys
from orders.services import CheckoutError, cart_code_apply

VISITOR_COOKIE_AGE = 365 * 86_400


@require_http_methods(["GET", "HEAD"])
def scan(request: HttpRequest, token: str) -> HttpResponse:
    """A placement's QR code: count the scan (not for bots and previews), remember it for
    what follows, and go to the target."""
    placement = (
        Placement.objects.select_related("brand", "voucher__brand")
        .filter(token=token[:24], is_active=True)
        .first()
    )
    if placement is None:
        raise Http404("No such code")
    response = redirect(target_url(placement))
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex"
    if scan_is_bot(
        method=request.method,
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
        headers=request.headers,
    ):
        return response
    visitor = request.COOKIES.get(VISITOR_COOKIE, "")[:64]
    if not visitor:
        visitor = secrets.token_urlsafe(16)
        response.set_cookie(
            VISITOR_COOKIE, visitor, max_age=VISITOR_COOKIE_AGE, httponly=True, samesite="Lax"
        )
    now = timezone.now()
    user = request.user if request.user.is_authenticated else None
    recorded = scan_record(placement=placement, visitor=visitor, user=user, now=now)
    voucher = placement.voucher if placement.voucher and placement.voucher.is_active else None
    if user is None:
        pending = [
            item
            for item in request.session.get(SESSION_KEY, [])
            if item.get("placement") != placement.pk
        ]
        pending.append(
            {
                "placement": placement.pk,
                "scan": recorded.pk if recorded else None,
                "at": now.isoformat(),
            }
        )
        request.session[SESSION_KEY] = pending[-10:]
        if voucher:
            messages.info(
                request,
                _(
                    "Sign in or create an account to claim %(offer)s: it is saved to your "
                    "account and put in your cart."
                )
                % {"offer": voucher_label(voucher)},
            )
    elif voucher:
        messages.success(
            request, _("%(offer)s is in your cart.") % {"offer": voucher_label(voucher)}
        )
    return response


@require_http_methods(["GET"])
def voucher_link(request: HttpRequest, code: str) -> HttpResponse:
    """/v/<code>/: put the code in the cart (the same checks and guessing limit as typing
    it at checkout); link previews change nothing."""
    response = redirect("orders:cart")
    if scan_is_bot(
        method=request.method,
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
        headers=request.headers,
    ):
        return response
    cart = cart_for_request(request, create=True)
    try:
        applied = cart_code_apply(
            cart=cart,
            user=request.user if request.user.is_authenticated else None,
            code=code[:60],
            client_keys=code_client_keys(request),
        )
    except CheckoutError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Code %(code)s is in your cart.") % {"code": applied})
    return response
