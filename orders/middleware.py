from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from orders.carts import SESSION_KEY
from orders.models import Cart
from orders.services import cart_merge


class CartMergeMiddleware:
    """After sign-in, the cart the visitor filled joins their own cart (once: the session's
    cart id is dropped). Costs nothing for requests whose session holds no visitor cart."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated and SESSION_KEY in request.session:
            cart_id = request.session.pop(SESSION_KEY)
            visitor_cart = Cart.objects.filter(pk=cart_id, user=None).first()
            if visitor_cart is not None:
                cart_merge(source=visitor_cart, user=request.user)
        return self.get_response(request)
