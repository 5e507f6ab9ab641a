"""The operators' side of campaigns: set up with tiers and a stretch goal, launch, close
now, cancel, the fulfilment CSV, ticket check-in, pledges searched by email; each operator
sees only their brand's."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from audit.selectors import audit_entries_visible
from catalog.exports import export_job_run
from catalog.models import ExportJob
from crowdfunding.models import (
    Campaign,
    CampaignEvent,
    CampaignStatus,
    PledgeStatus,
    RewardTicket,
)
from crowdfunding.services import campaign_close
from tests.crowdfunding import brand_community, campaign_live, pledge
from tests.factories import BrandFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _operator(brand):
    user = UserFactory(is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="crowdfunding"))
    brand.operators.add(user)
    return type(user).objects.get(pk=user.pk)


def _inline(prefix, rows):
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for n, row in enumerate(rows):
        data.update({f"{prefix}-{n}-{key}": value for key, value in row.items()})
    return data


def test_an_operator_sets_up_and_launches_a_campaign_with_tiers_and_a_stretch_goal(client):
    mine, theirs = BrandFactory(), BrandFactory()
    community, their_community = brand_community(mine), brand_community(theirs)
    operator = _operator(mine)
    client.force_login(operator)
    form = client.get("/admin/crowdfunding/campaign/add/").content.decode()
    community_select = re.search(r'<select name="community".*?</select>', form, re.S).group(0)
    assert f'value="{community.pk}"' in community_select
    assert f'value="{their_community.pk}"' not in community_select
    now = timezone.localtime()
    data = {
        "brand": mine.pk,
        "community": community.pk,
        "title": "Nimbus Pods",
        "slug": "nimbus-pods",
        "summary": "Earbuds fans designed",
        "story": "## Why\n<script>alert(1)</script> **Because**",
        "video_url": "https://www.youtube.com/watch?v=x",
        "goal": "1000.00",
        "funding_model": "all_or_nothing",
        "launch_at_0": now.strftime("%Y-%m-%d"),
        "launch_at_1": (now - timedelta(minutes=1)).strftime("%H:%M:%S"),
        "deadline_0": (now + timedelta(days=10)).strftime("%Y-%m-%d"),
        "deadline_1": "12:00:00",
        **_inline(
            "tiers",
            [
                {
                    "title": "Early bird",
                    "min_amount": "49.00",
                    "limit": "50",
                    "kind": "digital",
                    "position": "0",
                },
                {
                    "title": "Meet the team",
                    "min_amount": "200.00",
                    "limit": "10",
                    "kind": "experience",
                    "position": "1",
                },
            ],
        ),
        **_inline("stretch_goals", [{"amount": "2000.00", "title": "Wireless case"}]),
    }
    response = client.post("/admin/crowdfunding/campaign/add/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    campaign = Campaign.objects.get(slug="nimbus-pods")
    assert campaign.status == CampaignStatus.DRAFT
    assert (
        "<script>" not in campaign.story_html and "<strong>Because</strong>" in campaign.story_html
    )
    assert campaign.tiers.count() == 2 and campaign.stretch_goals.count() == 1
    tiers = AuditEntry.objects.filter(action="rewardtier.create").order_by("id")
    assert [(e.actor, e.brand_id, e.parent_object_id) for e in tiers] == [
        (operator, mine.pk, str(campaign.pk))
    ] * 2
    assert tiers[0].after == {
        "title": "Early bird",
        "min_amount": "49.00",
        "limit": 50,
        "kind": "digital",
        "variant_id": None,
    }
    goal = AuditEntry.objects.get(action="stretchgoal.create")
    assert goal.after == {"amount": "2000.00", "title": "Wireless case"}
    assert client.get(campaign.get_absolute_url()).status_code == 200  # the brand sees its draft
    launched = client.post(
        "/admin/crowdfunding/campaign/",
        {"action": "launch", "_selected_action": [campaign.pk]},
        follow=True,
    )
    assert "Nimbus Pods: launched" in launched.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.LIVE
    assert CampaignEvent.objects.filter(
        campaign=campaign, to_status=CampaignStatus.LIVE, actor=operator
    ).exists()
    # Another brand's operator: the campaign does not exist for them.
    client.force_login(_operator(theirs))
    assert "Nimbus Pods" not in client.get("/admin/crowdfunding/campaign/").content.decode()
    page = client.get(f"/admin/crowdfunding/campaign/{campaign.pk}/change/")
    assert page.status_code == 302
    client.post(
        "/admin/crowdfunding/campaign/",
        {"action": "close_now", "_selected_action": [campaign.pk]},
    )
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.LIVE
    assert not audit_entries_visible(user=_operator(theirs)).exists()


def test_a_bad_window_or_community_is_a_form_error(client):
    mine, theirs = BrandFactory(), BrandFactory()
    client.force_login(_operator(mine))
    theirs_community = brand_community(theirs)
    now = timezone.localtime()
    response = client.post(
        "/admin/crowdfunding/campaign/add/",
        {
            "brand": mine.pk,
            "community": theirs_community.pk,
            "title": "X",
            "slug": "x",
            "goal": "abc",
            "funding_model": "flexible",
            "launch_at_0": now.strftime("%Y-%m-%d"),
            "launch_at_1": "12:00:00",
            "deadline_0": (now - timedelta(days=1)).strftime("%Y-%m-%d"),
            "deadline_1": "12:00:00",
            **_inline("tiers", []),
            **_inline("stretch_goals", []),
        },
    )
    assert response.status_code == 200
    assert not Campaign.objects.exists()


def test_close_now_csv_pledges_search_and_ticket_check_in(client):
    campaign = campaign_live(goal="10.00", tiers=[("Meet-up", "20.00", 5, "experience")])
    tier = campaign.tiers.get()
    backer = pledge(campaign=campaign, amount="25.00", tier=tier)
    other = campaign_live(goal="10.00")
    pledge(campaign=other, amount="20.00")
    operator = _operator(campaign.brand)
    client.force_login(operator)
    found = client.get("/admin/crowdfunding/pledge/", {"q": backer.user.email}).content.decode()
    assert backer.user.email in found
    client.post(
        "/admin/crowdfunding/campaign/",
        {"action": "close_now", "_selected_action": [campaign.pk]},
    )
    campaign.refresh_from_db()
    backer.refresh_from_db()
    assert campaign.status == CampaignStatus.SUCCESSFUL and backer.status == PledgeStatus.CHARGED
    # The campaign's own button: a worker writes the file (a GET starts nothing).
    csv_url = f"/admin/crowdfunding/campaign/{campaign.pk}/fulfilment.csv"
    change_page = client.get(f"/admin/crowdfunding/campaign/{campaign.pk}/change/")
    assert f'formaction="{csv_url}" formmethod="post"' in change_page.content.decode()
    assert client.get(csv_url)["Location"].endswith(f"/campaign/{campaign.pk}/change/")
    assert not ExportJob.objects.exists()
    response = client.post(csv_url, follow=True)
    assert response.redirect_chain[0][0] == reverse("admin:catalog_exportjob_changelist")
    job = ExportJob.objects.get()
    export_job_run(job_id=job.pk)
    csv_text = client.get(reverse("admin:catalog_exportjob_download", args=[job.pk])).content
    csv_text = csv_text.decode()
    job.delete()
    assert backer.user.email in csv_text and "Meet-up" in csv_text
    ticket = RewardTicket.objects.get(pledge=backer)
    assert ticket.code in csv_text
    assert other.pledges.get().user.email not in csv_text
    # The action: a worker writes the same file, offered on the exports page.
    response = client.post(
        "/admin/crowdfunding/campaign/",
        {"action": "fulfilment_csv", "_selected_action": [campaign.pk, other.pk]},
    )
    assert response["Location"] == reverse("admin:catalog_exportjob_changelist")
    job = ExportJob.objects.get()  # the other brand's campaign is not the operator's
    assert (job.user, job.brand, job.params) == (operator, campaign.brand, {"ids": [campaign.pk]})
    export_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert (job.status, job.rows_done, job.rows_total) == ("done", 1, 1)
    download = client.get(reverse("admin:catalog_exportjob_download", args=[job.pk]))
    assert download.content.decode() == csv_text
    # Check-in: once; a second time says when; another brand's operator finds no ticket.
    first = client.post("/admin/crowdfunding/rewardticket/check-in/", {"code": ticket.code})
    assert "checked in" in first.content.decode()
    ticket.refresh_from_db()
    assert ticket.checked_in_by == operator and ticket.checked_in_at
    again = client.post("/admin/crowdfunding/rewardticket/check-in/", {"code": ticket.code})
    assert "already checked in" in again.content.decode()
    client.force_login(_operator(other.brand))
    refused = client.post("/admin/crowdfunding/rewardticket/check-in/", {"code": ticket.code})
    assert "No ticket has this code" in refused.content.decode()
    assert not campaign_close(campaign=campaign, force=True)
