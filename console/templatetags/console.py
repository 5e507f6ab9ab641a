from django import template

from catalog.models import Brand
from console.selectors import dashboard_brand_ids, dashboard_for

register = template.Library()


@register.simple_tag(takes_context=True)
def operator_dashboard(context):
    """{% operator_dashboard as dashboard %} on the admin index: the figures of the
    viewer's brands (or of one of them, ?brand=<id>); None for staff without a brand."""
    request = context["request"]
    brand_ids = dashboard_brand_ids(user=request.user)
    if not brand_ids:
        return None
    wanted = request.GET.get("brand", "")
    chosen = [pk for pk in brand_ids if str(pk) == wanted] or brand_ids
    brands = list(Brand.objects.filter(pk__in=brand_ids).order_by("name").only("pk", "name"))
    return {
        "figures": dashboard_for(brand_ids=chosen),
        "brands": brands,
        "chosen": chosen if len(chosen) == 1 else [],
    }
