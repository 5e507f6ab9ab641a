"""A pre-order batch settled through the Stripe provider, against localstripe: the card is
saved with a SetupIntent at reserve, charged off-session at the close; a declined card and
one that needs authentication fail; a crashed run is resolved without a new PaymentIntent.
Small on purpose: localstripe slows down past a few hundred objects."""

import uuid
from collections.abc import Iterator

import pytest

from payments.models import Payment, PaymentStatus
from payments.providers.registry import provider_get
from payments.services import card_save
from payments.settlement import settlement_run_chunk
from preorders.models import BatchStatus, PreorderBatch, Reservation, ReservationStatus
from preorders.services import batch_close, reservation_create
from tests.factories import UserFactory
from tests.preorders import batch_open
from tests.shop import ADDRESS
from tests.stripe_server import SECRET_KEY, WEBHOOK_SECRET, LocalStripe

pytestmark = pytest.mark.django_db(transaction=True)

VISA = "4242424242424242"
DECLINED_ON_CHARGE = "4000000000000341"
NEEDS_AUTHENTICATION = "4000002500003155"


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


def _reserve(localstripe: LocalStripe, batch, number: str) -> Reservation:
    user = UserFactory()
    card = card_save(user=user, card={"payment_method": localstripe.payment_method(number)})
    return reservation_create(
        batch=batch,
        user=user,
        variant=batch.product.variants.first(),
        quantity=2,
        saved_card=card,
        address=ADDRESS,
        request_key=uuid.uuid4().hex,
    )


def _intents(localstripe: LocalStripe) -> list[dict]:
    return localstripe.call("GET", "/v1/payment_intents?limit=100")["data"]


def test_stripe_settlement_charges_off_session_and_a_rerun_makes_no_new_intent(localstripe):
    batch = batch_open(min_quantity=2)
    paid = _reserve(localstripe, batch, VISA)
    declined = _reserve(localstripe, batch, DECLINED_ON_CHARGE)
    needs_auth = _reserve(localstripe, batch, NEEDS_AUTHENTICATION)
    # A SetupIntent per reserve saved each card for off-session use; nothing charged yet.
    assert len(localstripe.call("GET", "/v1/setup_intents?limit=100")["data"]) == 3
    assert _intents(localstripe) == []

    batch_close(batch=batch, force=True)

    for reservation in (paid, declined, needs_auth):
        reservation.refresh_from_db()
    assert PreorderBatch.objects.get(pk=batch.pk).status == BatchStatus.CONFIRMED
    assert paid.status == ReservationStatus.CHARGED
    assert paid.order.total == paid.amount_charged
    payment = Payment.objects.get(reference=paid.payment_reference)
    assert payment.status == PaymentStatus.SUCCEEDED and payment.provider_ref.startswith("pi_")
    assert declined.status == ReservationStatus.PAYMENT_FAILED
    assert needs_auth.status == ReservationStatus.PAYMENT_FAILED
    assert (
        Payment.objects.get(reference=needs_auth.payment_reference).status
        == PaymentStatus.REQUIRES_ACTION
    )
    intents = _intents(localstripe)
    succeeded = [i for i in intents if i["status"] == "succeeded"]
    assert [i["amount"] for i in succeeded] == [int(paid.amount_charged * 100)]
    assert all(i["metadata"]["reference"].startswith("preorder-res:") for i in intents)

    # A worker that died after Stripe charged but before we recorded it: the reservation is
    # left charging and its payment pending. The re-run finds the PaymentIntent by its key.
    Reservation.objects.filter(pk=paid.pk).update(status=ReservationStatus.CHARGING, order=None)
    Payment.objects.filter(pk=payment.pk).update(status=PaymentStatus.PENDING, provider_ref="")
    PreorderBatch.objects.filter(pk=batch.pk).update(status=BatchStatus.SETTLING)
    settlement_run_chunk(kind="preorder", parent_id=batch.pk, first_id=paid.pk, last_id=paid.pk)

    assert len(_intents(localstripe)) == len(intents)
    paid.refresh_from_db()
    assert paid.status == ReservationStatus.CHARGED
    payment.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED
    assert payment.provider_ref == succeeded[0]["id"]
