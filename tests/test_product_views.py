"""Product page views for the funnel: the page adds one to a Redis counter (no database
write), the beat folds the counters into ProductViewDay rows, each view once."""

import time
from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_redis import get_redis_connection

from catalog.models import ProductStatus, ProductViewDay
from catalog.product_views import _prefix, product_view_count, product_views_flush
from tests.factories import ProductFactory, VariantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def clean_counters():
    client = get_redis_connection("default")
    for key in client.scan_iter(match=f"{_prefix()}:*"):
        client.delete(key)
    yield
    for key in client.scan_iter(match=f"{_prefix()}:*"):
        client.delete(key)


def test_views_are_counted_in_redis_and_folded_in_once(client):
    product = ProductFactory(status=ProductStatus.ACTIVE)
    VariantFactory(product=product)
    other = ProductFactory(status=ProductStatus.ACTIVE)
    for _ in range(3):
        assert client.get(product.get_absolute_url()).status_code == 200
    product_view_count(product_id=other.pk)
    with CaptureQueriesContext(connection) as page_queries:
        client.get(product.get_absolute_url())
    assert not any("productviewday" in q["sql"] for q in page_queries.captured_queries)
    assert product_views_flush() == 5
    today = ProductViewDay.objects.get(product=product).day
    assert isinstance(today, date)
    assert ProductViewDay.objects.get(product=product).views == 4
    assert ProductViewDay.objects.get(product=other).views == 1
    assert product_views_flush() == 0  # nothing counted twice
    product_view_count(product_id=product.pk)
    product_views_flush()
    assert ProductViewDay.objects.get(product=product, day=today).views == 5


def test_a_failed_write_is_folded_in_by_the_next_run(monkeypatch):
    product = ProductFactory()
    product_view_count(product_id=product.pk)
    product_view_count(product_id=999_999_999)  # a product deleted since: dropped
    import catalog.product_views as module

    def broken(*args, **kwargs):
        raise RuntimeError("database down")

    monkeypatch.setattr(module.transaction, "atomic", broken)
    with pytest.raises(RuntimeError):
        product_views_flush()
    monkeypatch.undo()
    assert product_views_flush() == 1
    assert ProductViewDay.objects.get(product=product).views == 1


def test_a_process_sends_its_views_at_most_once_a_second_in_one_round_trip(monkeypatch):
    import catalog.product_views as module

    product = ProductFactory()
    module.product_views_send()
    monkeypatch.setattr(module, "SEND_EVERY", 3600)  # nothing is due for an hour
    monkeypatch.setattr(module, "_sent_at", time.monotonic())
    redis = get_redis_connection("default")
    for _ in range(3):
        product_view_count(product_id=product.pk)
    assert not list(redis.scan_iter(match=f"{_prefix()}:*"))  # no round trip on the page
    monkeypatch.setattr(module, "SEND_EVERY", 0)
    product_view_count(product_id=product.pk)  # due: all four go in one pipeline
    (key,) = redis.scan_iter(match=f"{_prefix()}:*")
    assert redis.hgetall(key) == {str(product.pk).encode(): b"4"}
    assert product_views_flush() == 4
