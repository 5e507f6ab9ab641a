import pytest
from django.core.cache import cache
from django.core.cache.utils import make_template_fragment_key
from django.db import connection
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from config.page_cache import page_cache_forget
from tests.crowdfunding import campaign_live
from tests.factories import BrandFactory, ProductFactory, UserFactory
from tests.preorders import batch_open

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
    """The sections are one cached fragment, shared by visitors and members."""
    batch = batch_open(product=ProductFactory(name="Nimbus X3"))
    campaign = campaign_live(goal="100.00")
    with CaptureQueriesContext(connection) as cold:
        first = client.get("/").content.decode()
    # featured communities, open batches, their tiers, their pictures, live campaigns
    assert len(cold) == 5
    assert campaign.title in first and "0% funded" in first
    assert "75% funded" not in first and "+1,204 backers" not in first
    with CaptureQueriesContext(connection) as warm:
        again = client.get("/").content.decode()
    assert len(warm) == 0
    assert batch.title in first and batch.title in again
    client.force_login(UserFactory(display_name="Lin"))
    with CaptureQueriesContext(connection) as member:
        page = client.get("/").content.decode()
    assert len(member) == 2  # the user row and the cart count (sessions live in Redis)
    assert batch.title in page and "Lin" in page and "Join Fanhub" not in page


def test_home_sections_are_read_again_when_the_fragment_expires(client):
    client.get("/")
    later = batch_open(product=ProductFactory(name="Forge Studio"))
    assert later.title not in client.get("/").content.decode()  # the fragment is still fresh
    cache.delete(make_template_fragment_key("home_showcase"))  # what expiry does
    assert later.title not in client.get("/").content.decode()  # the whole page, as long again
    page_cache_forget()  # what its expiry does
    assert later.title in client.get("/").content.decode()
