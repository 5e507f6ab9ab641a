from django.core.cache import cache
from django.db import transaction
from django.db.models import Sum
from django.http import HttpRequest

from config.version_tokens import mirrored_delete, mirrored_get
from orders.carts import SESSION_KEY
from orders.models import Cart, CartLine
from orders.page_versions import CART_VERSION, cart_count_key

CART_COUNT_SECONDS = 600  # a backstop: every change through orders.services forgets it


def _key(user_id: int) -> str:
    return cart_count_key(user_id)


def cart(request: HttpRequest) -> dict:
    """The item count beside the cart link. No query for a visitor without a cart, and for
    a signed-in fan only after their cart changed (kept in the cache until then)."""
    if request.user.is_authenticated:
        key = _key(request.user.pk)
        # The cart page read it with its own tokens (orders.views): no round trip more.
        count = getattr(request, "cart_count_read", None)
        if count is None:
            count = mirrored_get(key)
        if count is None:
            lines = CartLine.objects.filter(cart__user=request.user)
            count = lines.aggregate(n=Sum("quantity"))["n"] or 0
            cache.set(key, count, CART_COUNT_SECONDS)
        return {"cart_count": count}
    if request.session.get(SESSION_KEY):
        lines = CartLine.objects.filter(cart_id=request.session[SESSION_KEY], cart__user=None)
        return {"cart_count": lines.aggregate(n=Sum("quantity"))["n"] or 0}
    return {"cart_count": 0}


def cart_count_forget(*, cart_id: int) -> None:
    """After a change to this cart commits, its owner's count is read again, and their cart
    page rendered anew (its version token, orders.page_versions)."""
    user_id = Cart.objects.filter(pk=cart_id).values_list("user_id", flat=True).first()
    if user_id is not None:
        transaction.on_commit(lambda: mirrored_delete(_key(user_id)), robust=True)
        CART_VERSION.retire(user_id)
