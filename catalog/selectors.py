from django.db.models import QuerySet

from catalog.models import Brand


def brand_list() -> QuerySet[Brand]:
    return Brand.objects.order_by("name")
