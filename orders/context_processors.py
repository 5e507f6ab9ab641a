from django.db.models import Sum
from django.http import HttpRequest

from orders.carts import SESSION_KEY
from orders.models import CartLine


def cart(request: HttpRequest) -> dict:
    """The item count beside the cart link. No query for a visitor without a cart."""
    if request.user.is_authenticated:
        lines = CartLine.objects.filter(cart__user=request.user)
    elif request.session.get(SESSION_KEY):
        lines = CartLine.objects.filter(cart_id=request.session[SESSION_KEY], cart__user=None)
    else:
        return {"cart_count": 0}
    return {"cart_count": lines.aggregate(n=Sum("quantity"))["n"] or 0}
