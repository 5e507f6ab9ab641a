"""One money format and one date format (Babel, settings.STORE_LOCALE), in code and pages."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.template import Context, Template
from django.utils import timezone

from formatting.formats import day, money, when


def test_money_has_the_symbol_and_thousands_separators_of_the_store_locale(settings):
    assert money(Decimal("2397")) == "$2,397.00"
    assert money(Decimal("2397.5"), "EUR") == "€2,397.50"
    assert money(None) == ""
    settings.STORE_LOCALE = "en_GB"
    assert money(Decimal("2397")) == "US$2,397.00"


def test_dates_have_one_format_and_times_say_their_time_zone():
    moment = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)
    assert when(moment) == "3 Dec 2026, 18:00 UTC"
    assert day(moment) == "3 Dec 2026"
    assert day(date(2026, 12, 1)) == "1 Dec 2026"
    with timezone.override("Europe/Berlin"):
        assert when(moment) == "3 Dec 2026, 19:00 +0100"


def test_the_filters_work_in_every_template_without_a_load():
    html = Template("{{ a|money }} · {{ a|money:'EUR' }} · {{ t|when }} · {{ t|day }}").render(
        Context({"a": Decimal("1234.5"), "t": datetime(2026, 12, 3, 18, 0, tzinfo=UTC)})
    )
    assert html == "$1,234.50 · €1,234.50 · 3 Dec 2026, 18:00 UTC · 3 Dec 2026"


@pytest.mark.django_db
def test_the_cart_and_the_product_card_show_the_store_money_format(client):
    from orders.models import Cart
    from orders.services import cart_add
    from tests.factories import UserFactory, VariantFactory

    variant = VariantFactory(price=Decimal("1199.00"), stock=5)
    user = UserFactory()
    cart, _ = Cart.objects.get_or_create(user=user)
    cart_add(cart=cart, variant=variant, quantity=2)
    client.force_login(user)
    html = client.get("/cart/").content.decode()
    assert "$2,398.00" in html and "$1,199.00" in html
    assert "USD" not in html
