"""The brand's console, in a real browser: the owner invites a colleague by email; the
colleague signs up through the invitation (allauth), sees the dashboard with its charts,
closes a pre-order batch and refunds an order within the staff limit; the owner finds both
actions in the audit log; the other brand's owner sees none of it."""

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from audit.models import AuditEntry
from catalog.models import BrandOperator, BrandRole
from preorders.models import BatchStatus
from tests.console import operator_of, paid_order
from tests.e2e.steps import PASSWORD, admin_sign_in
from tests.factories import BrandFactory, ProductFactory
from tests.preorders import batch_open, reserve

pytestmark = pytest.mark.django_db(transaction=True)


def test_owner_invites_staff_who_closes_a_batch_and_refunds_and_the_owner_audits(
    live_server, browser, password, mailbox
):
    base = live_server.url
    forge = BrandFactory(name="Forge Audio", slug="forge", staff_refund_limit=Decimal("25.00"))
    nimbus = BrandFactory(name="Nimbus Mobile", slug="nimbus")
    owner = operator_of(forge, role=BrandRole.OWNER, email="owner@forge.example")
    rival = operator_of(nimbus, role=BrandRole.OWNER, email="owner@nimbus.example")
    batch = batch_open(product=ProductFactory(brand=forge, name="Forge One"), min_quantity=2)
    reserve(batch=batch, quantity=2)
    order, part = paid_order(forge, price=Decimal("120.00"))

    owner_page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    owner_page.set_default_timeout(15_000)
    admin_sign_in(owner_page, base, owner.email, password)
    owner_page.goto(f"{base}/admin/catalog/brandinvitation/add/")
    # The owner's one brand is chosen already.
    expect(owner_page.locator("#id_brand")).to_have_value(str(forge.pk))
    owner_page.fill("#id_email", "sam@forge.example")
    owner_page.select_option("#id_role", "staff")
    owner_page.click("input[name=_save]")
    expect(owner_page.locator("ul.messagelist")).to_contain_text("Invitation sent to sam@forge")

    mail = mailbox.wait_for(to="sam@forge.example", subject="Join Forge Audio")
    link = re.search(r"https?://[^/\s]+(/team/invitations/\S+/)", mailbox.text(mail)).group(1)

    sam = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    sam.set_default_timeout(15_000)
    sam.goto(base + link)
    expect(sam.locator("main")).to_contain_text("Join Forge Audio's team")
    sam.get_by_role("link", name="Create your account").click()
    expect(sam.locator("input[name=email]")).to_have_value("sam@forge.example")
    sam.fill("input[name=display_name]", "Sam")
    sam.fill("input[name=password1]", PASSWORD)
    sam.fill("input[name=password2]", PASSWORD)
    sam.click("main form button[type=submit]")
    # The invited address is verified by the link: signed in, back on the invitation.
    sam.get_by_role("button", name="Accept and open the brand's admin").click()
    expect(sam.locator("#console-dashboard")).to_contain_text("Your brands today")
    expect(sam.locator("#console-dashboard svg.console-bars").first).to_be_visible()
    expect(sam.locator("#console-dashboard")).to_contain_text("Retention of each week")
    assert BrandOperator.objects.get(user__email="sam@forge.example").role == BrandRole.STAFF

    sam.goto(f"{base}/admin/preorders/preorderbatch/{batch.pk}/change/")
    sam.get_by_role("link", name="Close now").click()
    sam.locator("input[type=submit]").click()
    expect(sam.locator("ul.messagelist")).to_contain_text("closed with 2 of 2 units")
    batch.refresh_from_db()
    assert batch.status in (BatchStatus.SETTLING, BatchStatus.CONFIRMED)

    sam.goto(f"{base}/admin/orders/order/{order.pk}/change/")
    sam.get_by_role("link", name="Refund").click()
    sam.fill("#id_amount", "40.00")  # over the owner's limit of 25.00
    sam.click("input[type=submit]")
    expect(sam.locator("ul.messagelist")).to_contain_text("may refund at most $25.00")
    sam.fill("#id_amount", "20.00")
    sam.click("input[type=submit]")
    expect(sam.locator("ul.messagelist")).to_contain_text("refunded $20.00")

    owner_page.goto(f"{base}/admin/audit/auditentry/")
    rows = owner_page.locator("#result_list tbody")
    expect(rows).to_contain_text("batch.close")
    expect(rows).to_contain_text("order.refund")
    expect(rows).to_contain_text("sam@forge.example")
    owner_page.goto(f"{base}/admin/orders/order/{order.pk}/history/")
    expect(owner_page.locator("#audit-history")).to_contain_text("order.refund")
    assert AuditEntry.objects.filter(brand=forge, actor__email="sam@forge.example").count() >= 3

    rival_page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    rival_page.set_default_timeout(15_000)
    admin_sign_in(rival_page, base, rival.email, password)
    expect(rival_page.locator("#console-dashboard")).not_to_contain_text("Forge")
    rival_page.goto(f"{base}/admin/audit/auditentry/")
    expect(rival_page.locator("#content")).not_to_contain_text("sam@forge.example")
    rival_page.goto(f"{base}/admin/orders/order/{order.pk}/history/")
    expect(rival_page.locator("ul.messagelist")).to_contain_text("doesn’t exist")
    for page in (owner_page, sam, rival_page):
        page.context.close()
