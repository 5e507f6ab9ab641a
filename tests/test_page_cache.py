"""Whole pages served from the cache (config.page_cache): one rendering per class of viewer,
each viewer's own parts filled in, nothing stale, nobody else's token or name."""

import re

from django.contrib.messages import get_messages
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from communities.models import Membership
from orders.models import Cart
from orders.services import cart_add
from tests.factories import ProductFactory, UserFactory, VariantFactory
from tests.test_communities import _community, _member, _visitor_feed


def _token(html: str) -> str:
    return re.search(r'<meta name="csrf-token" content="(\w+)">', html)[1]


def _home(client) -> tuple[str, int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/")
    assert response.status_code == 200
    return response.content.decode(), len(queries)


def test_visitors_get_the_cached_page_with_a_token_of_their_own(db):
    first, second = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    one, _ = _home(first)
    two, queries = _home(second)
    assert queries == 0 and cache.keys("page:*")
    assert "fhcsrf" not in one and "fhcsrf" not in two and "<!--fh:" not in two
    assert _token(one) != _token(two)
    # the token works with the cookie the cached page set (a real one, not the renderer's)
    signed_out = second.post("/accounts/logout/", {"csrfmiddlewaretoken": _token(two)})
    assert signed_out.status_code != 403
    third = Client(enforce_csrf_checks=True)
    _home(third)
    refused = third.post("/accounts/logout/", {"csrfmiddlewaretoken": _token(one)})
    assert refused.status_code == 403  # another visitor's token is not theirs


def test_members_share_a_rendering_and_see_only_their_own_header(client, db):
    lin = UserFactory(display_name="Lin Zhou", email="lin@example.com")
    ada = UserFactory(display_name="Ada Park", email="ada@example.com")
    client.force_login(lin)
    page, cold = _home(client)
    assert "Lin Zhou" in page and "lin@example.com" in page and "Join Fanhub" not in page
    client.force_login(ada)
    page, warm = _home(client)
    assert "Ada Park" in page and "ada@example.com" in page
    assert "Lin Zhou" not in page and "lin@example.com" not in page
    assert warm == 2 and warm < cold  # the user row and the cart count
    assert len(cache.keys("page:*")) == 1  # one members' rendering, no one's data in it
    (html,) = [cache.get(key)[1] for key in cache.keys("page:*")]
    assert "Lin Zhou" not in html and "Ada Park" not in html and "<!--fh:hole:account-->" in html
    client.logout()
    visitor, _ = _home(client)
    assert "Join Fanhub" in visitor and "Ada Park" not in visitor


def test_a_cart_add_shows_in_the_header_on_the_next_request(
    client, db, django_capture_on_commit_callbacks
):
    fan = UserFactory()
    client.force_login(fan)
    assert "badge-cart" not in _home(client)[0]
    with django_capture_on_commit_callbacks(execute=True):
        cart_add(cart=Cart.objects.create(user=fan), variant=VariantFactory(), quantity=2)
    page, _ = _home(client)
    assert '<span class="badge badge-count badge-cart" aria-hidden="true">2</span>' in page
    client.force_login(UserFactory())
    assert "badge-cart" not in _home(client)[0]  # the count is theirs, not in the rendering


def test_a_page_with_a_flash_message_is_neither_cached_nor_served_from_the_cache(client, db):
    fan = UserFactory()
    client.force_login(fan)
    _home(client)  # cached
    response = client.post("/cart/add/", {"variant": "0"})  # "Choose an available option"
    assert response.status_code == 302
    page, _ = _home(client)
    assert "Choose an available option first." in page
    again, _ = _home(client)
    assert "Choose an available option first." not in again  # shown once, never cached
    assert not list(get_messages(client.get("/").wsgi_request))


def test_the_language_is_part_of_the_key(client, db):
    _home(client)
    assert client.get("/", HTTP_ACCEPT_LANGUAGE="zh-hans").status_code == 200
    keys = sorted(key.split(":")[3] for key in cache.keys("page:*"))
    assert keys == ["en", "zh-hans"]  # one rendering per language


def test_one_member_never_sees_another_members_standing_or_likes(
    client, db, django_capture_on_commit_callbacks
):
    community = _community()
    fan, other = _member(community), _member(community)
    Membership.objects.filter(user=fan).update(points=41)
    Membership.objects.filter(user=other).update(points=7)
    client.force_login(fan)
    html, _ = _visitor_feed(client)
    assert "41 points" in html
    client.force_login(other)
    html, _ = _visitor_feed(client)
    assert "7 points" in html and "41 points" not in html and fan.display_name not in html
    assert "<!--fh:" not in html


def test_a_moderator_page_is_rendered_for_them(client, db):
    community = _community()
    owner = _member(community, role="owner")
    client.force_login(owner)
    _visitor_feed(client)
    assert not cache.keys("page:*")


def test_a_listing_is_served_from_the_cache_until_the_catalogue_changes(
    client, db, django_capture_on_commit_callbacks
):
    ProductFactory(name="Forge Studio Headphones")
    with CaptureQueriesContext(connection) as cold:
        assert "Forge Studio" in client.get("/products/?q=studio").content.decode()
    with CaptureQueriesContext(connection) as warm:
        assert "Forge Studio" in client.get("/products/?q=studio").content.decode()
    assert len(cold) > 0 and len(warm) == 0
    with django_capture_on_commit_callbacks(execute=True):
        ProductFactory(name="Nimbus Studio Monitor")
    assert "Nimbus Studio Monitor" in client.get("/products/?q=studio").content.decode()
    client.force_login(UserFactory(display_name="Ada Park"))
    client.get("/products/?q=studio")  # rendered once for everyone signed in
    client.force_login(UserFactory(display_name="Lin Zhou"))
    with CaptureQueriesContext(connection) as member:
        page = client.get("/products/?q=studio").content.decode()
    assert "Lin Zhou" in page and "Ada Park" not in page and "Nimbus Studio Monitor" in page
    assert len(member) == 2  # the user row and the cart count


def _product_page(client, product) -> tuple[str, int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(product.get_absolute_url())
    assert response.status_code == 200
    return response.content.decode(), len(queries)


def test_a_product_page_follows_stock_reviews_and_the_wishlist_at_once(
    client, db, django_capture_on_commit_callbacks
):
    from catalog.services import variant_save

    variant = VariantFactory(stock=5, price="99.00")
    product = variant.product
    _product_page(client, product)
    html, warm = _product_page(client, product)
    assert warm == 0 and "$99.00" in html  # versions from the cache, the page too
    variant.price = "89.00"
    with django_capture_on_commit_callbacks(execute=True):
        variant_save(variant=variant, fields=["price"])
    assert "$89.00" in _product_page(client, product)[0]

    lin, ada = UserFactory(display_name="Lin Zhou"), UserFactory(display_name="Ada Park")
    client.force_login(lin)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/products/{product.slug}/review/", {"rating": 4, "title": "Warm sound"})
        client.post(f"/wishlist/{product.pk}/toggle/")
    _product_page(client, product)  # their flash message: rendered for them, not cached
    html, _ = _product_page(client, product)
    assert "Edit your review" in html and "Warm sound" in html and "Lin Zhou" in html
    assert "On your wishlist" in html
    client.force_login(ada)
    html, _ = _product_page(client, product)
    html, warm = _product_page(client, product)
    assert "Write a review" in html and "Edit your review" not in html
    assert "Add to wishlist" in html and "On your wishlist" not in html
    assert "Lin Zhou" in html  # as the review's author, not in the header
    assert "Ada Park" in html and warm == 0  # their marks are known, the user is cached


def test_a_product_out_of_stock_or_a_chosen_variant_is_rendered_each_time(client, db):
    empty = VariantFactory(stock=0).product
    chosen = VariantFactory(stock=3)
    for url in (
        empty.get_absolute_url(),
        f"{chosen.product.get_absolute_url()}?variant={chosen.pk}",
    ):
        assert client.get(url).status_code == 200
    assert not cache.keys("page:*")


def test_a_visitors_batch_page_shows_each_reservation_at_once(
    client, db, django_capture_on_commit_callbacks
):
    from tests.preorders import batch_open, reserve

    batch = batch_open(min_quantity=50, cap=100)
    url = batch.get_absolute_url()
    client.get(url)
    with CaptureQueriesContext(connection) as warm:
        before = client.get(url).content.decode()
    assert len(warm) == 0  # the batch's tokens name the cached page
    with django_capture_on_commit_callbacks(execute=True):  # its commit retires the token
        reserve(batch=batch, quantity=3)
    after = client.get(url).content.decode()
    assert '<span class="preorder-reserved">0</span>' in before
    assert '<span class="preorder-reserved">3</span>' in after
    fan = UserFactory()
    client.force_login(fan)
    client.get(url)
    assert len(cache.keys("page:*")) == 3  # the two visitors' renderings, the fans' one


def test_an_archived_or_renamed_product_is_not_served_from_the_cache(
    client, db, django_capture_on_commit_callbacks
):
    from catalog.models import ProductStatus
    from catalog.services import product_save, product_set_status

    product = VariantFactory(stock=2).product
    url = product.get_absolute_url()
    client.get(url)
    assert client.get(url).status_code == 200  # cached
    product.slug = "renamed"
    with django_capture_on_commit_callbacks(execute=True):
        product_save(product=product)
    assert client.get(url).status_code == 404
    assert client.get("/products/renamed/").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        product_set_status(product_ids=[product.pk], status=ProductStatus.ARCHIVED)
    assert client.get("/products/renamed/").status_code == 404


def test_a_join_shows_in_the_member_count_for_visitors_at_once(
    client, db, django_capture_on_commit_callbacks
):
    from communities.services import community_join

    community = _community()
    before, _ = _visitor_feed(client)
    assert '<span class="community-members muted small">0 members</span>' in before
    with django_capture_on_commit_callbacks(execute=True):
        community_join(community=community, user=UserFactory())
    after, _ = _visitor_feed(client)
    assert '<span class="community-members muted small">1 member</span>' in after
