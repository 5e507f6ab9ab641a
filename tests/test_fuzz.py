"""Hostile input never answers 500.

Every URL pattern the resolver knows is requested, signed in as a fan (the owner of every
object in test_security's `world`) and as the brand's operator: each GET page with generated
values for its query parameters, each form (found in the rendered pages, by its action) with
generated values for its fields, and each object URL with generated values in its path. The
values come from hypothesis, derandomized so that CI always sends the same requests."""

import re
from html.parser import HTMLParser
from urllib.parse import quote, urlencode, urlsplit

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import Resolver404, resolve
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from communities.ideas import idea_create
from communities.moderation import report_create
from communities.polls import poll_create
from communities.services import post_create
from orders.models import Cart
from orders.services import cart_add
from storefront.demo import OPERATOR_PERMISSIONS
from tests.factories import UserFactory
from tests.test_security import (
    NOT_OBJECT_URLS,
    SWEEP,
    _ids,
    _patterns,
    world,  # noqa: F401 - the fixture fuzz_world builds on
)

pytestmark = pytest.mark.django_db

# Parameters some views read without a form naming them.
KNOWN_QUERY = [
    *("page", "q", "after", "variant", "option", "quantity", "sort", "part", "report", "status"),
    *("o", "p", "e"),  # the admin's changelist ordering, page and error flag
]
KNOWN_FORM = ["variant", "quantity", "option", "comment", "report", "next", "status", "reason"]

# Values that broke something somewhere once, and the shapes parsers trip on.
NASTY = [
    "",
    "0",
    "-1",
    "11",
    "abc",
    "1.5",
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "²",
    "٣",
    "9" * 40,
    "x" * 3000,
    "2026-02-30T10:00:00|1",
    "2026-01-01T10:00:00|abc",
    "|",
    "ZZ",
    "Germany",
    "\u202eevil",
    "a\x00b",
    "line\nbreak",
    "<script>",
    "'; select 1; --",
    "%00",
    "../../etc/passwd",
    "[]",
    '{"a": 1}',
]
VALUES = st.one_of(
    st.sampled_from(NASTY),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(max_size=30),
)
# A cheap bound: each case below gets this many generated requests per user.
EXAMPLES = 8
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)

# 500s the walk finds in code other engineers own, not listed in issue 13: (method, URL
# name). Each has its own xfail test below, which fails (strict) once it is fixed.
KNOWN_FAILURES: set[tuple[str, str]] = set()  # (method, URL name) of a 500 being fixed


class _Forms(HTMLParser):
    """The POST forms of a page: action -> the names of their inputs."""

    def __init__(self, page_url: str) -> None:
        super().__init__()
        self.page_url = page_url
        self.forms: dict[str, set[str]] = {}
        self._current: set[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "form":
            if (attributes.get("method") or "get").lower() == "post":
                action = urlsplit(attributes.get("action") or self.page_url).path
                self._current = self.forms.setdefault(action, set())
            else:
                self._current = None
        elif (
            tag in {"input", "select", "textarea", "button"}
            and self._current is not None
            and attributes.get("name") not in {None, "csrfmiddlewaretoken"}
        ):
            self._current.add(attributes["name"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


@pytest.fixture
def fuzz_world(world):  # noqa: F811 - test_security's world, and more to fill the forms
    """The security sweep's objects (owned by one fan), plus what more forms need: an idea, a
    poll, a report in the moderation queue, a cart with a line, and the brand's operator."""
    owner, community = world["owner"], world["community"]
    idea_create(community=community, author=owner, title="A compact X3", description="Small")
    poll_post = post_create(
        community=community, author=owner, title="Colour?", body="Vote", rate_limited=False
    )
    poll_create(post=poll_post, question="Which colour?", options=["Sunset", "Glacier"])
    report_create(reporter=owner, reason="Spam", comment=world["comment"])
    cart_add(cart=Cart.objects.get_or_create(user=owner)[0], variant=world["variant"], quantity=1)
    operator = UserFactory(is_staff=True)
    for app_label, codenames in OPERATOR_PERMISSIONS.items():
        operator.user_permissions.add(
            *Permission.objects.filter(content_type__app_label=app_label, codename__in=codenames)
        )
    world["product"].brand.operators.add(operator)
    cart_add(cart=Cart.objects.create(user=operator), variant=world["variant"], quantity=1)
    return {**world, "operator": operator}


def _site_urls(objects) -> tuple[list[str], list[str]]:
    """(GET pages, POST-only URLs) of the site, from the resolver and the access sweep."""
    ids = _ids(objects)
    gets, posts = [], []
    for name, pattern in _patterns():
        if name.startswith("admin:") or name in NOT_OBJECT_URLS:
            continue
        route = str(pattern.pattern)
        if re.search(r"<[^>]+>", route):
            if name not in SWEEP:
                continue  # test_the_sweep_covers_every_url_with_arguments asks for it
            method, url, _ = SWEEP[name]
            (gets if method == "GET" else posts).append(url.format(**ids))
        else:
            gets.append("/" + route.lstrip("^").rstrip("$"))
    return sorted(set(gets)), sorted(set(posts))


def _admin_pages(objects) -> list[str]:
    """The operator's admin lists and the change pages of the world's objects."""
    pages = ["/admin/"]
    for name, pattern in _patterns():
        if name.startswith("admin:") and name.endswith("_changelist"):
            app_model = name.removeprefix("admin:").removesuffix("_changelist")
            app, model = app_model.split("_", 1)
            pages.append(f"/admin/{app}/{model}/")
    order, batch = objects["order"], objects["batch"]
    pages += [
        f"/admin/orders/order/{order.pk}/change/",
        f"/admin/preorders/preorderbatch/{batch.pk}/change/",
        f"/admin/catalog/product/{objects['product'].pk}/change/",
    ]
    for operation in ("ship", "deliver", "refund", "cancel"):
        pages.append(f"/admin/orders/order/{order.pk}/operate/{operation}/")
    for operation in ("close", "cancel"):
        pages.append(f"/admin/preorders/preorderbatch/{batch.pk}/operate/{operation}/")
    return pages


class _Requests:
    """Sends the requests and keeps the first failure of each (method, path): the view's
    exception (the test client re-raises it) or a 5xx answer."""

    def __init__(self) -> None:
        self.sent = 0
        self.failures: dict[tuple[str, str], str] = {}

    def send(self, client: Client, method: str, url: str, data: dict | None = None) -> None:
        self.sent += 1
        path = urlsplit(url).path
        try:
            key = (method, resolve(path).view_name)
        except Resolver404:
            key = (method, path)
        try:
            response = getattr(client, method.lower())(url, data or {})
        except Exception as exc:  # noqa: BLE001 - what the server would answer 500 for
            self.failures.setdefault(key, f"{url} {data!r}: {type(exc).__name__}: {exc}"[:500])
        else:
            if response.status_code >= 500:
                self.failures.setdefault(key, f"{url} {data!r}: {response.status_code}")

    def fuzz_get(self, client: Client, url: str, names: list[str]) -> None:
        @FUZZ
        @given(st.fixed_dictionaries({}, optional={name: VALUES for name in names}))
        def run(params: dict[str, str]) -> None:
            self.send(client, "GET", f"{url}?{urlencode(params)}")

        run()

    def fuzz_post(self, client: Client, url: str, names: list[str]) -> None:
        @FUZZ
        @given(st.fixed_dictionaries({}, optional={name: VALUES for name in names}))
        def run(data: dict[str, str]) -> None:
            self.send(client, "POST", url, data)

        run()

    def fuzz_path(self, client: Client, method: str, template: str) -> None:
        names = re.findall(r"{(\w+)}", template)

        @FUZZ
        @given(st.fixed_dictionaries({name: VALUES.filter(bool) for name in names}))
        def run(values: dict[str, str]) -> None:
            url = template.format(**{k: quote(v, safe="") for k, v in values.items()})
            self.send(client, method, url)

        run()


def test_no_input_answers_500(fuzz_world):
    fan, operator = Client(), Client()
    fan.force_login(fuzz_world["owner"])
    operator.force_login(fuzz_world["operator"])
    gets, posts = _site_urls(fuzz_world)
    requests = _Requests()
    # The fan walks the site; the operator the admin (on the site an operator is a fan too).
    found = 0
    for browser, pages, posted in ((fan, gets, posts), (operator, _admin_pages(fuzz_world), [])):
        forms: dict[str, set[str]] = {url: set() for url in posted}
        for url in pages:
            response = browser.get(url)
            assert response.status_code < 500, url
            if response.status_code != 200:
                continue  # a redirect, 403 or 404 reads no parameters
            if response.get("Content-Type", "").startswith("text/html"):
                parser = _Forms(url)
                parser.feed(response.content.decode())
                for action, names in parser.forms.items():
                    forms.setdefault(action, set()).update(names)
            requests.fuzz_get(browser, url, KNOWN_QUERY)
        found += len(forms)
        # Destructive forms (delete, cancel, leave) last, so the pages above saw the objects;
        # signing out would end the walk, and the webhook takes signed raw bodies only.
        for action in sorted(forms, key=lambda a: (bool(re.search("delete|cancel|leave", a)), a)):
            if "logout" not in action and not action.startswith("/payments/stripe/"):
                requests.fuzz_post(browser, action, sorted(forms[action] | set(KNOWN_FORM)))
    for method, template, _ in SWEEP.values():
        if "{" in template:
            requests.fuzz_path(fan, method, template)
    failures = {k: v for k, v in requests.failures.items() if k not in KNOWN_FAILURES}
    assert failures == {}, "\n".join(failures.values())
    assert requests.sent > 400 and found > 50  # the walk reached the site


def test_a_like_with_a_next_that_is_not_a_path(fuzz_world):
    client = Client()
    client.force_login(fuzz_world["owner"])
    url = f"/c/secret/posts/{fuzz_world['post'].pk}/like/"
    assert client.post(url, {"next": "4945"}).status_code == 302


def test_a_wishlist_toggle_with_a_next_that_is_not_a_path(fuzz_world):
    client = Client()
    client.force_login(fuzz_world["owner"])
    url = f"/wishlist/{fuzz_world['product'].pk}/toggle/"
    response = client.post(url, {"next": "4945"})
    assert (response.status_code, response["Location"]) == (302, "4945")
    response = client.post(url, {"next": "https://evil.example/"})
    assert response["Location"] == "/products/x2/"
