"""Back-in-stock alerts: a fan asks on an out-of-stock variant, is told once when stock
returns (in the notification centre and by email), and can cancel."""

import threading
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection
from django.urls import reverse

from catalog.models import StockAlert, StockAlertStatus, Variant
from catalog.services import variant_save
from catalog.stock_alerts import stock_alert_subscribe, stock_alerts_send_due
from catalog.tasks import stock_alerts_sweep
from config.celery import app as celery_app
from notifications.models import Notification, OutboxEmail
from tests.factories import ProductFactory, UserFactory, VariantFactory
from tests.preorders import batch_open

pytestmark = pytest.mark.django_db


def _sold_out(**kwargs) -> Variant:
    product = ProductFactory(name="Nimbus Buds", slug="buds")
    VariantFactory(product=product, options={"colour": "Black"}, stock=4)
    return VariantFactory(product=product, options={"colour": "Red"}, stock=0, **kwargs)


def _restock(variant: Variant, stock: int = 3) -> None:
    variant.stock = stock
    variant_save(variant=variant, fields=["stock"])


def test_a_fan_asks_on_the_product_page_once_and_sees_it(client):
    red = _sold_out()
    url = f"{red.product.get_absolute_url()}?variant={red.pk}"
    assert "Sign in to be told when it" in client.get(url).content.decode()
    fan = UserFactory()
    client.force_login(fan)
    assert "Tell me when it's back" in client.get(url).content.decode()
    alert_url = reverse("storefront:stock_alert", args=[red.product.slug])
    for _ in range(2):  # the same form submitted twice
        response = client.post(alert_url, {"variant": red.pk})
        assert response.status_code == 302 and response["Location"] == url
    alert = StockAlert.objects.get()
    assert (alert.user, alert.variant, alert.status) == (fan, red, StockAlertStatus.WAITING)
    html = client.get(url).content.decode()
    assert "Alert on" in html and "Tell me when it" not in html


def test_an_in_stock_variant_takes_no_alert_and_a_visitor_is_sent_to_sign_in(client):
    red = _sold_out()
    black = red.product.variants.get(options={"colour": "Black"})
    alert_url = reverse("storefront:stock_alert", args=[red.product.slug])
    assert client.post(alert_url, {"variant": red.pk})["Location"].startswith("/accounts/login/")
    client.force_login(UserFactory())
    client.post(alert_url, {"variant": black.pk})
    assert not StockAlert.objects.exists()
    assert client.post(alert_url, {"variant": "999999"}).status_code == 404


def test_the_alert_is_sent_once_when_stock_returns(django_capture_on_commit_callbacks):
    red = _sold_out()
    fan = UserFactory(email="ana@example.com")
    stock_alert_subscribe(user=fan, variant=red)
    assert stock_alerts_send_due() == 0  # still out of stock: nobody is told
    _restock(red)
    with django_capture_on_commit_callbacks(execute=True):
        assert stock_alerts_send_due() == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert stock_alerts_send_due() == 0  # done: never twice
    alert = StockAlert.objects.get()
    assert alert.status == StockAlertStatus.SENT and alert.sent_at is not None
    assert [m.to for m in mail.outbox] == [["ana@example.com"]]
    assert "Nimbus Buds (Red) is back in stock" in mail.outbox[0].subject
    assert f"/products/buds/?variant={red.pk}" in mail.outbox[0].body
    notice = Notification.objects.get(recipient=fan)
    assert notice.url == f"/products/buds/?variant={red.pk}"
    assert notice.kind == "back_in_stock"  # its own kind: not "my orders"
    assert OutboxEmail.objects.count() == 1


def test_a_cancelled_alert_is_not_sent_and_asking_again_reopens_it(client):
    red = _sold_out()
    fan, other = UserFactory(), UserFactory()
    stock_alert_subscribe(user=fan, variant=red)
    client.force_login(other)  # another fan cannot cancel it: the cancel acts on their own
    client.post(reverse("storefront:stock_alert_cancel", args=["buds"]), {"variant": red.pk})
    assert StockAlert.objects.get().status == StockAlertStatus.WAITING
    client.force_login(fan)
    client.post(reverse("storefront:stock_alert_cancel", args=["buds"]), {"variant": red.pk})
    assert StockAlert.objects.get().status == StockAlertStatus.CANCELLED
    _restock(red)
    assert stock_alerts_send_due() == 0 and not Notification.objects.exists()
    _restock(red, stock=0)
    stock_alert_subscribe(user=fan, variant=red)
    _restock(red)
    assert stock_alerts_send_due() == 1
    assert StockAlert.objects.count() == 1  # one row per fan and variant


def test_an_inactive_variant_or_a_hidden_product_tells_nobody():
    red = _sold_out()
    stock_alert_subscribe(user=UserFactory(), variant=red)
    Variant.objects.filter(pk=red.pk).update(stock=5, is_active=False)
    assert stock_alerts_send_due() == 0
    Variant.objects.filter(pk=red.pk).update(is_active=True)
    red.product.__class__.objects.filter(pk=red.product_id).update(status="archived")
    assert stock_alerts_send_due() == 0


def test_the_sweep_works_in_chunks(monkeypatch):
    red = _sold_out()
    for _ in range(5):
        stock_alert_subscribe(user=UserFactory(), variant=red)
    _restock(red)
    assert stock_alerts_send_due(limit=2) == 2
    assert StockAlert.objects.filter(status=StockAlertStatus.WAITING).count() == 3
    # The task queues the next chunk itself after a full one (eager in tests).
    monkeypatch.setattr("catalog.stock_alerts.SWEEP_CHUNK", 2)
    stock_alerts_sweep()
    assert not StockAlert.objects.filter(status=StockAlertStatus.WAITING).exists()
    assert Notification.objects.count() == 5


def test_the_beat_schedule_runs_the_sweep():
    entries = {entry["task"] for entry in celery_app.conf.beat_schedule.values()}
    assert "catalog.tasks.stock_alerts_sweep" in entries


def test_the_variant_panel_links_the_open_batch_of_the_same_product(client):
    red = _sold_out()
    batch = batch_open(product=red.product)
    client.force_login(UserFactory())
    html = client.get(
        reverse("storefront:product_variant", args=["buds"]),
        {"colour": "Red"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "Tell me when it's back" in html and batch.get_absolute_url() in html
    html = client.get(
        reverse("storefront:product_variant", args=["buds"]),
        {"colour": "Black"},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "Add to cart" in html and batch.get_absolute_url() not in html


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_tell_each_fan_exactly_once():
    red = _sold_out()
    fans = [UserFactory() for _ in range(40)]
    for fan in fans:
        stock_alert_subscribe(user=fan, variant=red)
    Variant.objects.filter(pk=red.pk).update(stock=Decimal("7"))
    told: list[int] = []
    start = threading.Barrier(4)

    def sweep() -> None:
        try:
            start.wait()
            while (count := stock_alerts_send_due(limit=5)) > 0:
                told.append(count)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(told) == 40
    assert Notification.objects.count() == 40
    assert sorted(Notification.objects.values_list("recipient_id", flat=True)) == sorted(
        fan.pk for fan in fans
    )
    assert OutboxEmail.objects.count() == 40


@pytest.mark.django_db(transaction=True)
def test_the_same_ask_twice_at_once_leaves_one_row():
    red = _sold_out()
    fan = UserFactory()
    start = threading.Barrier(6)
    errors: list[Exception] = []

    def ask() -> None:
        try:
            start.wait()
            stock_alert_subscribe(user=fan, variant=red)
        except Exception as exc:  # noqa: BLE001 - the test reports any failure
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert StockAlert.objects.filter(user=fan, variant=red).count() == 1
