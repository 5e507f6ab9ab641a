"""{% user_name user %}: a member's public name, with a "Brand" or "Staff" mark for the accounts
that speak for a brand or for Fanhub, wherever a name is shown. Names are unique and may not
imitate a brand or staff (accounts.names), so the mark is the only way to look official.

    {% load user_names %}
    {% user_name post.author community=community %}
    {% user_name review.user brand=product.brand %}

Given a community or brand, an operator of that brand is marked "Brand"; an operator of
another brand is marked with that brand's name, so it cannot pass for this one's team."""

from django import template
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from accounts.models import User

register = template.Library()


def _operated_brands(context: template.Context, user: User) -> list[tuple[int, str]]:
    """(id, name) of the brands the user runs, once per user and request. Operators use the
    admin, so they are staff accounts: a fan's name costs no query."""
    if not user.is_staff:
        return []
    request = context.get("request")
    cache: dict[int, list[tuple[int, str]]] = {}
    if request is not None:
        cache = request.__dict__.setdefault("_operated_brands_by_user", {})
    if user.pk not in cache:
        cache[user.pk] = list(user.operated_brands.order_by("name").values_list("pk", "name"))
    return cache[user.pk]


def user_badge(context: template.Context, user: User, *, brand_id: int | None) -> str:
    brands = _operated_brands(context, user)
    if brands:
        names = ", ".join(name for _, name in brands)
        ours = brand_id is None or any(pk == brand_id for pk, _ in brands)
        label = "Brand" if ours else names
        return format_html(
            ' <span class="badge badge-brand" title="Speaks for {}">{}</span>', names, label
        )
    if user.is_staff or user.is_superuser:
        return format_html(
            ' <span class="badge badge-info badge-staff" title="Fanhub staff">{}</span>', "Staff"
        )
    return SafeString("")


@register.simple_tag(takes_context=True)
def user_name(
    context: template.Context, user: User | None, community=None, brand=None, link: bool = False
) -> str:
    """`link=True`: the name links to the member's public profile (/u/<handle>/)."""
    if user is None:
        return format_html('<span class="user-name">{}</span>', "A former member")
    if brand is not None:
        brand_id = getattr(brand, "pk", brand)
    elif community is not None:
        brand_id = getattr(community, "brand_id", None)
    else:
        brand_id = None
    html = format_html(
        '<span class="user-name">{}</span>{}',
        user.public_name,
        user_badge(context, user, brand_id=brand_id),
    )
    if link and user.handle:
        # By its name only: the profile page is communities' (accounts imports no app of ours).
        url = reverse("communities:member", args=[user.handle])
        return format_html('<a class="user-name-link" href="{}">{}</a>', url, html)
    return html
