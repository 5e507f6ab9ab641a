"""Operators' side: vouchers (codes inline, usage, bulk codes, CSV export) and placements
(QR downloads, the funnel), scoped to the operator's brands (catalog.admin_scoping)."""

from __future__ import annotations

import io

import segno
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from audit.admin_edits import AuditedEditsAdmin, AuditedInlinesAdmin
from catalog.admin_exports import export_selection
from catalog.admin_scoping import BrandScopedAdmin, BrandScopedInline, as_text_for_operators
from formatting.formats import money
from marketing.models import Placement, Voucher, VoucherCode, VoucherUse
from marketing.placements import PLACEMENT_AUDITED
from marketing.selectors import placement_funnel, placement_funnel_by_day
from marketing.targets import target_choices, target_label
from marketing.vouchers import (
    VOUCHER_AUDITED,
    voucher_codes_generate,
    voucher_targets,
    voucher_targets_audit,
)
from uploads.forms import VerifiedImagesModelForm


class VoucherCodeInline(BrandScopedInline, admin.TabularInline):
    model = VoucherCode
    extra = 0
    fields = ["code", "usage_limit", "used", "personal"]
    readonly_fields = ["used", "personal"]
    show_change_link = False

    @admin.display(description=_("personal"), boolean=True)
    def personal(self, obj) -> bool:
        return obj.user_id is not None

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields]

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a code is added or removed, never edited: uses point at it


class VoucherUseInline(BrandScopedInline, admin.TabularInline):
    model = VoucherUse
    extra = 0
    fields = ["order_number", "code", "amount_shown", "created_at", "released_at"]
    readonly_fields = fields
    can_delete = False
    verbose_name_plural = _("uses")

    @admin.display(description=_("order"))
    def order_number(self, obj) -> str:
        return obj.order.number

    @admin.display(description=_("discount"))
    def amount_shown(self, obj) -> str:
        return money(obj.amount)

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class VoucherForm(VerifiedImagesModelForm):
    generate_count = forms.IntegerField(
        label=_("Generate codes"),
        required=False,
        min_value=1,
        max_value=5000,
        help_text=_("How many random codes to add when saving (each usable once)."),
    )
    generate_prefix = forms.CharField(label=_("Code prefix"), required=False, max_length=12)

    class Meta:
        model = Voucher
        fields = "__all__"

    def clean(self):
        cleaned = super().clean()
        brand = cleaned.get("brand")
        others = [p for p in cleaned.get("products") or [] if brand and p.brand_id != brand.pk]
        if others:
            self.add_error("products", _("Choose products of the voucher's brand only."))
        scope = cleaned.get("scope")
        if scope == "products" and not cleaned.get("products"):
            self.add_error("products", _("Choose the products it applies to."))
        if scope == "categories" and not cleaned.get("categories"):
            self.add_error("categories", _("Choose the categories it applies to."))
        return cleaned


@admin.register(Voucher)
class VoucherAdmin(AuditedEditsAdmin, AuditedInlinesAdmin, BrandScopedAdmin):
    audited_fields = VOUCHER_AUDITED
    audited_inlines = {VoucherCode: ("code", "usage_limit")}  # a code typed in or removed
    form = VoucherForm
    list_display = ["name", "brand", "offer", "scope", "usage", "window", "is_active"]
    list_filter = ["is_active", "kind", "scope"]
    search_fields = ["name", "codes__code"]
    filter_horizontal = ["products", "categories"]
    inlines = [VoucherCodeInline, VoucherUseInline]
    actions = ["export_codes"]
    readonly_fields = ["used"]
    fieldsets = [
        (None, {"fields": ["brand", "name", "is_active"]}),
        (_("Discount"), {"fields": ["kind", "value", "scope", "products", "categories"]}),
        (
            _("Rules"),
            {
                "fields": [
                    "min_spend",
                    "min_quantity",
                    "starts_at",
                    "ends_at",
                    "usage_limit",
                    "used",
                    "once_per_customer",
                    "new_customers_only",
                    "claim_only",
                ]
            },
        ),
        (_("Codes"), {"fields": ["generate_count", "generate_prefix"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("brand")

    @admin.display(description=_("offer"))
    def offer(self, obj) -> str:
        return obj.value_label

    @admin.display(description=_("used"))
    def usage(self, obj) -> str:
        return f"{obj.used} / {obj.usage_limit}" if obj.usage_limit is not None else str(obj.used)

    @admin.display(description=_("valid"))
    def window(self, obj) -> str:
        start = obj.starts_at.date().isoformat() if obj.starts_at else "…"
        end = obj.ends_at.date().isoformat() if obj.ends_at else "…"
        return f"{start} – {end}"

    def save_related(self, request, form, formsets, change):
        before = voucher_targets(form.instance)  # the voucher is saved, its lists not yet
        super().save_related(request, form, formsets, change)
        voucher_targets_audit(voucher=form.instance, actor=request.user, before=before)
        count = form.cleaned_data.get("generate_count")
        if count:
            try:
                made = voucher_codes_generate(
                    voucher=form.instance,
                    count=count,
                    prefix=form.cleaned_data.get("generate_prefix") or "",
                    actor=request.user,
                )
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            else:
                messages.success(request, _("%(n)s codes were added.") % {"n": len(made)})

    @admin.action(description=_("Export the codes as CSV"))
    def export_codes(self, request, queryset):
        """A worker writes the file (one export job a brand of the selection); the operator
        follows its progress on the exports page and downloads it there."""
        return export_selection(
            self,
            request,
            rows=queryset.values_list("pk", "brand_id").order_by("pk"),
            kind="marketing.voucher_codes",
            file_name="voucher-codes.csv",
        )


class PlacementForm(VerifiedImagesModelForm):
    target = forms.ChoiceField(label=_("Target"), choices=())

    class Meta:
        model = Placement
        fields = ["brand", "name", "kind", "voucher", "is_active"]

    def __init__(self, *args, brand_ids=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].choices = target_choices(list(brand_ids))
        if self.instance.pk:
            self.initial["target"] = (
                f"{self.instance.target_kind}:{self.instance.target_id or ''}"
                if self.instance.target_kind != "brand"
                else "brand:"
            )

    def clean(self):
        cleaned = super().clean()
        brand, voucher = cleaned.get("brand"), cleaned.get("voucher")
        if brand and voucher and voucher.brand_id != brand.pk:
            self.add_error("voucher", _("Choose a voucher of the placement's brand."))
        target = cleaned.get("target") or "brand:"
        kind, _sep, pk = target.partition(":")
        if brand and kind != "brand":
            from marketing.targets import target_kinds

            found = target_kinds()[kind].resolve(int(pk)) if kind in target_kinds() else None
            if found is None or found[1] != brand.pk:
                self.add_error("target", _("Choose a target of the placement's brand."))
        self.instance.target_kind = kind
        self.instance.target_id = int(pk) if pk else None
        return cleaned


@admin.register(Placement)
class PlacementAdmin(AuditedEditsAdmin, BrandScopedAdmin):
    audited_fields = PLACEMENT_AUDITED
    form = PlacementForm
    list_display = ["name", "brand", "kind", "target_shown", "voucher", "scans", "downloads"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "token"]
    readonly_fields = ["short_url", "downloads", "funnel", "funnel_by_day"]

    def get_queryset(self, request):
        from django.db.models import Count

        return (
            super()
            .get_queryset(request)
            .select_related("brand", "voucher")
            .annotate(scan_count=Count("scans"))
        )

    def get_fields(self, request, obj=None):
        fields = ["brand", "name", "kind", "target", "voucher", "is_active"]
        return [*fields, *self.readonly_fields] if obj else fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["fields"] = ["brand", "name", "kind", "voucher", "is_active"]
        form = super().get_form(request, obj, change, **kwargs)
        brands = form.base_fields["brand"].queryset.values_list("pk", flat=True)
        brand_ids = list(brands)

        class Scoped(form):
            def __init__(self, *args, **inner):
                super().__init__(*args, brand_ids=brand_ids, **inner)

        return Scoped

    @admin.display(description=_("target"))
    def target_shown(self, obj) -> str:
        return target_label(obj)

    @admin.display(description=_("scans"), ordering="scan_count")
    def scans(self, obj) -> int:
        return obj.scan_count

    @admin.display(description=_("short URL"))
    def short_url(self, obj) -> str:
        return settings.SITE_URL + obj.get_short_url()

    @admin.display(description=_("QR code"))
    def downloads(self, obj) -> str:
        if obj is None or not obj.pk:
            return "-"
        return format_html(
            '<a href="{}">SVG</a> · <a href="{}">PNG</a>',
            reverse("admin:marketing_placement_qr", args=[obj.pk, "svg"]),
            reverse("admin:marketing_placement_qr", args=[obj.pk, "png"]),
        )

    @admin.display(description=_("funnel"))
    def funnel(self, obj) -> str:
        f = placement_funnel(obj)
        rows = [
            (_("Scans (once per visitor a day)"), f.scans),
            (_("Unique visitors"), f.unique_visitors),
            (_("Signed in when scanning"), f.signed_in_scans),
            (_("Fans (accounts)"), f.fans),
            (_("Sign-ups"), f.sign_ups),
            (_("Community joins"), f.community_joins),
            (_("Vouchers claimed"), f.vouchers_claimed),
            (_("Vouchers used"), f.vouchers_used),
            (_("Orders"), f.orders),
            (_("Revenue"), money(f.revenue)),
            *[(label, value) for label, value in f.extra.values()],
        ]
        return format_html(
            '<table class="placement-funnel">{}</table>',
            format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows),
        )

    @admin.display(description=_("by day (last 30 days)"))
    def funnel_by_day(self, obj) -> str:
        days = placement_funnel_by_day(obj)
        if not days:
            return "-"
        return format_html(
            "<table><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>{}</table>",
            _("Day"),
            _("Scans"),
            _("Visitors"),
            _("Sign-ups"),
            _("Orders"),
            format_html_join(
                "",
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                (
                    (d.day.isoformat(), d.scans, d.unique_visitors, d.sign_ups, d.orders)
                    for d in days
                ),
            ),
        )

    def get_urls(self):
        return [
            path(
                "<int:pk>/qr.<str:fmt>",
                self.admin_site.admin_view(self.qr_view),
                name="marketing_placement_qr",
            ),
            *super().get_urls(),
        ]

    def qr_view(self, request, pk: int, fmt: str):
        """The placement's QR code for print: SVG (vector) or PNG (1,200 px or so)."""
        placement = self.get_queryset(request).filter(pk=pk).first()
        if placement is None or fmt not in ("svg", "png") or not self.has_view_permission(request):
            raise Http404("No such placement")
        qr = segno.make(settings.SITE_URL + placement.get_short_url(), error="m")
        out = io.BytesIO()
        if fmt == "svg":
            qr.save(out, kind="svg", scale=10, border=4, xmldecl=True)
            content_type = "image/svg+xml"
        else:
            qr.save(out, kind="png", scale=30, border=4)
            content_type = "image/png"
        response = HttpResponse(out.getvalue(), content_type=content_type)
        response["Content-Disposition"] = (
            f'attachment; filename="placement-{placement.token}.{fmt}"'
        )
        return response

    def get_readonly_fields(self, request, obj=None):
        return as_text_for_operators(request, self.readonly_fields, ())
