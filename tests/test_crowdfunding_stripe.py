"""A campaign settled through the Stripe provider, against localstripe: each backer's card
is saved with a SetupIntent when pledging, charged off-session at the deadline only if the
goal is met; a declined card gets the fix-payment window; a failed campaign creates no
PaymentIntent at all; a crashed run is resolved without a second PaymentIntent."""

import uuid
from collections.abc import Iterator

import pytest

from crowdfunding.models import Campaign, CampaignStatus, Pledge, PledgeStatus
from crowdfunding.services import campaign_close, pledge_create
from payments.models import Payment, PaymentStatus
from payments.providers.registry import provider_get
from payments.services import card_save
from payments.settlement import settlement_run_chunk
from tests.crowdfunding import campaign_live
from tests.factories import UserFactory
from tests.shop import ADDRESS
from tests.stripe_server import SECRET_KEY, WEBHOOK_SECRET, LocalStripe

pytestmark = pytest.mark.django_db(transaction=True)

VISA = "4242424242424242"
DECLINED_ON_CHARGE = "4000000000000341"


@pytest.fixture(autouse=True)
def stripe_provider(localstripe: LocalStripe, settings) -> Iterator[LocalStripe]:
    localstripe.flush()
    provider_get.cache_clear()
    settings.PAYMENT_PROVIDER = "stripe"
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_API_BASE = localstripe.base
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    yield localstripe
    provider_get.cache_clear()


def _pledge(localstripe: LocalStripe, campaign, number: str, amount="30.00") -> Pledge:
    user = UserFactory()
    card = card_save(user=user, card={"payment_method": localstripe.payment_method(number)})
    return pledge_create(
        campaign=campaign,
        user=user,
        amount=amount,
        address=ADDRESS,
        request_key=uuid.uuid4().hex,
        saved_card=card,
    )


def _intents(localstripe: LocalStripe) -> list[dict]:
    return localstripe.call("GET", "/v1/payment_intents?limit=100")["data"]


def test_goal_met_charges_off_session_once_and_a_rerun_makes_no_new_intent(localstripe):
    campaign = campaign_live(goal="50.00")
    paid = _pledge(localstripe, campaign, VISA)
    declined = _pledge(localstripe, campaign, DECLINED_ON_CHARGE)
    assert len(localstripe.call("GET", "/v1/setup_intents?limit=100")["data"]) == 2
    assert _intents(localstripe) == []

    assert campaign_close(campaign=campaign, force=True)

    paid.refresh_from_db(), declined.refresh_from_db()
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.SUCCESSFUL
    assert paid.status == PledgeStatus.CHARGED
    assert declined.status == PledgeStatus.PAYMENT_FAILED and declined.grace_until
    payment = Payment.objects.get(reference=paid.payment_reference)
    assert payment.status == PaymentStatus.SUCCEEDED and payment.provider_ref.startswith("pi_")
    intents = _intents(localstripe)
    succeeded = [i for i in intents if i["status"] == "succeeded"]
    assert [i["amount"] for i in succeeded] == [3000]
    assert all(i["metadata"]["reference"].startswith("pledge:") for i in intents)

    # A worker that died after Stripe charged but before we recorded it.
    Pledge.objects.filter(pk=paid.pk).update(status=PledgeStatus.CHARGING)
    Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.PENDING, provider_ref="")
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.SETTLING)
    settlement_run_chunk(kind="pledge", parent_id=campaign.pk, first_id=paid.pk, last_id=paid.pk)
    assert len(_intents(localstripe)) == len(intents)
    paid.refresh_from_db(), payment.refresh_from_db()
    assert paid.status == PledgeStatus.CHARGED
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.provider_ref == succeeded[0]["id"]


def test_goal_missed_creates_no_payment_intent(localstripe):
    campaign = campaign_live(goal="500.00")
    pledges = [_pledge(localstripe, campaign, VISA) for _ in range(2)]
    assert campaign_close(campaign=campaign, force=True)
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.FAILED
    assert _intents(localstripe) == []
    assert {p.status for p in Pledge.objects.filter(pk__in=[p.pk for p in pledges])} == {
        PledgeStatus.RELEASED
    }
