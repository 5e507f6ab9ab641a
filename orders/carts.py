"""Which cart a request means: the user's, or the visitor's (by session)."""

from django.http import HttpRequest

from orders.models import Cart

SESSION_KEY = "cart_id"


def cart_for_request(request: HttpRequest, *, create: bool = False) -> Cart | None:
    if request.user.is_authenticated:
        if create:
            return Cart.objects.get_or_create(user=request.user)[0]
        return Cart.objects.filter(user=request.user).first()
    cart_id = request.session.get(SESSION_KEY)
    cart = Cart.objects.filter(pk=cart_id, user=None).first() if cart_id else None
    if cart is None and create:
        cart = Cart.objects.create()
        request.session[SESSION_KEY] = cart.pk
    return cart


def code_client_keys(request: HttpRequest) -> list[str]:
    """Who is trying discount codes (orders.services.cart_code_apply counts wrong tries):
    the account, or the session, and the address."""
    if not request.user.is_authenticated and not request.session.session_key:
        request.session.save()  # a key of its own, not one shared by every new visitor
    who = (
        f"user:{request.user.pk}"
        if request.user.is_authenticated
        else f"session:{request.session.session_key}"
    )
    return [who, f"ip:{request.META.get('REMOTE_ADDR', '')}"]
