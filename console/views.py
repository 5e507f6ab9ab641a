"""The console's own admin pages (routed in config/urls.py under /admin/, through the admin
site's login): the customers list and a page per fan."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from catalog.models import Brand
from console.customers import (
    PAGE_SIZE,
    CustomerFilters,
    customer_note_add,
    customer_profile,
    customers_list,
)
from console.selectors import dashboard_brand_ids


class CustomerFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label=_("Search"))
    members = forms.BooleanField(required=False, label=_("community members"))
    buyers = forms.BooleanField(required=False, label=_("buyers"))
    backers = forms.BooleanField(required=False, label=_("campaign backers"))
    preorders = forms.BooleanField(required=False, label=_("pre-orders"))
    min_value = forms.DecimalField(
        required=False, min_value=0, max_digits=12, decimal_places=2, label=_("lifetime value ≥")
    )
    active_days = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", _("any time")), (7, _("7 days")), (30, _("30 days")), (90, _("90 days"))],
        label=_("active within"),
    )
    order = forms.ChoiceField(
        required=False,
        choices=[("recent", _("last activity")), ("value", _("lifetime value"))],
        label=_("sort by"),
    )


def _brand_ids(request: HttpRequest) -> list[int]:
    brand_ids = dashboard_brand_ids(user=request.user)
    if not brand_ids:
        raise PermissionDenied
    return brand_ids


def customers(request: HttpRequest) -> HttpResponse:
    brand_ids = _brand_ids(request)
    form = CustomerFilterForm(request.GET or None)
    filters = CustomerFilters()
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        filters = CustomerFilters(
            q=data["q"].strip(),
            members=data["members"],
            buyers=data["buyers"],
            backers=data["backers"],
            preorders=data["preorders"],
            min_value=data["min_value"],
            active_days=data["active_days"],
            order=data["order"] or "recent",
        )
    page = Paginator(customers_list(brand_ids=brand_ids, filters=filters), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        **admin.site.each_context(request),
        "title": _("Customers"),
        "form": form,
        "page": page,
        "query": query.urlencode(),
    }
    return TemplateResponse(request, "admin/console/customers.html", context)


class NoteForm(forms.Form):
    brand = forms.ModelChoiceField(queryset=Brand.objects.none())
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=2000)

    def __init__(self, *args, brand_ids: list[int], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        brands = Brand.objects.filter(pk__in=brand_ids).order_by("name")
        self.fields["brand"].queryset = brands
        if len(brand_ids) == 1:
            self.fields["brand"].initial = brand_ids[0]


def customer(request: HttpRequest, user_id: int) -> HttpResponse:
    brand_ids = _brand_ids(request)
    profile = customer_profile(brand_ids=brand_ids, user_id=user_id)
    if profile is None:
        raise Http404("No such customer")
    form = NoteForm(request.POST or None, brand_ids=brand_ids)
    if request.method == "POST" and form.is_valid():
        try:
            customer_note_add(
                brand_id=form.cleaned_data["brand"].pk,
                customer=profile.customer,
                author=request.user,
                body=form.cleaned_data["body"],
            )
        except ValidationError as exc:
            form.add_error("body", exc)
        else:
            messages.success(request, _("Note saved."))
            return redirect(request.path)
    context = {
        **admin.site.each_context(request),
        "title": profile.customer.display_name or _("Customer"),
        "profile": profile,
        "form": form,
        "show_email": bool(
            profile.customer.order_count
            or profile.customer.reservation_count
            or profile.customer.pledge_count
        ),
    }
    return TemplateResponse(request, "admin/console/customer.html", context)
