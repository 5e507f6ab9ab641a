import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.cache import caches

from config.page_cache import page_cache_forget
from tests.factories import TEST_PASSWORD, UserFactory
from tests.stripe_server import LocalStripe


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
