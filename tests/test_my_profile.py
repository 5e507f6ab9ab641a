"""A fan's own profile shows what they did across every brand: their latest orders,
pre-orders, pledges and posts, and their level and points in each community with the way to
the next level; only their own, at a fixed number of queries."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from communities.models import Community
from communities.services import community_join, post_create
from formatting.templatetags.formats import money
from tests.console import paid_order
from tests.crowdfunding import campaign_live, pledge
from tests.factories import BrandFactory, ProductFactory, UserFactory
from tests.preorders import batch_open, reserve

pytestmark = pytest.mark.django_db

URL = "/account/summary/"


@pytest.fixture(autouse=True)
def _roomy_rate_limits(settings):
    settings.COMMUNITY_RATE_LIMITS = {"post": (100, 100), "comment": (100, 100)}


def _activity(fan, *, tag: str, price: str):
    """One of everything for `fan` with a brand of their own: an order, a reservation, a
    pledge and a post in the brand's club."""
    brand = BrandFactory(name=f"Brand {tag}")
    club = Community.objects.create(
        name=f"{tag} fans", slug=f"{tag.lower()}-fans", kind="brand", brand=brand
    )
    community_join(community=club, user=fan)
    order, _ = paid_order(brand, price=Decimal(price), buyer=fan)
    batch = batch_open(product=ProductFactory(brand=brand, name=f"{tag} phone"))
    reserve(batch=batch, user=fan, quantity=2)
    campaign = campaign_live(brand=brand)
    pledge(campaign=campaign, user=fan, amount="25.00")
    post = post_create(community=club, author=fan, title=f"Post by {tag}", body="Hello")
    return order, batch, campaign, post


def test_the_profile_loads_the_summary(client):
    fan = UserFactory()
    client.force_login(fan)
    assert f'hx-get="{URL}"' in client.get("/accounts/profile/").content.decode()
    assert reverse("storefront:my_summary") == URL


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get(URL)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_empty_states(client):
    client.force_login(UserFactory())
    html = client.get(URL).content.decode()
    for text in ("No orders yet.", "No pre-orders yet.", "No pledges yet.", "No posts yet."):
        assert text in html
    assert "You have not joined a community yet." in html


def test_the_fan_sees_their_own_activity_across_brands_and_nobody_elses(client):
    fan, other = UserFactory(), UserFactory()
    mine_a = _activity(fan, tag="Alpha", price="120.00")
    mine_b = _activity(fan, tag="Beta", price="80.00")
    theirs = _activity(other, tag="Gamma", price="999.00")
    client.force_login(fan)
    html = client.get(URL).content.decode()
    for order, batch, campaign, post in (mine_a, mine_b):
        assert order.get_absolute_url() in html and order.number in html
        assert money(order.total, order.currency) in html  # with shipping
        assert batch.title in html and campaign.title in html and post.title in html
    assert html.count("Paid") >= 2  # the orders' status
    assert "Reserved" in html  # the reservations' status
    assert "$25.00" in html
    order, batch, campaign, post = theirs
    assert order.number not in html and money(order.total, order.currency) not in html
    assert batch.title not in html and campaign.title not in html and post.title not in html
    assert "Gamma fans" not in html


def test_levels_and_progress_to_the_next_level(client):
    fan = UserFactory()
    brand = BrandFactory()
    club = Community.objects.create(name="Nimbus Fans", slug="nimbus-fans", brand=brand)
    community_join(community=club, user=fan)
    post_create(community=club, author=fan, title="Hi", body="x")  # 5 points, Lv2 at 10
    client.force_login(fan)
    html = client.get(URL).content.decode()
    assert "Nimbus Fans" in html and "Lv1" in html and "5 points" in html
    assert "5 points to Lv2" in html and 'value="50"' in html
    assert "First post" in html


def test_a_post_hidden_by_a_moderator_is_marked_and_a_deleted_one_left_out(client):
    fan = UserFactory()
    club = Community.objects.create(name="Club", slug="club", brand=BrandFactory())
    community_join(community=club, user=fan)
    hidden = post_create(community=club, author=fan, title="Hidden one", body="x")
    deleted = post_create(community=club, author=fan, title="Deleted one", body="x")
    type(hidden).objects.filter(pk=hidden.pk).update(hidden_at=timezone.now())
    type(deleted).objects.filter(pk=deleted.pk).update(deleted_at=timezone.now())
    client.force_login(fan)
    html = client.get(URL).content.decode()
    assert "Hidden one" in html and "Hidden by a moderator" in html
    assert hidden.get_absolute_url() not in html
    assert "Deleted one" not in html


def test_the_query_count_is_fixed(client):
    fan = UserFactory()
    _activity(fan, tag="Alpha", price="120.00")
    client.force_login(fan)
    client.get(URL)  # warm whatever the layout caches
    with CaptureQueriesContext(connection) as first:
        assert client.get(URL).status_code == 200
    for tag in ("Beta", "Delta", "Omega"):
        _activity(fan, tag=tag, price="50.00")
    with CaptureQueriesContext(connection) as more:
        html = client.get(URL).content.decode()
    assert "Post by Omega" in html
    # orders, reservations, pledges, posts; memberships, badges (the session and the user
    # are cached)
    assert len(first) == len(more) == 6, [q["sql"] for q in more.captured_queries]
