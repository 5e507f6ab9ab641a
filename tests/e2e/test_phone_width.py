"""Pages a fan opens first never scroll sideways at phone width (found: the sign-up form's
hidden honeypot field sat 99,999 px to the right and made the page 100,000 px wide)."""

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

PAGES = ["/accounts/signup/", "/accounts/login/", "/", "/products/", "/c/", "/help/"]


def test_no_page_is_wider_than_the_phone(live_server, page):
    for path in PAGES:
        page.goto(f"{live_server.url}{path}")
        scroll, client = page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert scroll <= client, f"{path} is {scroll} px wide in a {client} px window"
