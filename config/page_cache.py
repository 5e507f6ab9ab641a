"""Whole pages cached as rendered HTML, served before any template is rendered.

A page's entry is keyed by what it shows: the view's own version tokens or a digest of the
rows it reads (`PageKey.parts`), the viewer's class (visitor or signed in, plus whatever the
key function adds, e.g. a membership status), the language and the full path. When what the
page shows changes, the key changes, so nobody is served a stale page.

One rendering serves every viewer of a class. Whatever differs between two viewers of the
same class is left out of it as a marker and filled in on every request, without a template:
- the CSRF token (every `{% csrf_token %}` and the htmx `<meta>` tag): the page is rendered
  with `CSRF_SENTINEL` as the request's token, replaced by the request's own afterwards;
- holes, `<!--fh:hole:<name>-->`, which base.html leaves for the header's account menu and
  cart count (`HOLES`), and the view's own overlay for the rest (likes, a member's card).
No marker can come from what people write: user text is escaped (`<` never survives) and
rendered posts are sanitized HTML without comments; the sentinel is derived from the
SECRET_KEY, so nobody can type it.

Never cached (the view runs as usual): other methods than GET, htmx requests, a request with
a flash message waiting (the page would show it once, to one person), responses that are not
a 200 text/html page, that set a cookie or add a message, and any rendering during which a
real CSRF token was asked for (it would be someone's token in a shared page).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache as cache_for_process
from functools import wraps
from typing import Any

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.template.loader import get_template
from django.utils.crypto import salted_hmac
from django.utils.translation import get_language

from config.csrf import page_csrf_token
from config.token_mirror import token_mirror

PAGE_SECONDS = 300  # a backstop: keys change with what the pages show


@cache_for_process
def csrf_sentinel() -> str:
    """The CSRF token a page is rendered with for the cache; nobody can type it."""
    return "fhcsrf" + salted_hmac("fanhub.page_cache", "csrf-sentinel").hexdigest()[:40]


@dataclass(frozen=True)
class PageKey:
    """What names a page's rendering besides its path, and what its overlay needs."""

    parts: tuple[str, ...]
    state: Any = None


def digest(*values: object) -> str:
    """A short key part naming the values a page shows."""
    return hashlib.sha256("\x1f".join(str(v) for v in values).encode()).hexdigest()[:24]


def rendering(request: HttpRequest) -> bool:
    """True while a page is rendered for the cache: templates leave holes then."""
    return getattr(request, "page_cache_render", False)


# --- the header's holes (base.html) ---------------------------------------------------------
# Rendered once per process and per distinct value: the count, the user's shown fields. Staff
# menus are rendered every time (their brand marks are read from the database).

_MEMO_SIZE = 4096
_memo: dict[tuple, str] = {}


def _memoized(key: tuple, render: Callable[[], str]) -> str:
    html = _memo.get(key)
    if html is None:
        if len(_memo) >= _MEMO_SIZE:
            _memo.clear()
        html = _memo[key] = render()
    return html


def _cart_hole(request: HttpRequest) -> str:
    from orders.context_processors import cart

    context = cart(request)
    return _memoized(
        ("cart", context["cart_count"]), lambda: get_template("_header_cart.html").render(context)
    )


def _account_hole(request: HttpRequest) -> str:
    user = request.user

    def render() -> str:
        return get_template("_header_account.html").render({"user": user, "request": request})

    if user.is_staff or user.is_superuser:
        return render()
    avatar = user.avatar.name if user.avatar else ""
    match = request.resolver_match
    page = match.app_name if match else ""
    key = ("account", user.pk, user.display_name, user.email, avatar, get_language(), page)
    return _memoized(key, render)


HOLES: dict[str, Callable[[HttpRequest], str]] = {"cart": _cart_hole, "account": _account_hole}


def _fill(request: HttpRequest, html: str) -> str:
    for name, hole in HOLES.items():
        marker = f"<!--fh:hole:{name}-->"
        if marker in html:
            html = html.replace(marker, hole(request))
    sentinel = csrf_sentinel()
    if sentinel in html:
        html = html.replace(sentinel, page_csrf_token(request))
    return html


# --- the entries: this process's copies in front of the shared cache ------------------------
# A key names what its page shows, so a copy kept here is as fresh as the shared entry; it
# is kept until the shared entry's own expiry. Pages are 30-100 kB: a few MB a process.

_LOCAL_SIZE = 128
_local: dict[str, tuple[float, str, str]] = {}
# One fan's own pages (their cart, their orders) in a store of their own, so that many fans'
# pages do not push out the pages everyone shares.
_private: dict[str, tuple[float, str, str]] = {}


def _local_set(key: str, entry: tuple[float, str, str], store: dict = _local) -> None:
    if len(store) >= _LOCAL_SIZE:
        store.clear()
    store[key] = entry


def _entry_get(key: str, store: dict = _local) -> tuple[float, str, str] | None:
    """(expires at, html, content type), from this process or the shared cache."""
    entry = store.get(key)
    if entry is None:
        entry = cache.get(key)
        if entry is None:
            return None
        _local_set(key, entry, store)
    if entry[0] <= time.time():
        del store[key]
        return None
    return entry


def page_cache_forget() -> None:
    """Every page's entry, here and shared, and this process's copy of the tokens: what
    their expiry does (tests)."""
    _local.clear()
    _private.clear()
    cache.delete_pattern("page:*")
    token_mirror().clear()


# --- the decorator --------------------------------------------------------------------------


def _messages_waiting(request: HttpRequest) -> bool:
    storage = getattr(request, "_messages", None)
    return storage is not None and len(storage) > 0


def _cacheable_request(request: HttpRequest) -> bool:
    return (
        request.method == "GET"
        and "HX-Request" not in request.headers
        and not _messages_waiting(request)
    )


def refuse(request: HttpRequest) -> None:
    """The view's way to say this rendering must not be cached (it shows what the key does
    not name); the page is still filled in and served."""
    request.page_cache_refused = True


def _cacheable_response(request: HttpRequest, response: HttpResponse) -> bool:
    return (
        not getattr(request, "page_cache_refused", False)
        and response.status_code == 200
        and not response.streaming
        and not response.cookies
        and response.get("Content-Type", "").startswith("text/html")
        and not getattr(request, "real_csrf_token_used", False)
        and not _messages_waiting(request)
    )


def cached_page(
    *,
    key: Callable[..., PageKey | None],
    overlay: Callable[[HttpRequest, str, Any], str] | None = None,
    seconds: int = PAGE_SECONDS,
    private: bool = False,
) -> Callable:
    """Serve the view's page from the cache. `key(request, *args, **kwargs)` names what the
    page shows (None: not cached for this request, e.g. a moderator's page); `overlay(request,
    html, state)` fills in the view's own per-viewer markers. `private`: one fan's own page
    (its key names the fan), kept apart from the shared pages in this process."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        name = f"{view.__module__}.{view.__qualname__}"
        store = _private if private else _local

        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not _cacheable_request(request):
                return view(request, *args, **kwargs)
            page_key = key(request, *args, **kwargs)
            if page_key is None:
                return view(request, *args, **kwargs)
            viewer = "member" if request.user.is_authenticated else "visitor"
            cache_key = ":".join(
                [
                    "page",
                    name,
                    viewer,
                    get_language() or "",
                    digest(request.get_full_path(), *page_key.parts),
                ]
            )
            entry = _entry_get(cache_key, store)
            if entry is None:
                response = _render(request, view, args, kwargs, page_key.state)
                if response.streaming:
                    return response
                html = response.content.decode(response.charset)
                if _cacheable_response(request, response):
                    entry = (time.time() + seconds, html, response["Content-Type"])
                    cache.set(cache_key, entry, seconds)
                    _local_set(cache_key, entry, store)
            else:
                _, html, content_type = entry
                response = HttpResponse(content_type=content_type)
            if overlay is not None:
                html = overlay(request, html, page_key.state)
            response.content = _fill(request, html)
            return response

        return wrapper

    return decorator


def page_state(request: HttpRequest) -> Any:
    """What the page's key function read (`PageKey.state`), for the view it renders, so a
    miss reads it once; None outside a rendering for the cache."""
    return getattr(request, "page_cache_state", None)


def _render(
    request: HttpRequest, view: Callable, args: tuple, kwargs: dict, state: Any
) -> HttpResponse:
    """The view's response rendered for the cache. Django's own CSRF flag is set aside
    meanwhile, so that a real token asked for by the page shows (`_cacheable_response`)."""
    request.page_cache_render = True
    request.page_cache_state = state
    request._page_csrf_token = csrf_sentinel()
    needs_update = request.META.pop("CSRF_COOKIE_NEEDS_UPDATE", None)
    try:
        response = view(request, *args, **kwargs)
        if hasattr(response, "render") and not response.is_rendered:
            response.render()
        return response
    finally:
        del request.page_cache_render, request.page_cache_state
        del request._page_csrf_token
        request.real_csrf_token_used = bool(request.META.get("CSRF_COOKIE_NEEDS_UPDATE"))
        if needs_update:
            request.META["CSRF_COOKIE_NEEDS_UPDATE"] = needs_update
