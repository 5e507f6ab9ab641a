"""A fan, in a real browser: finds a community, joins, posts with a picture, comments and
likes (htmx); a moderator then hides the post and bans the author."""

import pytest
from PIL import Image
from playwright.sync_api import expect

from communities.models import Community, Membership, MembershipStatus, Post, Role
from communities.polls import poll_create
from communities.services import post_create
from tests.e2e.steps import sign_in
from tests.factories import BrandFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_fan_joins_posts_comments_likes_and_gets_moderated(
    live_server, page, password, tmp_path, browser
):
    base = live_server.url
    community = Community.objects.create(
        name="Nimbus Fans",
        slug="nimbus-fans",
        kind="brand",
        brand=BrandFactory(name="Nimbus Mobile"),
    )
    moderator = UserFactory(display_name="Mod")
    Membership.objects.create(community=community, user=moderator, role=Role.OWNER)
    fan = UserFactory(display_name="Lin")

    sign_in(page, base, fan.email, password)
    page.goto(f"{base}/c/?q=nimbus")
    page.get_by_role("link", name="Nimbus Fans").first.click()
    page.get_by_role("button", name="Join").click()
    expect(page.locator("body")).to_contain_text("Welcome to Nimbus Fans!")

    picture = tmp_path / "desk.png"
    Image.new("RGB", (1200, 800), "teal").save(picture)
    page.fill("input[name=title]", "My desk setup")
    page.fill("textarea[name=body]", "Finally **done**.")
    page.set_input_files("input[name=image]", str(picture))
    page.get_by_role("button", name="Publish").click()
    expect(page.locator("main")).to_contain_text("My desk setup")
    expect(page.locator("main strong", has_text="done")).to_be_visible()
    assert page.locator("main img[alt='My desk setup']").count() == 1

    page.locator("textarea[name=body]").last.fill("Looks great")
    page.get_by_role("button", name="Post comment").click()
    expect(page.locator("#comments")).to_contain_text("Looks great")
    like = page.locator("form[action$='/like/'] button").first
    like.click()  # htmx swaps the button in place
    expect(page.locator("form[action$='/like/'] button").first).to_contain_text("1")
    post = Post.objects.get(title="My desk setup")
    assert (post.like_count, post.comment_count) == (1, 1)

    # A poll by the moderator: vote, then see the results.
    poll_post = post_create(
        community=community, author=moderator, title="Next colour", body="Vote!"
    )
    poll_create(post=poll_post, question="Which colour?", options=["Sunset", "Lime"])
    page.goto(f"{base}/c/nimbus-fans/posts/{poll_post.pk}/")
    page.get_by_label("Lime").check()
    page.get_by_role("button", name="Vote").click()
    expect(page.locator("main")).to_contain_text("100%")

    # An idea: propose it, and it shows with one upvote once voted.
    page.goto(f"{base}/c/nimbus-fans/ideas/")
    page.fill("input[name=title]", "A compact X3")
    page.fill("textarea[name=description]", "One-hand phone, please.")
    page.get_by_role("button", name="Propose").click()
    expect(page.locator("main")).to_contain_text("A compact X3")
    page.locator("form[action$='/upvote/'] button").first.click()
    expect(page.locator("form[action$='/upvote/'] button").first).to_contain_text("1")

    # Report the moderator's post.
    page.goto(f"{base}/c/nimbus-fans/posts/{poll_post.pk}/")
    page.locator("summary", has_text="Report this post").click()
    page.fill("#report-post-reason", "Off topic")
    page.get_by_role("button", name="Send report").click()
    expect(page.locator("body")).to_contain_text("the moderators will take a look")

    # Points, level and badges on the community page.
    page.goto(f"{base}/c/nimbus-fans/")
    expect(page.locator("main")).to_contain_text("First post")
    expect(page.locator("main")).to_contain_text("Lv1")

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    moderator_page = context.new_page()
    sign_in(moderator_page, base, moderator.email, password)
    moderator_page.goto(f"{base}/c/nimbus-fans/posts/{post.pk}/")
    moderator_page.locator("summary", has_text="Ban author").click()
    moderator_page.get_by_role("button", name="Ban Lin").click()
    expect(moderator_page.locator("body")).to_contain_text("Lin is banned from Nimbus Fans.")
    moderator_page.goto(f"{base}/c/nimbus-fans/posts/{post.pk}/")
    moderator_page.get_by_role("button", name="Hide this post").click()
    expect(moderator_page.locator("body")).to_contain_text("The post was removed.")
    context.close()
    post.refresh_from_db()
    assert post.hidden_at is not None
    assert Membership.objects.get(user=fan).status == MembershipStatus.BANNED
    # The banned fan can no longer read the post or post.
    page.goto(f"{base}/c/nimbus-fans/")
    expect(page.locator("main")).to_contain_text("You are banned from this community")
