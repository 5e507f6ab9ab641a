"""One identity across the site: every member has a unique @handle; a mention by handle
notifies its member once; the composers' autocomplete lists only members of a community the
asker belongs to; names link to a public profile that shows levels, badges and posts of the
communities the viewer may read, and nothing private."""

import importlib
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.handles import handle_check, handle_from_name, handle_suggest
from accounts.models import User
from communities.honour import badge_grant, points_award
from communities.models import Community, Membership, Role, Visibility
from communities.profiles import MENTION_LOOKUPS_PER_MINUTE
from communities.services import comment_create, post_create
from notifications.models import Notification, NotificationKind
from tests.factories import TEST_PASSWORD, BrandFactory, UserFactory, VariantFactory
from tests.shop import order_paid

pytestmark = pytest.mark.django_db


def _club(slug="nimbus-fans", visibility=Visibility.PUBLIC, brand=None) -> Community:
    return Community.objects.create(
        name=slug.replace("-", " ").title(),
        slug=slug,
        kind="brand",
        brand=brand or BrandFactory(),
        visibility=visibility,
    )


def _member(community, user=None, role=Role.MEMBER):
    user = user or UserFactory()
    Membership.objects.create(community=community, user=user, role=role)
    return user


def _mentions(user) -> int:
    return Notification.objects.filter(recipient=user, kind=NotificationKind.MENTION).count()


# --- handles -------------------------------------------------------------------------------


def test_every_member_gets_a_unique_handle_from_their_name():
    first = UserFactory(display_name="Audit Sh1")
    assert first.handle == "audit-sh1"
    second = UserFactory(display_name="audit_sh1 ")  # another name that makes the same handle?
    assert second.handle != first.handle
    nameless = User.objects.create_user(email="quiet@example.com", password=TEST_PASSWORD)
    assert nameless.handle and "quiet" not in nameless.handle  # never from the email address
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.filter(pk=second.pk).update(handle=first.handle)
    with pytest.raises(IntegrityError), transaction.atomic():  # stored lowercase only
        User.objects.filter(pk=second.pk).update(handle="Audit-Sh1")


@pytest.mark.parametrize(
    "handle",
    ["ab", "x" * 31, "has space", "émile", "me", "admin", "fanhub-support", "the_moderator",
     "nimbus-team", "member-12", "fan-99999"],
)  # fmt: skip
def test_bad_reserved_and_imitating_handles_are_refused(handle):
    BrandFactory(name="Nimbus", slug="nimbus")
    with pytest.raises(ValidationError):
        handle_check(handle=handle, user=UserFactory())


def test_a_taken_handle_is_refused_and_a_suggestion_is_free():
    UserFactory(display_name="Maya")
    with pytest.raises(ValidationError, match="already uses"):
        handle_check(handle="maya", user=None)
    assert handle_suggest(name="Maya") not in {"maya", ""}
    assert handle_from_name("Zoë  Rivers!") == "zoe-rivers"


def test_the_data_migration_fills_handles_from_names_deduplicated():
    migration = importlib.import_module("accounts.migrations.0005_handles_fill")
    a = UserFactory(display_name="Same Name")
    b = UserFactory(display_name="Sàme-Name")
    c = UserFactory(display_name="")
    for user in (a, b, c):  # as before the migration (its column is not unique yet)
        User.objects.filter(pk=user.pk).update(handle=f"old-{user.pk}")
    User.objects.exclude(pk__in=[a.pk, b.pk, c.pk]).delete()

    from django.apps import apps

    migration.handles_fill(apps, None)
    handles = dict(User.objects.values_list("pk", "handle"))
    assert handles[a.pk] == "same-name"
    assert handles[b.pk] == "same-name-2"
    assert handles[c.pk] == f"fan-{c.pk}"


def test_a_member_chooses_a_handle_on_the_profile(client):
    fan = UserFactory(display_name="Omar")
    UserFactory(display_name="Lena")
    client.force_login(fan)
    page = client.get("/accounts/profile/")
    assert f'value="{fan.handle}"' in page.content.decode()
    assert page.content.decode().count(fan.email) <= 1  # the menu's, not the profile's too
    taken = client.post("/accounts/profile/", {"display_name": "Omar", "handle": "lena"})
    assert taken.status_code == 400 and "already uses that handle" in taken.content.decode()
    done = client.post("/accounts/profile/", {"display_name": "Omar", "handle": "@Omar_B"})
    assert done.status_code == 302
    fan.refresh_from_db()
    assert fan.handle == "omar_b"


def test_the_handle_is_chosen_at_sign_up_or_made_from_the_name(client):
    response = client.post(
        "/accounts/signup/",
        {
            "display_name": "Kai Fan",
            "handle": "kai_f",
            "email": "kai@example.com",
            "password1": TEST_PASSWORD,
            "password2": TEST_PASSWORD,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert User.objects.get(email="kai@example.com").handle == "kai_f"
    client.logout()
    client.post(
        "/accounts/signup/",
        {
            "display_name": "Ria Fan",
            "email": "ria@example.com",
            "password1": TEST_PASSWORD,
            "password2": TEST_PASSWORD,
        },
    )
    assert User.objects.get(email="ria@example.com").handle == "ria-fan"


# --- mentions ------------------------------------------------------------------------------


def test_a_mention_by_handle_notifies_its_member_once():
    club = _club()
    author = _member(club)
    maya = _member(club, UserFactory(display_name="Audit SH1"))
    assert maya.handle == "audit-sh1"
    outsider = UserFactory(display_name="Outsider")
    post = post_create(
        community=club,
        author=author,
        title="Battery",
        body="@audit-sh1 and @AUDIT-SH1 again, and @outsider, and @audit-sh1.",
    )
    assert _mentions(maya) == 1
    assert _mentions(outsider) == 0  # not a member: not told
    comment_create(post=post, author=author, body="What do you think, @audit-sh1?")
    assert _mentions(maya) == 2
    comment_create(post=post, author=maya, body="I mention myself: @audit-sh1")
    assert _mentions(maya) == 2


def test_a_mention_by_a_display_name_still_works():
    club = _club()
    author, lena = _member(club), _member(club, UserFactory(display_name="Lena"))
    post_create(community=club, author=author, title="Hi", body="Thanks @Lena!")
    assert _mentions(lena) == 1


# --- autocomplete --------------------------------------------------------------------------


def test_autocomplete_lists_only_members_of_the_community(client):
    club, other = _club(), _club("forge-fans")
    asker = _member(club)
    mara = _member(club, UserFactory(display_name="Mara"))
    _member(other, UserFactory(display_name="Marco"))  # a member elsewhere
    UserFactory(display_name="Marta")  # a member of nothing
    client.force_login(asker)
    response = client.get(f"/c/{club.slug}/mentions/", {"q": "mar"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200
    assert f'data-handle="{mara.handle}"' in html
    assert "Marco" not in html and "Marta" not in html
    assert UserFactory().email not in html


def test_autocomplete_respects_private_communities_and_needs_a_member(client):
    secret = _club("secret", visibility=Visibility.PRIVATE)
    _member(secret, UserFactory(display_name="Hidden Hannah"))
    public = _club("open")
    _member(public, UserFactory(display_name="Hank"))
    assert client.get(f"/c/{secret.slug}/mentions/", {"q": "h"}).status_code == 302  # sign in
    client.force_login(UserFactory())
    assert client.get(f"/c/{secret.slug}/mentions/", {"q": "h"}).status_code == 404
    assert client.get(f"/c/{public.slug}/mentions/", {"q": "h"}).status_code == 403


def test_autocomplete_is_rate_limited(client):
    club = _club()
    asker = _member(club)
    cache.delete(f"communities:mention-lookup:{asker.pk}")
    client.force_login(asker)
    codes = [
        client.get(f"/c/{club.slug}/mentions/", {"q": "a"}).status_code
        for _ in range(MENTION_LOOKUPS_PER_MINUTE + 1)
    ]
    assert codes[:-1] == [200] * MENTION_LOOKUPS_PER_MINUTE and codes[-1] == 429


def test_the_composers_carry_the_autocomplete_without_inline_script(client):
    club = _club()
    author = _member(club)
    post = post_create(community=club, author=author, title="Hello", body="Body")
    client.force_login(author)
    for url in (f"/c/{club.slug}/", post.get_absolute_url()):
        html = client.get(url).content.decode()
        assert f'data-mentions="/c/{club.slug}/mentions/"' in html
        assert "js/mentions.js" in html


# --- public profile ------------------------------------------------------------------------


def test_the_public_profile_shows_levels_badges_and_posts_and_nothing_private(client):
    brand = BrandFactory(name="Nimbus", slug="nimbus")
    club = _club(brand=brand)
    secret = _club("inner-circle", visibility=Visibility.PRIVATE)
    fan = _member(club, UserFactory(display_name="Zed"))
    _member(secret, fan)
    points_award(community=club, user_id=fan.pk, points=60, reason="test", source="t:1")
    badge_grant(community=club, user_id=fan.pk, code="first_post")
    post_create(community=club, author=fan, title="Open thoughts", body="hi")
    post_create(community=secret, author=fan, title="Secret plans", body="hush")
    order = order_paid(
        variant=VariantFactory(product__brand=brand, price=Decimal("2397.00"), stock=5),
        buyer=fan,
    )

    page = client.get(f"/u/{fan.handle}/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Zed" in html and f"@{fan.handle}" in html
    assert club.name in html and "Lv3" in html and "First post" in html
    assert "Open thoughts" in html
    assert "Secret plans" not in html and secret.name not in html
    assert fan.email not in html and order.number not in html and "2,397" not in html

    insider = _member(secret)
    client.force_login(insider)
    html = client.get(f"/u/{fan.handle}/").content.decode()
    assert "Secret plans" in html and secret.name in html  # a fellow member may see it
    assert fan.email not in html and order.number not in html


def test_names_link_to_the_profile_and_staff_keep_their_mark(client):
    club = _club()
    staff = _member(club, UserFactory(display_name="Sam", is_staff=True))
    post = post_create(community=club, author=staff, title="Welcome", body="Hi all")
    html = client.get(post.get_absolute_url()).content.decode()
    assert f'href="/u/{staff.handle}/"' in html
    profile = client.get(f"/u/{staff.handle}/").content.decode()
    assert "badge-staff" in profile
    assert client.get("/u/nobody-here/").status_code == 404


def test_the_profile_shows_progress_to_the_next_level_and_the_pre_orders_link(client):
    club = _club()
    fan = _member(club)
    points_award(community=club, user_id=fan.pk, points=30, reason="test", source="t:2")
    client.force_login(fan)
    honour = client.get("/account/summary/").content.decode()
    assert "20 points to Lv3" in honour and 'value="50"' in honour
    profile = client.get("/accounts/profile/").content.decode()
    assert profile.count('href="/preorders/mine/"') == 2  # the account menu and the nav


def test_the_monthly_leaderboard_never_shows_part_of_an_email_address(client):
    club = _club()
    nameless = _member(club, UserFactory(display_name="", email="secret.local@example.com"))
    points_award(community=club, user_id=nameless.pk, points=12, reason="test", source="t:3")
    html = client.get(f"/c/{club.slug}/leaderboard/").content.decode()
    assert f"Member #{nameless.pk}" in html and "secret.local" not in html


@pytest.mark.parametrize("handle", ["nimbus", "n1mbus", "forge"])
def test_a_handle_that_is_a_brands_own_word_is_refused(handle):
    """Found by a hostile tester: "@nimbus" reads as the brand's official account."""
    BrandFactory(name="Nimbus Mobile", slug="nimbus-mobile")
    BrandFactory(name="Forge Audio", slug="forge-audio")
    with pytest.raises(ValidationError, match="sounds like the brand"):
        handle_check(handle=handle, user=UserFactory())
