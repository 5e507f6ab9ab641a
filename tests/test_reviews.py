import re
import threading
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from catalog.models import Product
from reviews.models import Review, WishlistItem
from reviews.services import REPORTS_TO_AUTO_HIDE, review_report, review_set_hidden
from tests.factories import ProductFactory, ReviewFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def product():
    return ProductFactory(name="Forge Buds", slug="buds")


def _rating(product) -> tuple[Decimal, int]:
    product.refresh_from_db()
    return product.rating_average, product.rating_count


def test_average_is_kept_on_create_edit_and_delete(client, product):
    ReviewFactory(product=product, rating=5)
    ReviewFactory(product=product, rating=2)
    assert _rating(product) == (Decimal("3.50"), 2)

    fan = UserFactory()
    client.force_login(fan)
    client.post(reverse("reviews:submit", args=["buds"]), {"rating": "4", "body": "Nice"})
    assert _rating(product) == (Decimal("3.67"), 3)
    # Posting again edits the same review: still one per user.
    client.post(reverse("reviews:submit", args=["buds"]), {"rating": "1", "body": "Broke"})
    assert Review.objects.filter(product=product, user=fan).count() == 1
    assert _rating(product) == (Decimal("2.67"), 3)

    review = Review.objects.get(user=fan)
    client.post(reverse("reviews:delete", args=[review.pk]))
    assert _rating(product) == (Decimal("3.50"), 2)


def test_only_the_author_can_delete(client, product):
    review = ReviewFactory(product=product)
    client.force_login(UserFactory())
    assert client.post(reverse("reviews:delete", args=[review.pk])).status_code == 404
    assert Review.objects.filter(pk=review.pk).exists()


def test_reviewing_needs_sign_in_and_a_valid_rating(client, product):
    response = client.post(reverse("reviews:submit", args=["buds"]), {"rating": "5"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    client.force_login(UserFactory())
    for bad in ["0", "6", "five", ""]:
        client.post(reverse("reviews:submit", args=["buds"]), {"rating": bad})
    assert not Review.objects.exists()
    assert client.get(reverse("reviews:submit", args=["buds"])).status_code == 405


def test_review_text_is_inert_on_the_product_page(client, product):
    ReviewFactory(
        product=product, title="<script>alert(1)</script>", body="<img src=x onerror=alert(1)>"
    )
    content = client.get(product.get_absolute_url()).content.decode()
    assert "<script>alert(1)</script>" not in content
    assert "<img src=x onerror" not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content


def test_hidden_reviews_leave_the_page_and_the_average(client, product):
    good = ReviewFactory(product=product, rating=5, title="Love it")
    bad = ReviewFactory(product=product, rating=1, title="Spam spam")
    review_set_hidden(review_ids=[bad.pk], hidden=True)
    assert _rating(product) == (Decimal("5.00"), 1)
    content = client.get(product.get_absolute_url()).content.decode()
    assert "Love it" in content and "Spam spam" not in content
    review_set_hidden(review_ids=[bad.pk], hidden=False)
    assert _rating(product) == (Decimal("3.00"), 2)
    assert good.pk


def test_reports_from_several_members_hide_a_review(product):
    review = ReviewFactory(product=product, rating=1)
    for _ in range(REPORTS_TO_AUTO_HIDE - 1):
        review_report(review=review, reporter=UserFactory(), reason="spam")
    review.refresh_from_db()
    assert not review.is_hidden
    reporter = UserFactory()
    review_report(review=review, reporter=reporter, reason="spam")
    review_report(review=review, reporter=reporter, reason="again")  # counted once
    review.refresh_from_db()
    assert review.is_hidden and review.report_count == REPORTS_TO_AUTO_HIDE
    assert _rating(product) == (Decimal("0.00"), 0)


def test_authors_cannot_report_their_own_review(client, product):
    review = ReviewFactory(product=product)
    client.force_login(review.user)
    client.post(reverse("reviews:report", args=[review.pk]), {"reason": "mine"})
    review.refresh_from_db()
    assert review.report_count == 0


def test_wishlist_toggle_and_page(client, product):
    other = ProductFactory(name="Forge Studio", slug="studio")
    fan = UserFactory()
    client.force_login(fan)
    response = client.post(
        reverse("reviews:wishlist_toggle", args=[product.pk]), HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and "<html" not in response.content.decode()
    assert WishlistItem.objects.filter(user=fan, product=product).exists()
    page = client.get("/wishlist/")
    assert [p.name for p in page.context["products"]] == ["Forge Buds"]
    client.post(reverse("reviews:wishlist_toggle", args=[product.pk]))
    assert not WishlistItem.objects.filter(user=fan).exists()
    # Someone else's wishlist is theirs alone.
    WishlistItem.objects.create(user=UserFactory(), product=other)
    assert list(client.get("/wishlist/").context["products"]) == []


def test_wishlist_needs_sign_in_and_post(client, product):
    assert client.get("/wishlist/").status_code == 302
    client.force_login(UserFactory())
    assert client.get(reverse("reviews:wishlist_toggle", args=[product.pk])).status_code == 405


@pytest.mark.django_db(transaction=True)
def test_concurrent_reviews_keep_an_exact_average():
    """Eight members review the same product at once, on real Postgres transactions."""
    product = ProductFactory()
    users = [UserFactory() for _ in range(8)]
    barrier = threading.Barrier(len(users))
    errors = []

    def review(user, rating):
        try:
            barrier.wait()
            ReviewFactory(product=Product.objects.get(pk=product.pk), user=user, rating=rating)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=review, args=(user, n % 5 + 1)) for n, user in enumerate(users)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    ratings = [n % 5 + 1 for n in range(8)]
    assert _rating(product) == (
        (Decimal(sum(ratings)) / len(ratings)).quantize(Decimal("0.01"), ROUND_HALF_UP),
        len(ratings),
    )


def _reviews_part(client, product) -> tuple[str, int]:
    with CaptureQueriesContext(connection) as queries:
        page = client.get(product.get_absolute_url()).content.decode()
    part = page[page.index('class="reviews-list-wrap"') : page.index('class="review-compose"')]
    return part, len(queries)


def test_the_cached_review_list_shows_each_change_on_the_next_request(
    client, product, django_capture_on_commit_callbacks
):
    first = ReviewFactory(product=product, title="Sounds great")
    fan, other = UserFactory(), UserFactory()
    part, cold = _reviews_part(client, product)
    assert "Sounds great" in part and "review-report" not in part  # visitors: no forms
    # The list is cached, and the product's id (the page's key: it has no variant in stock,
    # so the page itself is rendered each time).
    assert _reviews_part(client, product)[1] == cold - 2
    client.force_login(fan)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("reviews:submit", args=["buds"]), {"rating": "4", "title": "Mine"})
    part, _ = _reviews_part(client, product)  # the fan's next request shows it
    mine = Review.objects.get(user=fan)
    own = part[part.index(f'id="review-{mine.pk}"') :]
    assert "Mine" in own and "Your review</span>" in own
    assert f"/reviews/{mine.pk}/report/" not in part  # no report form for one's own
    assert f"/reviews/{first.pk}/report/" in part and "<!--fh:" not in part
    token = re.search(r'name="csrfmiddlewaretoken" value="(\w+)"', part)[1]
    client.force_login(other)  # the same cached list: their own badge, not the fan's
    part, _ = _reviews_part(client, product)
    assert "Your review" not in part and f"/reviews/{mine.pk}/report/" in part
    assert token not in part  # each page its own CSRF token
    with django_capture_on_commit_callbacks(execute=True):
        review_set_hidden(review_ids=[first.pk], hidden=True)
    assert "Sounds great" not in _reviews_part(client, product)[0]
