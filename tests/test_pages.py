import pytest
from django.db import connection
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import BrandFactory, UserFactory

pytestmark = pytest.mark.django_db

SECTIONS = [
    ("preorders:index", "/preorders/", "No pre-order batches are open"),
    ("crowdfunding:index", "/campaigns/", "No campaigns are live"),
]


def test_home_for_a_visitor_offers_sign_in_and_join(client):
    response = client.get("/")
    content = response.content.decode()
    assert response.status_code == 200
    assert "Where fans shape what gets made" in content
    assert f'href="{reverse("account_login")}"' in content
    assert f'href="{reverse("account_signup")}"' in content
    assert "Sign out" not in content
    for path in ["/c/", "/products/", "/preorders/", "/campaigns/"]:
        assert f'href="{path}"' in content
    assert "/static/vendor/htmx.min.js" in content  # served locally, no CDN
    assert "<script>" not in content  # no inline scripts (CSP-ready)


def test_home_for_a_member_shows_the_account_menu(client):
    user = UserFactory(display_name="Kenji", is_staff=False)
    client.force_login(user)
    content = client.get("/").content.decode()
    assert "Kenji" in content
    assert "Sign out" in content
    assert reverse("notifications:index") in content
    assert reverse("accounts:profile") in content
    assert reverse("admin:index") not in content  # only staff see the admin link


def test_staff_see_the_admin_link(client):
    client.force_login(UserFactory(is_staff=True))
    assert reverse("admin:index") in client.get("/").content.decode()


@pytest.mark.parametrize("name, path, empty", SECTIONS)
def test_section_pages_show_their_empty_state(client, name, path, empty):
    assert reverse(name) == path
    response = client.get(path)
    assert response.status_code == 200
    assert empty in response.content.decode()
    assert 'aria-current="page"' in response.content.decode()


def test_notifications_need_sign_in(client, user):
    assert client.get("/notifications/").status_code == 302
    client.force_login(user)
    assert client.get("/notifications/").status_code == 200


def test_unknown_page_is_a_friendly_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert b"Fanhub" in response.content
    assert b'href="/"' in response.content


def test_500_page_renders_without_any_context():
    html = render_to_string("500.html")
    assert "Something went wrong" in html


def test_brand_page(client):
    brand = BrandFactory(name="Nimbus Mobile", slug="nimbus", story="Phones by fans.")
    response = client.get(brand.get_absolute_url())
    assert response.status_code == 200
    assert b"Nimbus Mobile" in response.content
    assert b"Phones by fans." in response.content
    assert client.get("/brands/unknown/").status_code == 404


def test_home_query_counts(client):
    with CaptureQueriesContext(connection) as anonymous:
        client.get("/")
    assert len(anonymous) == 2  # the featured communities, the open pre-order batches
    client.force_login(UserFactory())
    with CaptureQueriesContext(connection) as member:
        client.get("/")
    assert len(member) == 4  # + the user row and the cart count (sessions live in Redis)
