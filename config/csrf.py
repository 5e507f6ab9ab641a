"""One CSRF token per page. Django masks the token anew at every `get_token()` call; here a
request gets one masked token, which the `{% csrf_token %}` tags, the `<meta name="csrf-token">`
that htmx sends, and the CSRF markers of cached fragments all show.

A fragment shared by many people (communities.feed_cache, the header's account menu) holds
`<!--fh:csrf-->` where its forms need the field; `CsrfMarkers` puts the request's field
there. It sits inside CsrfViewMiddleware, which then sets the cookie the token needs."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.utils.functional import SimpleLazyObject
from django.utils.html import format_html

CSRF_MARKER = b"<!--fh:csrf-->"


def page_csrf_token(request: HttpRequest) -> str:
    """This request's masked CSRF token, the same at every call."""
    token = getattr(request, "_page_csrf_token", None)
    if token is None:
        token = request._page_csrf_token = get_token(request)
    return token


def csrf(request: HttpRequest) -> dict:
    """Context processor: `csrf_token` as Django's own, but once per request (it runs after
    Django's built-in one and replaces it)."""
    return {"csrf_token": SimpleLazyObject(lambda: page_csrf_token(request))}


class CsrfMarkers:
    """Fills the CSRF field into the markers of cached fragments in an HTML response."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            not response.streaming
            and response.get("Content-Type", "").startswith("text/html")
            and CSRF_MARKER in response.content
        ):
            field = format_html(
                '<input type="hidden" name="csrfmiddlewaretoken" value="{}">',
                page_csrf_token(request),
            )
            response.content = response.content.replace(CSRF_MARKER, field.encode())
        return response
