"""The composers' @mention autocomplete in a real browser: typing "@ma" lists the community's
members, the arrow and Enter keys insert the handle, and the post that is sent notifies the
member once."""

import pytest
from playwright.sync_api import expect

from communities.models import Community, Membership, Role
from notifications.models import Notification, NotificationKind
from tests.e2e.steps import sign_in
from tests.factories import BrandFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_typing_at_and_a_prefix_offers_members_and_inserts_the_handle(live_server, page, password):
    club = Community.objects.create(
        name="Nimbus Fans", slug="nimbus-fans", kind="brand", brand=BrandFactory()
    )
    author = UserFactory(display_name="Lin")
    maya = UserFactory(display_name="Maya Rivers")
    stranger = UserFactory(display_name="Mark Outside")  # a member of nothing
    for user in (author, maya):
        Membership.objects.create(community=club, user=user, role=Role.MEMBER)

    sign_in(page, live_server.url, author.email, password)
    page.goto(f"{live_server.url}/c/{club.slug}/")
    page.fill("input[name=title]", "Battery life")
    body = page.locator("textarea[name=body]")
    body.click()
    body.press_sequentially("Thanks @ma", delay=30)
    options = page.locator(".mention-list [data-handle]")
    expect(options).to_have_count(1)
    expect(options.first).to_contain_text("Maya Rivers")
    expect(page.locator(".mention-list")).not_to_contain_text(stranger.public_name)
    body.press("ArrowDown")
    body.press("Enter")
    expect(body).to_have_value(f"Thanks @{maya.handle} ")
    expect(page.locator(".mention-list")).to_be_hidden()
    body.press_sequentially("for the tip", delay=10)
    page.locator(".post-composer").get_by_role("button", name="Publish").click()
    expect(page.locator("main")).to_contain_text("Battery life")
    mentions = Notification.objects.filter(recipient=maya, kind=NotificationKind.MENTION)
    assert mentions.count() == 1
