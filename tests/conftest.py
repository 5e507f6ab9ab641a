import threading
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.cache import caches
from django.db import connections

from config.page_cache import page_cache_forget
from preorders.intake import receipts_flush_wait
from tests.factories import (
    TEST_PASSWORD,
    BrandFactory,
    ProductFactory,
    UserFactory,
    VariantFactory,
)
from tests.stripe_server import LocalStripe

_thread_run = threading.Thread.run


def _run_then_close_connections(self: threading.Thread) -> None:
    """Every thread a test starts (its concurrent clients, the intake's leaders, the live
    server's) closes its database connections when it ends. Django closes a request's
    connection only once CONN_MAX_AGE has passed, so each finished thread would keep one
    open until the worker exits: two workers' concurrency tests reached PostgreSQL's 100."""
    try:
        _thread_run(self)
    finally:
        connections.close_all()


threading.Thread.run = _run_then_close_connections


@pytest.fixture(autouse=True)
def _clean_caches():
    """Rate-limit counters and sessions live in Redis; every test starts from empty."""
    for alias in ("default", "sessions"):
        caches[alias].delete_pattern("*")  # this worker's key prefix only
    page_cache_forget()  # and this process's copies of cached pages
    # A transactional test's flush recreates the content types with new ids; a request the
    # browser journeys' live server answered meanwhile may have cached an old one.
    ContentType.objects.clear_cache()
    yield
    # Receipts a test's intake handed to the broker's flusher thread go out in that test
    # (after a real-queue fixture, at once): never in the next one, against its state.
    receipts_flush_wait()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def password():
    return TEST_PASSWORD


@pytest.fixture
def user_client(client, user):
    client.force_login(user)
    return client


@pytest.fixture(scope="session")
def localstripe():
    """A localstripe server for this test process (tests/stripe_server.py)."""
    server = LocalStripe.start()
    yield server
    server.stop()


@pytest.fixture
def shop(db):
    """A brand's phone in two colours: Black at $500 (5 in stock), White at $40 (3)."""
    brand = BrandFactory(name="Nimbus", slug="nimbus")
    phone = ProductFactory(name="Nimbus X2", slug="x2", brand=brand)
    black = VariantFactory(
        product=phone, sku="X2-BLK", price=Decimal("500.00"), stock=5, options={"colour": "Black"}
    )
    white = VariantFactory(
        product=phone, sku="X2-WHT", price=Decimal("40.00"), stock=3, options={"colour": "White"}
    )
    return {"brand": brand, "product": phone, "black": black, "white": white}
