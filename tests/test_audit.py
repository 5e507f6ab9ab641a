"""The audit log: each operator action that changes money, stock, state or access leaves
one entry (who, when, brand, object, before and after); the object's history page and the
brand's log show them, to that brand's operators only; nobody edits or deletes an entry,
in the admin or in the database."""

from decimal import Decimal

import pytest
from django.db import DatabaseError, transaction

from audit.models import AuditEntry
from audit.services import audit_record
from catalog.models import BrandRole, Product, Variant
from catalog.services import product_set_status
from crowdfunding.models import Campaign
from crowdfunding.services import campaign_fulfil, campaign_launch
from orders.fulfilment import order_part_mark_delivered, order_part_ship
from orders.models import OrderStatus
from preorders.models import BatchStatus, PreorderBatch
from preorders.services import batch_fulfil, batch_publish
from tests.console import operator_of, paid_order
from tests.crowdfunding import campaign_live
from tests.factories import BrandFactory, ProductFactory, UserFactory, VariantFactory
from tests.preorders import batch_open, reserve

pytestmark = pytest.mark.django_db

BATCHES = "/admin/preorders/preorderbatch/"


@pytest.fixture
def brands():
    mine, theirs = BrandFactory(name="Mine", slug="mine"), BrandFactory(name="Theirs")
    return {
        "mine": mine,
        "theirs": theirs,
        "staff": operator_of(mine, role=BrandRole.STAFF),
        "owner": operator_of(mine, role=BrandRole.OWNER),
        "their_owner": operator_of(theirs, role=BrandRole.OWNER),
    }


def _only(action: str) -> AuditEntry:
    return AuditEntry.objects.get(action=action)


def test_ship_refund_and_cancel_of_a_part_are_audited(client, brands):
    mine, staff = brands["mine"], brands["staff"]
    order, part = paid_order(mine, price=Decimal("30.00"), quantity=2)
    client.force_login(staff)
    base = f"/admin/orders/order/{order.pk}/operate/"
    client.post(f"{base}refund/?part={part.pk}", {"amount": "10.00", "token": "a"})
    refund = _only("order.refund")
    assert (refund.actor, refund.actor_label, refund.brand) == (staff, staff.email, mine)
    assert refund.before == {"refunded": "0.00", "status": "paid"}
    assert refund.after == {"refunded": "10.00", "refund": "10.00"}
    client.post(f"{base}cancel/?part={part.pk}", {"reason": "Out of stock"})
    cancel = _only("order.cancel_part")
    assert cancel.after["refund"] == str(part.total - Decimal("10.00"))
    assert cancel.note == "Out of stock"

    order2, part2 = paid_order(mine, price=Decimal("20.00"))
    client.post(
        f"/admin/orders/order/{order2.pk}/operate/ship/?part={part2.pk}",
        {"tracking_number": "TRK-1"},
    )
    part2.refresh_from_db()
    assert part2.status == OrderStatus.SHIPPED
    ship = _only("order.ship")
    assert (ship.object_id, ship.before, ship.after) == (
        str(order2.pk),
        {"status": "paid"},
        {"status": "shipped", "tracking_number": "TRK-1"},
    )


def test_a_refused_action_leaves_no_entry(client, brands):
    order, part = paid_order(brands["mine"], price=Decimal("30.00"))
    client.force_login(brands["staff"])
    client.post(
        f"/admin/orders/order/{order.pk}/operate/refund/?part={part.pk}",
        {"amount": "99.00", "token": "b"},
    )
    assert not AuditEntry.objects.filter(action__startswith="order.").exists()


@pytest.mark.django_db(transaction=True)
def test_close_now_and_cancel_of_batches_are_audited(client):
    mine = BrandFactory(name="Mine", slug="mine")
    staff = operator_of(mine, role=BrandRole.STAFF)
    closing = batch_open(product=ProductFactory(brand=mine), min_quantity=1)
    reserve(batch=closing, quantity=2)
    cancelling = batch_open(product=ProductFactory(brand=mine), min_quantity=1)
    client.force_login(staff)
    client.post(
        BATCHES, {"action": "close_now", "_selected_action": [closing.pk], "confirm": "yes"}
    )
    closed = _only("batch.close")
    assert (closed.actor, closed.brand, closed.object_id) == (staff, mine, str(closing.pk))
    assert closed.before == {"status": BatchStatus.OPEN}
    assert closed.after == {"status": BatchStatus.SETTLING, "reserved_units": 2}
    client.post(
        BATCHES,
        {
            "action": "cancel",
            "_selected_action": [cancelling.pk],
            "confirm": "yes",
            "reason": "Supplier gone",
        },
    )
    cancelled = _only("batch.cancel")
    assert cancelled.object_id == str(cancelling.pk)
    assert cancelled.before == {"status": BatchStatus.OPEN}
    assert cancelled.after["status"] == BatchStatus.CANCELLING


def test_price_and_stock_edits_are_audited_and_show_on_the_product_history(client, brands):
    mine, staff = brands["mine"], brands["staff"]
    variant = VariantFactory(
        product=ProductFactory(brand=mine), price=Decimal("10.00"), stock=5, sku="M-1"
    )
    client.force_login(staff)
    changelist = client.get("/admin/catalog/variant/")
    form = changelist.context["cl"].formset.forms[0]
    data = {
        "form-TOTAL_FORMS": "1",
        "form-INITIAL_FORMS": "1",
        "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "1000",
        "form-0-id": variant.pk,
        "form-0-price": "12.50",
        "initial-form-0-price": "10.00",
        "form-0-stock": "8",
        "initial-form-0-stock": "5",
        "form-0-is_active": "on",
        "initial-form-0-is_active": "True",
        "_save": "Save",
    }
    assert form is not None
    response = client.post("/admin/catalog/variant/", data)
    assert response.status_code == 302
    entry = _only("variant.edit")
    assert entry.before == {"price": "10.00", "stock": 5}
    assert entry.after == {"price": "12.50", "stock": 8}
    assert Variant.objects.get(pk=variant.pk).stock == 8
    history = client.get(f"/admin/catalog/product/{variant.product_id}/history/")
    page = history.content.decode()
    assert "variant.edit" in page and "price: 10.00 → 12.50" in page
    # Saved again unchanged: no entry.
    client.post(
        "/admin/catalog/variant/",
        {
            **data,
            "initial-form-0-price": "12.50",
            "initial-form-0-stock": "8",
            "form-0-price": "12.50",
        },
    )
    assert AuditEntry.objects.filter(action="variant.edit").count() == 1


def test_a_shared_orders_history_shows_each_brand_its_own_entries(client, brands):
    mine, theirs = brands["mine"], brands["theirs"]
    order, part = paid_order(mine, price=Decimal("30.00"))
    audit_record(actor=brands["owner"], action="order.refund", obj=order, brand_id=mine.pk)
    audit_record(actor=brands["their_owner"], action="order.ship", obj=order, brand_id=theirs.pk)
    client.force_login(brands["owner"])
    page = client.get(f"/admin/orders/order/{order.pk}/history/").content.decode()
    assert "order.refund" in page and "order.ship" not in page
    log = client.get("/admin/audit/auditentry/").content.decode()
    assert "order.refund" in log and "order.ship" not in log
    theirs_entry = AuditEntry.objects.get(brand=theirs, action="order.ship")
    assert client.get(f"/admin/audit/auditentry/{theirs_entry.pk}/change/").status_code == 302
    # The other brand's operator: no page for this order at all.
    client.force_login(brands["their_owner"])
    assert client.get(f"/admin/orders/order/{order.pk}/history/").status_code == 302


def test_nobody_edits_or_deletes_an_entry(client, brands):
    entry = audit_record(
        actor=brands["owner"], action="team.role", obj=brands["mine"], brand_id=brands["mine"].pk
    )
    admin_user = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(admin_user)
    assert client.get("/admin/audit/auditentry/").status_code == 200
    assert client.get(f"/admin/audit/auditentry/{entry.pk}/change/").status_code == 200
    assert (
        client.post(
            f"/admin/audit/auditentry/{entry.pk}/change/", {"action": "nothing"}
        ).status_code
        == 403
    )
    assert client.get(f"/admin/audit/auditentry/{entry.pk}/delete/").status_code == 403
    assert client.get("/admin/audit/auditentry/add/").status_code == 403
    for attempt in (
        lambda: AuditEntry.objects.filter(pk=entry.pk).update(action="nothing"),
        lambda: AuditEntry.objects.filter(pk=entry.pk).delete(),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            attempt()
    assert AuditEntry.objects.get(pk=entry.pk).action == "team.role"


def test_close_now_and_cancel_of_campaigns_are_audited():
    from crowdfunding.services import campaign_cancel, campaign_close
    from tests.crowdfunding import campaign_live, pledge

    closing = campaign_live(goal="10.00")
    pledge(campaign=closing, amount="20.00")
    staff = operator_of(closing.brand, role=BrandRole.STAFF)
    assert campaign_close(campaign=closing, actor=staff, force=True)
    closed = _only("campaign.close")
    assert (closed.actor, closed.brand_id, closed.object_id) == (
        staff,
        closing.brand_id,
        str(closing.pk),
    )
    assert closed.before == {"status": "live"}
    assert not campaign_close(campaign=closing, actor=staff, force=True)  # twice: one entry
    assert AuditEntry.objects.filter(action="campaign.close").count() == 1
    cancelling = campaign_live(goal="10.00", brand=closing.brand)
    campaign_cancel(campaign=cancelling, actor=staff, reason="Supplier gone")
    cancelled = _only("campaign.cancel")
    assert cancelled.object_id == str(cancelling.pk) and cancelled.before == {"status": "live"}


def test_showing_or_hiding_products_is_audited(client, brands):
    mine, staff = brands["mine"], brands["staff"]
    shown, hidden = ProductFactory(brand=mine, status="active"), ProductFactory(brand=mine)
    Product.objects.filter(pk=hidden.pk).update(status="draft")
    client.force_login(staff)
    client.post(
        "/admin/catalog/product/",
        {"action": "make_archived", "_selected_action": [shown.pk]},
    )
    archived = _only("product.status")
    assert (archived.actor, archived.brand, archived.object_id) == (staff, mine, str(shown.pk))
    assert (archived.before, archived.after) == ({"status": "active"}, {"status": "archived"})
    # Again: nothing changes, nothing more is recorded.
    client.post(
        "/admin/catalog/product/",
        {"action": "make_archived", "_selected_action": [shown.pk]},
    )
    assert AuditEntry.objects.filter(action="product.status").count() == 1
    product_set_status(product_ids=[hidden.pk], status="active", actor=staff)
    shown_again = AuditEntry.objects.filter(action="product.status").latest("id")
    assert (shown_again.object_id, shown_again.before) == (str(hidden.pk), {"status": "draft"})


def test_a_delivered_part_is_audited(brands):
    mine, staff = brands["mine"], brands["staff"]
    order, part = paid_order(mine, price=Decimal("20.00"))
    order_part_ship(part=part, tracking_number="TRK-2", actor=staff)
    order_part_mark_delivered(part=part, actor=staff)
    delivered = _only("order.deliver")
    assert (delivered.actor, delivered.brand, delivered.object_id) == (staff, mine, str(order.pk))
    assert (delivered.before, delivered.after) == ({"status": "shipped"}, {"status": "delivered"})


def test_publishing_and_fulfilling_batches_and_campaigns_are_audited(brands):
    mine, owner = brands["mine"], brands["owner"]
    batch = batch_open(product=ProductFactory(brand=mine), min_quantity=1)
    PreorderBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.DRAFT)
    batch.refresh_from_db()
    batch_publish(batch=batch, actor=owner)
    published = _only("batch.publish")
    assert (published.actor, published.brand, published.before) == (
        owner,
        mine,
        {"status": BatchStatus.DRAFT},
    )
    PreorderBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.CONFIRMED)
    batch.refresh_from_db()
    batch_fulfil(batch=batch, actor=owner)
    fulfilled = _only("batch.fulfil")
    assert fulfilled.before == {"status": BatchStatus.CONFIRMED}
    assert fulfilled.after["status"] == BatchStatus.FULFILLED

    campaign = campaign_live(brand=mine, status="draft")
    campaign_launch(campaign=campaign, actor=owner)
    launched = _only("campaign.launch")
    assert (launched.actor, launched.before, launched.after) == (
        owner,
        {"status": "draft"},
        {"status": "live"},
    )
    Campaign.objects.filter(pk=campaign.pk).update(status="successful")
    campaign.refresh_from_db()
    campaign_fulfil(campaign=campaign, actor=owner)
    assert _only("campaign.fulfil").before == {"status": "successful"}
