"""A crowdfunding campaign in a real browser, with a real Celery worker settling it: the
operator sets up a campaign with a limited tier and a stretch goal in the admin and launches
it; two new fans pledge (phone and desktop width), one with 4242 into the limited meet-up
tier, one with 4000 0000 0000 0341; the operator posts a backers-only update; the campaign
reaches its deadline and closes by itself (the beat's sweep); the worker charges each once:
the first fan gets a receipt and a ticket, which the brand checks in; the second is mailed a
link to pay again. Another campaign misses its goal and nobody is charged."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from playwright.sync_api import expect

from communities.models import Community
from crowdfunding.models import Campaign, CampaignStatus, Pledge, PledgeStatus, RewardTicket
from crowdfunding.services import campaigns_close_due
from payments.models import LocalCharge
from tests.crowdfunding import campaign_live, pledge
from tests.e2e.steps import CARD_DECLINED_ON_CHARGE, CARD_OK, admin_sign_in, fill_card, sign_in
from tests.factories import UserFactory
from tests.services import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def _pledge_in_browser(browser, base, fan, password, campaign, *, tier, amount, card, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    fan_page = context.new_page()
    fan_page.set_default_timeout(15_000)
    sign_in(fan_page, base, fan.email, password)
    fan_page.goto(f"{base}/campaigns/{campaign.slug}/")
    expect(fan_page.locator("#campaign-progress")).to_contain_text("funded")
    fan_page.select_option("select[name=tier]", str(campaign.tiers.get(title=tier).pk))
    fan_page.fill("input[name=amount]", amount)
    fill_card(fan_page, card)
    fan_page.get_by_role("button", name="Pledge", exact=True).click()
    expect(fan_page.locator("body")).to_contain_text("Thank you! You back")
    context.close()


def test_operator_launches_fans_pledge_the_deadline_settles_it_once(
    live_server, desktop_page, browser, password, operator, mailbox, live_worker
):
    base = live_server.url
    page = desktop_page
    operator.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="crowdfunding")
    )
    brand = operator.operated_brands.get()
    community = Community.objects.create(
        name="Forge listeners", slug="forge-listeners", kind="brand", brand=brand
    )
    admin_sign_in(page, base, operator.email, password)

    page.goto(f"{base}/admin/crowdfunding/campaign/add/")
    page.select_option("#id_brand", label=brand.name)
    page.select_option("#id_community", label=community.name)
    page.locator("#id_title").press_sequentially("Forge walnut stand")
    expect(page.locator("#id_slug")).to_have_value("forge-walnut-stand")
    page.fill("#id_summary", "A stand from the cups' wood")
    page.fill("#id_story", "## The stand\nTurned by **hand**.")
    page.fill("#id_goal", "100.00")
    now = timezone.localtime()
    deadline = now + timedelta(days=5)
    page.fill("#id_launch_at_0", now.strftime("%Y-%m-%d"))
    page.fill("#id_launch_at_1", (now - timedelta(minutes=5)).strftime("%H:%M:%S"))
    page.fill("#id_deadline_0", deadline.strftime("%Y-%m-%d"))
    page.fill("#id_deadline_1", deadline.strftime("%H:%M:%S"))
    page.fill("#id_tiers-0-title", "Workshop visit")
    page.fill("#id_tiers-0-min_amount", "60.00")
    page.fill("#id_tiers-0-limit", "2")
    page.select_option("#id_tiers-0-kind", "experience")
    page.fill("#id_tiers-1-title", "Thank-you card")
    page.fill("#id_tiers-1-min_amount", "10.00")
    page.select_option("#id_tiers-1-kind", "digital")
    page.fill("#id_stretch_goals-0-amount", "150.00")
    page.fill("#id_stretch_goals-0-title", "Engraved base")
    page.click("input[name=_save]")
    errors = page.locator(".errorlist, .errornote").all_inner_texts()
    assert not errors, errors
    campaign = Campaign.objects.get(slug="forge-walnut-stand")
    page.locator(f"input[name=_selected_action][value='{campaign.pk}']").check()
    page.select_option("select[name=action]", "launch")
    page.locator("button[name=index]").click()
    expect(page.locator("ul.messagelist")).to_contain_text("launched")
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.LIVE and campaign.tiers.count() == 2

    fans = [UserFactory(), UserFactory()]
    _pledge_in_browser(
        browser,
        base,
        fans[0],
        password,
        campaign,
        tier="Workshop visit",
        amount="70.00",
        card=CARD_OK,
        width=390,
    )
    _pledge_in_browser(
        browser,
        base,
        fans[1],
        password,
        campaign,
        tier="Workshop visit",
        amount="60.00",
        card=CARD_DECLINED_ON_CHARGE,
        width=1280,
    )
    campaign.refresh_from_db()
    assert (campaign.backer_count, campaign.tiers.get(title="Workshop visit").claimed) == (2, 2)

    # A backers-only update from the admin.
    page.goto(f"{base}/admin/crowdfunding/campaignupdate/add/")
    page.select_option("#id_campaign", label=campaign.title)
    page.fill("#id_title", "Backers: the first stand")
    page.fill("#id_body", "Photos for you only.")
    page.select_option("#id_audience", "backers")
    page.click("input[name=_save]")
    expect(page.locator("ul.messagelist")).to_contain_text("was added successfully")
    update = campaign.updates.get()
    stranger = browser.new_context().new_page()
    assert stranger.goto(f"{base}{update.get_absolute_url()}").status == 404
    stranger.context.close()

    # Another campaign nobody reaches.
    missed = campaign_live(brand=brand, goal="9999.00")
    pledge(campaign=missed, amount="20.00")

    # The deadline passes; the beat's sweep closes both, the worker settles them.
    Campaign.objects.filter(pk__in=[campaign.pk, missed.pk]).update(
        deadline=timezone.now() - timedelta(seconds=1)
    )
    assert campaigns_close_due() == 2
    wait_until(
        lambda: (
            set(
                Campaign.objects.filter(pk__in=[campaign.pk, missed.pk]).values_list(
                    "status", flat=True
                )
            )
            == {CampaignStatus.SUCCESSFUL, CampaignStatus.FAILED}
        ),
        timeout=60,
        what="the worker to settle both campaigns",
        explain=live_worker.log_tail,
    )
    paid, declined = (Pledge.objects.get(user=fan) for fan in fans)
    assert paid.status == PledgeStatus.CHARGED and declined.status == PledgeStatus.PAYMENT_FAILED
    assert Campaign.objects.get(pk=missed.pk).status == CampaignStatus.FAILED
    assert LocalCharge.objects.count() == 2  # the two backers of the funded one, once each
    mailbox.wait_for(to=fans[0].email, subject="is paid")
    retry = mailbox.wait_for(to=fans[1].email, subject="needs a payment")
    assert f"/campaigns/pledges/{declined.pk}/" in mailbox.text(retry)

    # The first fan's ticket, checked in by the brand.
    ticket = RewardTicket.objects.get(pledge=paid)
    context = browser.new_context(viewport={"width": 390, "height": 844})
    fan_page = context.new_page()
    sign_in(fan_page, base, fans[0].email, password)
    fan_page.goto(f"{base}/campaigns/mine/")
    expect(fan_page.locator("main")).to_contain_text(ticket.code)
    context.close()
    page.goto(f"{base}/admin/crowdfunding/rewardticket/check-in/")
    page.fill("#id_code", ticket.code)
    page.locator("#check-in-form input[type=submit]").click()
    expect(page.locator("ul.messagelist")).to_contain_text("checked in")
    ticket.refresh_from_db()
    assert ticket.checked_in_at is not None
