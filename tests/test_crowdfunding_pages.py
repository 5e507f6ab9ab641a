"""The campaign pages: listing, detail (progress, tiers, goals, updates, comments), the pledge
form over HTTP (twice at once gives one pledge), my pledges, and what others cannot see."""

import threading
import uuid

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from crowdfunding.models import CampaignStatus, Pledge, UpdateAudience
from crowdfunding.services import comment_create, update_publish
from tests.crowdfunding import campaign_live, pledge
from tests.factories import UserFactory
from tests.shop import ADDRESS

pytestmark = pytest.mark.django_db


def _form(tier, amount="25.00", key=None, card="4242424242424242"):
    data = {
        "tier": tier.pk if tier else "",
        "amount": amount,
        "request_key": key or uuid.uuid4().hex,
        "number": card,
        "exp_month": "12",
        "exp_year": "2099",
        "cvc": "123",
    }
    data.update({f"address-{k}": v for k, v in ADDRESS.items()})
    return data


def test_listing_and_detail_show_progress_tiers_and_goals(client):
    campaign = campaign_live(
        goal="100.00",
        tiers=[("Early bird", "20.00", 2, "digital")],
        stretch=[("50.00", "Gold"), ("300.00", "Case"), ("900.00", "Secret drone")],
    )
    tier = campaign.tiers.get()
    for _ in range(3):
        pledge(campaign=campaign, amount="20.00", tier=tier if not Pledge.objects.count() else None)
    listing = client.get("/campaigns/").content.decode()
    assert campaign.title in listing and "60% funded" in listing
    with CaptureQueriesContext(connection) as queries:
        page = client.get(campaign.get_absolute_url())
    html = page.content.decode()
    assert page.status_code == 200
    assert "60% funded" in html and 'campaign-backers">3<' in html and "1 of 2 left" in html
    # Gold reached, Case next, the one after it waits for Case.
    assert "Gold" in html and "Case" in html and "Secret drone" not in html
    assert len(queries) <= 10
    draft = campaign_live(status=CampaignStatus.DRAFT)
    assert client.get(draft.get_absolute_url()).status_code == 404


def test_a_fan_pledges_over_http_twice_at_once_and_gets_one_pledge(transactional_db):
    campaign = campaign_live(goal="100.00", tiers=[("Thanks", "10.00", None, "digital")])
    tier = campaign.tiers.get()
    user = UserFactory()
    data = _form(tier)
    results = []

    def submit():
        client = Client()
        client.force_login(user)
        results.append(client.post(f"/campaigns/{campaign.slug}/pledge/", data).status_code)

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [302, 302]
    assert Pledge.objects.filter(user=user).count() == 1
    campaign.refresh_from_db()
    assert campaign.backer_count == 1


def test_bad_input_is_a_form_error_not_a_500(client):
    campaign = campaign_live(goal="100.00", tiers=[("Thanks", "10.00", None, "digital")])
    client.force_login(UserFactory())
    for data in [
        _form(campaign.tiers.get(), amount="abc"),
        _form(campaign.tiers.get(), amount="1.00"),
        {**_form(None), "tier": "999999"},
        _form(None, card="4000000000000002"),
    ]:
        response = client.post(f"/campaigns/{campaign.slug}/pledge/", data)
        assert response.status_code == 400
    assert Pledge.objects.count() == 0


def test_backers_only_update_is_a_404_for_others_by_guessed_id(client):
    campaign = campaign_live(goal="100.00")
    backer = pledge(campaign=campaign).user
    operator = UserFactory()
    secret = update_publish(
        campaign=campaign,
        author=operator,
        title="Secret",
        body="Only backers",
        audience=UpdateAudience.BACKERS,
    )
    url = f"/campaigns/{campaign.slug}/updates/{secret.pk}/"
    assert client.get(url).status_code == 404
    client.force_login(UserFactory())
    assert client.get(url).status_code == 404
    assert "Secret" not in client.get(campaign.get_absolute_url()).content.decode()
    client.force_login(backer)
    assert client.get(url).status_code == 200
    assert "Secret" in client.get(campaign.get_absolute_url()).content.decode()


def test_comments_mark_backers_and_my_pledges_page(client):
    campaign = campaign_live(goal="100.00")
    backer = pledge(campaign=campaign).user
    comment_create(campaign=campaign, author=backer, body="Love it")
    comment_create(campaign=campaign, author=UserFactory(), body="Hmm")
    html = client.get(campaign.get_absolute_url()).content.decode()
    assert html.count("backer-mark") == 1
    client.force_login(backer)
    mine = client.get("/campaigns/mine/").content.decode()
    assert campaign.title in mine
    other = pledge(campaign=campaign)
    assert client.get(other.get_absolute_url()).status_code == 404


def test_the_campaign_shows_on_the_brand_page_and_the_community_fragment(client):
    campaign = campaign_live(goal="100.00")
    pledge(campaign=campaign, amount="40.00")
    brand = campaign.brand
    assert campaign.title in client.get(brand.get_absolute_url()).content.decode()
    fragment = client.get(f"/brands/{brand.slug}/offers/").content.decode()
    assert campaign.title in fragment and "40% funded" in fragment
    community_page = client.get(campaign.community.get_absolute_url()).content.decode()
    assert f"/brands/{brand.slug}/offers/" in community_page  # loaded by htmx
    progress = client.get(f"/campaigns/{campaign.slug}/progress/").content.decode()
    assert "40% funded" in progress and "hx-trigger" in progress


@pytest.mark.django_db(transaction=True)
def test_a_pledge_charge_that_needs_authentication_is_confirmed_on_the_bank_page(client):
    from crowdfunding.book import PLEDGE_BOOK
    from crowdfunding.services import campaign_close
    from payments.models import Payment, PaymentStatus
    from tests.preorders import CARD_NEEDS_AUTH

    campaign = campaign_live(goal="10.00")
    backing = pledge(campaign=campaign, amount="20.00", card=CARD_NEEDS_AUTH)
    assert campaign_close(campaign=campaign, force=True)
    backing.refresh_from_db()
    assert backing.status == "payment_failed"
    client.force_login(backing.user)
    authenticate = f"/campaigns/pledges/{backing.pk}/authenticate/"
    assert authenticate in client.get(backing.get_absolute_url()).content.decode()
    response = client.post(
        f"/campaigns/pledges/{backing.pk}/pay/", {"saved_card": backing.saved_card_id}
    )
    assert response.status_code == 302 and response["Location"] == authenticate
    assert "$20.00" in client.get(authenticate).content.decode()
    response = client.post(authenticate, {"decision": "approve"})
    assert response["Location"] == backing.get_absolute_url()
    backing.refresh_from_db()
    assert backing.status == "charged" and backing.amount_charged == 20
    payments = Payment.objects.filter(reference=PLEDGE_BOOK.reference(backing.pk))
    assert [p.status for p in payments] == [PaymentStatus.SUCCEEDED]
    # Nothing waits for the bank any more: the page says so instead of asking again.
    assert client.get(authenticate)["Location"] == backing.get_absolute_url()
