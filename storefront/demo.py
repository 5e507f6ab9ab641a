"""Demo data for `make run` and `manage.py seed_demo`. Idempotent: every row is found by its
natural key and created only when missing, so running it again changes nothing. Each feature
issue adds its part here (communities, products, batches, campaigns)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from allauth.account.models import EmailAddress
from django.contrib.auth.models import Group, Permission
from django.core.files.base import ContentFile
from django.db import transaction
from PIL import Image, ImageDraw, ImageFont

from accounts.models import User
from catalog.models import Brand, BrandInvitation, BrandOperator, BrandRole
from catalog.team import brand_invitation_create, brand_operator_add, team_sync_groups
from crowdfunding.permissions import CROWDFUNDING_OPERATOR_PERMISSIONS
from storefront.demo_campaigns import demo_seed_campaigns
from storefront.demo_catalog import demo_seed_catalog
from storefront.demo_communities import demo_seed_communities
from storefront.demo_history import demo_seed_history
from storefront.demo_marketing import demo_seed_marketing
from storefront.demo_orders import demo_seed_orders
from storefront.demo_preorders import demo_seed_preorders
from storefront.info_pages import pages_seed

DEMO_PASSWORD = "fanhub-demo-2026"  # noqa: S105 - published demo password, DEBUG only
OPERATORS_GROUP = "Brand operators"
# Operators may manage these models; the admin scopes every one to their brands.
OPERATOR_PERMISSIONS = {
    "catalog": [
        "view_brand",
        "change_brand",  # owners only, per brand (catalog.team); staff see the brand
        "view_brandoperator",  # the team, read-only for staff
        *(
            f"{action}_{model}"
            for action in ("view", "add", "change", "delete")
            for model in ("product", "variant", "productimage", "productspecification")
        ),
        "view_stockalert",  # who waits for a sold-out variant (storefront/migrations/0003)
    ],
    "reviews": ["view_review", "change_review", "view_reviewreport"],
    # Vouchers (codes inline, their uses) and QR placements (storefront/migrations/0005).
    "marketing": [
        *(
            f"{action}_{model}"
            for action in ("view", "add", "change", "delete")
            for model in ("voucher", "vouchercode", "placement")
        ),
        "view_voucheruse",
    ],
    # Their parts of shared orders and those parts' refunds (storefront/migrations/0002).
    "orders": [
        "view_order",
        "change_order",
        "view_orderline",
        "view_orderevent",
        "view_orderpart",
        "view_orderrefund",
    ],
    "communities": [
        "view_community",
        "change_community",
        "view_membership",
        "change_membership",
        "view_post",
        "change_post",
        # The Reports and Ideas admin (storefront/migrations/0001 grants these in production).
        "view_report",
        "change_report",
        "view_idea",
        "change_idea",
    ],
    "preorders": [
        *(
            f"{action}_{model}"
            for action in ("view", "add", "change", "delete")
            for model in ("preorderbatch", "pricetier", "variantcap")
        ),
        "view_reservation",
        "view_waitlistentry",
        "view_preorderevent",
    ],
    "crowdfunding": CROWDFUNDING_OPERATOR_PERMISSIONS,
}


@dataclass(frozen=True)
class DemoBrand:
    name: str
    slug: str
    colour: str
    story: str
    operator_email: str  # the brand's owner

    @property
    def staff_email(self) -> str:
        return self.operator_email.replace("ops@", "staff@")

    @property
    def invited_email(self) -> str:
        return self.operator_email.replace("ops@", "new.colleague@")


DEMO_BRANDS = [
    DemoBrand(
        name="Nimbus Mobile",
        slug="nimbus-mobile",
        colour="#ff6a00",
        story="Phones and wearables designed with our fans: every flagship starts as a fan vote.",
        operator_email="ops@nimbus.example",
    ),
    DemoBrand(
        name="Forge Audio",
        slug="forge-audio",
        colour="#2563eb",
        story="Headphones and speakers tuned by a community of listeners and makers.",
        operator_email="ops@forge.example",
    ),
]
DEMO_FANS = [
    ("lin@fans.example", "Lin"),
    ("maya@fans.example", "Maya"),
    ("omar@fans.example", "Omar"),
    ("sofia@fans.example", "Sofia"),
    ("kenji@fans.example", "Kenji"),
    ("ada@fans.example", "Ada"),
]
ADMIN_EMAIL = "admin@fanhub.example"


@dataclass
class DemoSummary:
    logins: list[tuple[str, str, str]] = field(default_factory=list)  # (role, email, password)
    created: dict[str, int] = field(default_factory=dict)

    def count(self, what: str, created: bool) -> None:
        self.created[what] = self.created.get(what, 0) + int(created)


def draw_logo(*, text: str, colour: str, size: int = 256) -> ContentFile:
    """A round logo with the brand's initials, drawn with Pillow."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((4, 4, size - 4, size - 4), fill=colour)
    initials = "".join(word[0] for word in text.split()[:2]).upper()
    font = ImageFont.load_default(size=size // 3)
    draw.text((size / 2, size / 2), initials, fill="white", font=font, anchor="mm")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return ContentFile(out.getvalue(), name=f"{text.lower().replace(' ', '-')}.png")


def _user(summary: DemoSummary, *, email: str, display_name: str, role: str, **flags: bool) -> User:
    user, created = User.objects.get_or_create(
        email=email, defaults={"display_name": display_name, **flags}
    )
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
    EmailAddress.objects.get_or_create(
        user=user, email=email, defaults={"verified": True, "primary": True}
    )
    summary.count("users", created)
    summary.logins.append((role, email, DEMO_PASSWORD))
    return user


def _operators_group() -> Group:
    group, _ = Group.objects.get_or_create(name=OPERATORS_GROUP)
    for app_label, codenames in OPERATOR_PERMISSIONS.items():
        permissions = Permission.objects.filter(
            content_type__app_label=app_label, codename__in=codenames
        )
        group.permissions.add(*permissions)
    return group


def _demo_team(brand: Brand, *, owner: User, staff: User, invited: str) -> None:
    """An owner, a staff member the owner added, and an invitation waiting for a colleague:
    each step through catalog.team, so the audit log has their entries. Once only."""
    if not BrandOperator.objects.filter(brand=brand, user=owner).exists():
        brand_operator_add(brand=brand, user=owner, role=BrandRole.OWNER, actor=None)
    else:
        team_sync_groups(user=owner)
    if not BrandOperator.objects.filter(brand=brand, user=staff).exists():
        brand_operator_add(brand=brand, user=staff, role=BrandRole.STAFF, actor=owner)
    if not BrandInvitation.objects.filter(brand=brand, email=invited).exists():
        brand_invitation_create(brand=brand, email=invited, role=BrandRole.STAFF, actor=owner)


@transaction.atomic
def demo_seed() -> DemoSummary:
    summary = DemoSummary()
    _user(
        summary,
        email=ADMIN_EMAIL,
        display_name="Fanhub admin",
        role="superuser",
        is_staff=True,
        is_superuser=True,
    )
    _operators_group()
    operators_by_brand = {}
    for demo in DEMO_BRANDS:
        operator = _user(
            summary,
            email=demo.operator_email,
            display_name=f"{demo.name} team",
            role=f"owner of {demo.name}",
            is_staff=True,
        )
        staff = _user(
            summary,
            email=demo.staff_email,
            display_name=f"{demo.name} staff",
            role=f"staff of {demo.name} (refunds up to the brand's limit)",
            is_staff=True,
        )
        brand, created = Brand.objects.get_or_create(
            slug=demo.slug, defaults={"name": demo.name, "story": demo.story}
        )
        summary.count("brands", created)
        if not brand.logo:
            logo = draw_logo(text=demo.name, colour=demo.colour)
            brand.logo.save(logo.name, logo, save=False)
            brand.save(update_fields=["logo"])
        _demo_team(brand, owner=operator, staff=staff, invited=demo.invited_email)
        operators_by_brand[demo.slug] = operator
    fans = [_user(summary, email=email, display_name=name, role="fan") for email, name in DEMO_FANS]
    for what, count in demo_seed_catalog(fans=fans).items():
        summary.created[what] = count
    summary.created["orders"] = demo_seed_orders(fans=fans)
    summary.created["communities"] = demo_seed_communities(
        fans=fans, operators_by_brand=operators_by_brand
    )
    summary.created["pre-order batches"] = demo_seed_preorders(
        fans=fans, operators_by_brand=operators_by_brand
    )
    summary.created["campaigns"] = demo_seed_campaigns(
        fans=fans, operators_by_brand=operators_by_brand
    )
    summary.created["site pages"] = pages_seed()
    summary.created["brands with vouchers and placements"] = demo_seed_marketing(fans=fans)
    summary.created["brands with eight weeks of history"] = demo_seed_history()
    return summary
