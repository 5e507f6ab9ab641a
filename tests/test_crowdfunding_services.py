"""Campaigns and pledges through the services: intake, limits, changes, cancels, the close
(success, failure, flexible), stretch goals, receipts, backers-only updates."""

from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils import timezone

from communities.models import MemberBadge, PointsEntry, Post
from crowdfunding.models import (
    CampaignStatus,
    Pledge,
    PledgeStatus,
    RewardTicket,
    UpdateAudience,
)
from crowdfunding.selectors import campaign_page, stretch_goals_shown, update_for
from crowdfunding.services import (
    PledgeError,
    campaign_close,
    pledge_cancel,
    pledge_change,
    update_publish,
)
from payments.models import LocalCharge, Payment, PaymentStatus
from tests.crowdfunding import CARD_DECLINED_ON_CHARGE, campaign_live, pledge
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _close(campaign):
    assert campaign_close(campaign=campaign, force=True)
    campaign.refresh_from_db()
    return campaign


def test_pledge_counts_and_one_per_backer(django_capture_on_commit_callbacks):
    campaign = campaign_live(goal="100.00")
    tier = campaign.tiers.get()
    first = pledge(campaign=campaign, amount="25.00", tier=tier)
    campaign.refresh_from_db()
    assert (campaign.pledged_total, campaign.backer_count) == (Decimal("25.00"), 1)
    with pytest.raises(ValidationError, match="already back"):
        pledge(campaign=campaign, user=first.user, amount="30.00")
    with pytest.raises(PledgeError, match="at least"):
        pledge(campaign=campaign, amount="5.00", tier=tier)
    campaign.refresh_from_db()
    assert (campaign.pledged_total, campaign.backer_count) == (Decimal("25.00"), 1)
    assert Pledge.objects.count() == 1


def test_goal_met_charges_every_pledge_once_makes_orders_tickets_and_receipts():
    campaign = campaign_live(
        goal="50.00",
        tiers=[("Meet-up", "20.00", 10, "experience"), ("Thanks", "5.00", None, "digital")],
    )
    meetup, thanks = campaign.tiers.order_by("position")
    a = pledge(campaign=campaign, amount="30.00", tier=meetup, member=True)
    b = pledge(campaign=campaign, amount="25.00", tier=thanks)
    failed = pledge(campaign=campaign, amount="5.00", card=CARD_DECLINED_ON_CHARGE)
    mail.outbox.clear()
    campaign = _close(campaign)
    assert campaign.status == CampaignStatus.SUCCESSFUL
    for p in (a, b, failed):
        p.refresh_from_db()
    assert a.status == b.status == PledgeStatus.CHARGED
    assert (a.amount_charged, b.amount_charged) == (Decimal("30.00"), Decimal("25.00"))
    assert failed.status == PledgeStatus.PAYMENT_FAILED and failed.grace_until
    assert LocalCharge.objects.count() == 3
    assert Payment.objects.filter(status=PaymentStatus.SUCCEEDED).count() == 2
    assert RewardTicket.objects.get().pledge == a
    paid = sorted(m.to[0] for m in mail.outbox if "is paid" in m.subject)
    assert paid == sorted([a.user.email, b.user.email])
    assert [m.to[0] for m in mail.outbox if "needs a payment" in m.subject] == [failed.user.email]
    # The backer who is a member of the community earns points and the badge.
    assert MemberBadge.objects.filter(user=a.user, code="backer").exists()
    assert PointsEntry.objects.filter(user=a.user, source=f"pledge:{a.pk}").count() == 1
    assert not MemberBadge.objects.filter(user=b.user).exists()
    # Closing again does nothing: nobody is charged twice.
    assert not campaign_close(campaign=campaign, force=True)
    assert LocalCharge.objects.count() == 3


def test_goal_missed_releases_everyone_and_charges_nobody():
    campaign = campaign_live(goal="500.00")
    pledges = [pledge(campaign=campaign, amount="20.00") for _ in range(3)]
    campaign = _close(campaign)
    assert campaign.status == CampaignStatus.FAILED
    assert all(
        s == PledgeStatus.RELEASED
        for s in Pledge.objects.filter(pk__in=[p.pk for p in pledges]).values_list(
            "status", flat=True
        )
    )
    assert LocalCharge.objects.count() == 0 and Payment.objects.count() == 0


def test_flexible_keeps_what_is_raised_but_fails_with_no_pledge():
    flexible = campaign_live(goal="500.00", flexible=True)
    one = pledge(campaign=flexible, amount="20.00")
    assert _close(flexible).status == CampaignStatus.SUCCESSFUL
    one.refresh_from_db()
    assert one.status == PledgeStatus.CHARGED
    empty = campaign_live(goal="500.00", flexible=True)
    assert _close(empty).status == CampaignStatus.FAILED


def test_shipped_reward_with_a_variant_becomes_a_paid_order():
    from tests.factories import VariantFactory

    campaign = campaign_live(goal="10.00", tiers=[("The phone", "100.00", 5, "shipped")])
    tier = campaign.tiers.get()
    tier.variant = VariantFactory(product__brand=campaign.brand)
    tier.save()
    p = pledge(campaign=campaign, amount="120.00", tier=tier)
    _close(campaign)
    p.refresh_from_db()
    assert p.order is not None and p.order.status == "paid"
    assert p.order.total == Decimal("120.00")
    assert p.order.ship_city


def test_changes_and_cancels_move_the_totals_and_the_tier_counts():
    campaign = campaign_live(
        goal="100.00", tiers=[("A", "10.00", 1, "digital"), ("B", "30.00", None, "digital")]
    )
    a, b = campaign.tiers.order_by("position")
    first = pledge(campaign=campaign, amount="10.00", tier=a)
    other = pledge(campaign=campaign, amount="40.00", tier=b)
    with pytest.raises(PledgeError, match="all taken"):
        pledge_change(pledge=other, user=other.user, amount="40.00", tier=a)
    with pytest.raises(PledgeError, match="at least"):
        pledge_change(pledge=first, user=first.user, amount="10.00", tier=b)
    pledge_change(pledge=first, user=first.user, amount="35.00", tier=b)
    a.refresh_from_db(), b.refresh_from_db(), campaign.refresh_from_db()
    assert (a.claimed, b.claimed) == (0, 2)
    assert campaign.pledged_total == Decimal("75.00")
    pledge_change(pledge=other, user=other.user, amount="12.00", tier=a)  # A is free again
    pledge_cancel(pledge=first, user=first.user)
    a.refresh_from_db(), b.refresh_from_db(), campaign.refresh_from_db()
    assert (a.claimed, b.claimed) == (1, 0)
    assert (campaign.pledged_total, campaign.backer_count) == (Decimal("12.00"), 1)
    receipts = [m.subject for m in mail.outbox if first.user.email in m.to]
    assert any("You pledged" in s for s in receipts)
    assert any("is now" in s for s in receipts)
    assert any("cancelled" in s for s in receipts)
    # Someone else may not touch a pledge; after the close nobody may.
    with pytest.raises(Exception):
        pledge_cancel(pledge=other, user=first.user)
    _close(campaign)
    other.refresh_from_db()
    with pytest.raises(ValidationError):
        pledge_change(pledge=other, user=other.user, amount="50.00", tier=None)


def test_stretch_goals_are_revealed_one_after_another():
    campaign = campaign_live(goal="100.00", stretch=[("150.00", "Gold"), ("300.00", "Case")])
    goals = list(campaign.stretch_goals.all())
    shown = stretch_goals_shown(goals=goals, raised=Decimal("120.00"))
    assert [(s["goal"].title, s["reached"]) for s in shown] == [("Gold", False)]
    shown = stretch_goals_shown(goals=goals, raised=Decimal("150.00"))
    assert [(s["goal"].title, s["reached"]) for s in shown] == [("Gold", True), ("Case", False)]
    page = campaign_page(campaign=campaign, user=UserFactory())
    assert page.hidden_goals == 1


def test_backers_only_updates_exist_only_for_their_backers():
    campaign = campaign_live(
        goal="100.00", tiers=[("A", "10.00", None, "digital"), ("B", "20.00", None, "digital")]
    )
    a, b = campaign.tiers.order_by("position")
    backer_a = pledge(campaign=campaign, amount="10.00", tier=a).user
    backer_b = pledge(campaign=campaign, amount="20.00", tier=b).user
    stranger = UserFactory()
    operator = UserFactory(is_staff=True)
    campaign.brand.operators.add(operator)
    everyone = update_publish(
        campaign=campaign, author=operator, title="Hello", body="News for all"
    )
    backers = update_publish(
        campaign=campaign,
        author=operator,
        title="Backers",
        body="For backers",
        audience=UpdateAudience.BACKERS,
    )
    only_b = update_publish(
        campaign=campaign,
        author=operator,
        title="Tier B",
        body="For B",
        audience=UpdateAudience.BACKERS,
        tier_ids=[b.pk],
    )
    for user, visible in [
        (stranger, {everyone}),
        (backer_a, {everyone, backers}),
        (backer_b, {everyone, backers, only_b}),
        (operator, {everyone, backers, only_b}),
    ]:
        for update in (everyone, backers, only_b):
            if update in visible:
                assert update_for(campaign=campaign, user=user, pk=update.pk) == update
            else:
                with pytest.raises(Http404):
                    update_for(campaign=campaign, user=user, pk=update.pk)
        page = campaign_page(campaign=campaign, user=user)
        assert set(page.updates) == visible
    # Only the public update reached the community's feed.
    assert list(
        Post.objects.filter(community=campaign.community).values_list("title", flat=True)
    ) == [f"{campaign.title}: Hello"]


def test_declined_pledge_pays_again_in_its_window_or_is_dropped_after_it():
    from datetime import timedelta

    import time_machine

    from crowdfunding.services import pledge_pay_again, pledges_grace_sweep
    from payments.services import card_save
    from tests.shop import CARD_OK

    campaign = campaign_live(goal="10.00")
    late = pledge(campaign=campaign, amount="20.00", card=CARD_DECLINED_ON_CHARGE)
    never = pledge(campaign=campaign, amount="15.00", card=CARD_DECLINED_ON_CHARGE)
    _close(campaign)
    late.refresh_from_db()
    assert late.status == PledgeStatus.PAYMENT_FAILED
    mail.outbox.clear()
    good = card_save(user=late.user, card=CARD_OK)
    payment = pledge_pay_again(pledge=late, user=late.user, saved_card=good)
    late.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED and late.status == PledgeStatus.CHARGED
    assert [m.to[0] for m in mail.outbox if "is paid" in m.subject] == [late.user.email]
    with pytest.raises(ValidationError):  # paid: nothing more to pay
        pledge_pay_again(pledge=late, user=late.user, saved_card=good)
    # Reminded during the window, dropped after it: its share stops counting.
    with time_machine.travel(timezone.now() + timedelta(days=3)):
        assert pledges_grace_sweep() == (1, 0)
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        assert pledges_grace_sweep() == (0, 1)
    never.refresh_from_db()
    campaign.refresh_from_db()
    assert never.status == PledgeStatus.RELEASED
    assert (campaign.pledged_total, campaign.backer_count) == (Decimal("20.00"), 1)
    assert LocalCharge.objects.filter(idempotency_key__startswith=f"pledge-{late.pk}:").count() == 2


def test_due_campaigns_close_by_the_command_exactly_once():
    import time_machine
    from django.core.management import call_command

    campaign = campaign_live(goal="10.00")
    pledge(campaign=campaign, amount="20.00")
    with time_machine.travel(campaign.deadline + timezone.timedelta(seconds=1)):
        call_command("close_due_campaigns")
        call_command("close_due_campaigns")
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.SUCCESSFUL
    assert LocalCharge.objects.count() == 1
