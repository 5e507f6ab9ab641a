"""The operators' side of pre-order batches: set a batch up (window, ladder, caps), publish,
watch it fill, close or cancel it, see what to make (the production report), and read the
reservations. Scoped to the operator's brands by catalog.admin_scoping.

Every state change goes through one preorders.services call per batch (the actions and the
buttons on the batch page); counters, money and statuses are never edited by hand. The window
and the ladder can be changed only while a batch is a draft or scheduled."""

from __future__ import annotations

from functools import partial

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import flatten_fieldsets
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.forms.models import BaseInlineFormSet
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timeuntil

from audit.admin_edits import AuditedInlinesAdmin
from catalog.admin_exports import export_selection
from catalog.admin_scoping import (
    BrandScopedAdmin,
    BrandScopedInline,
    as_text_for_operators,
    related_as_text,
    scope_queryset,
)
from catalog.exports import export_job_create
from catalog.models import Variant
from formatting.formats import money
from payments.services import PaymentError
from preorders.models import (
    BATCH_MACHINE,
    BatchStatus,
    PreorderBatch,
    PreorderEvent,
    PriceTier,
    Reservation,
    ReservationStatus,
    VariantCap,
    WaitlistEntry,
)
from preorders.reports import (
    production_report,
    production_report_totals,
)
from preorders.selectors import deposit_refunds_pending
from preorders.services import (
    batch_cancel,
    batch_close,
    batch_fulfil,
    batch_publish,
    ladder_price,
)

# The window, the ladder and the quantities may change only before shoppers can reserve.
EDITABLE_STATUSES = (BatchStatus.DRAFT, BatchStatus.SCHEDULED)
# News for the shoppers (a production delay) may still be posted until the batch is over.
FINISHED_STATUSES = (BatchStatus.CANCELLED, BatchStatus.FULFILLED)
NEWS_FIELDS = ("description", "estimated_ship_date")
SETUP_FIELDS = (
    "product",
    "title",
    "slug",
    "description",
    "opens_at",
    "closes_at",
    "estimated_ship_date",
    "min_quantity",
    "cap",
    "per_customer_limit",
    "close_when_full",
    "deposit_per_unit",
    "deposit_refundable",
)
# Kept by the services and the settlement: shown, never edited.
COUNTER_FIELDS = (
    "status",
    "reserved_units",
    "offered_units",
    "final_unit_price",
    "closed_at",
    "settled_at",
)
SHOWN_FIELDS = ("progress", "time_left", "price_now", "currency", "created_at")


def _setup_editable(batch: PreorderBatch | None) -> bool:
    return batch is None or batch.status in EDITABLE_STATUSES


def _errors(exc: Exception) -> str:
    return " ".join(getattr(exc, "messages", None) or [str(exc)])


# --- the batch form and its inlines -----------------------------------------------------------


class PreorderBatchForm(forms.ModelForm):
    class Meta:
        model = PreorderBatch
        fields = list(SETUP_FIELDS)  # the admin narrows it to the fields editable now

    def _value(self, name: str):
        if name in self.fields:
            return self.cleaned_data.get(name)
        return getattr(self.instance, name)

    def clean(self):
        cleaned = super().clean()
        opens, closes = self._value("opens_at"), self._value("closes_at")
        if opens and closes and closes <= opens and "closes_at" in self.fields:
            self.add_error("closes_at", "The batch must close after it opens.")
        elif (
            closes
            and "closes_at" in self.fields
            and self.instance.status == BatchStatus.SCHEDULED
            and closes <= timezone.now()
        ):
            self.add_error("closes_at", "A scheduled batch cannot close in the past.")
        cap, minimum = self._value("cap"), self._value("min_quantity")
        if cap is not None and minimum and cap < minimum and "cap" in self.fields:
            self.add_error("cap", "The cap cannot be below the minimum to confirm.")
        return cleaned


class _BatchChildFormSet(BaseInlineFormSet):
    def _kept_forms(self):
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or not form.cleaned_data:
                continue
            if self.can_delete and self._should_delete_form(form):
                continue
            yield form

    def _checked(self) -> bool:
        """Only a batch being set up is checked (otherwise these rows are read-only)."""
        return _setup_editable(self.instance)


class PriceTierFormSet(_BatchChildFormSet):
    def clean(self):
        super().clean()
        if not self._checked() or any(self.errors):
            return
        tiers = sorted(
            (form.cleaned_data["min_quantity"], form.cleaned_data["unit_price"])
            for form in self._kept_forms()
            if form.cleaned_data.get("min_quantity") and form.cleaned_data.get("unit_price")
        )
        if not tiers:
            if self.instance.status == BatchStatus.SCHEDULED:
                raise ValidationError("A published batch needs at least one price tier.")
            return
        if tiers[0][0] != 1:
            raise ValidationError("The first price tier must start from 1 unit.")
        for (low_qty, low_price), (high_qty, high_price) in zip(tiers, tiers[1:], strict=False):
            if high_price > low_price:
                raise ValidationError(
                    f"From {high_qty} units the price cannot be higher than from {low_qty}."
                )
        deposit = self.instance.deposit_per_unit
        if deposit is not None and deposit >= min(price for _, price in tiers):
            raise ValidationError("The deposit per unit must be below the lowest unit price.")


class VariantCapFormSet(_BatchChildFormSet):
    def clean(self):
        super().clean()
        if not self._checked() or self.instance.product_id is None:
            return
        for form in self._kept_forms():
            variant = form.cleaned_data.get("variant")
            if variant is not None and variant.product_id != self.instance.product_id:
                form.add_error("variant", "Choose an option of this batch's product.")


class _SetupInline(BrandScopedInline, admin.TabularInline):
    """Rows of the batch's set-up: editable while the batch is a draft or scheduled."""

    extra = 0

    def has_add_permission(self, request, obj=None):
        return _setup_editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return _setup_editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return _setup_editable(obj) and super().has_delete_permission(request, obj)


class PriceTierInline(_SetupInline):
    model = PriceTier
    formset = PriceTierFormSet
    fields = ["min_quantity", "unit_price"]
    verbose_name = "price tier"
    verbose_name_plural = "price ladder (everyone pays the price of the highest tier reached)"

    def get_extra(self, request, obj=None, **kwargs):
        return 3 if obj is None else 0


class VariantCapInline(_SetupInline):
    model = VariantCap
    formset = VariantCapFormSet
    fields = ["variant", "cap"]
    verbose_name = "cap per option"
    verbose_name_plural = "caps per option (optional)"

    def get_extra(self, request, obj=None, **kwargs):
        return 0

    def get_formset(self, request, obj=None, **kwargs):
        kwargs["formfield_callback"] = partial(self._formfield, request=request, batch=obj)
        return super().get_formset(request, obj, **kwargs)

    def _formfield(self, db_field, request, batch=None, **kwargs):
        if db_field.name != "variant":
            return self.formfield_for_dbfield(db_field, request, **kwargs)
        variants = Variant.objects.select_related("product")
        known, product_id = _batch_product(request, batch)
        if known:  # only the options of the batch's product (as posted, when adding)
            variants = variants.filter(product_id=product_id) if product_id else variants.none()
        kwargs["queryset"] = scope_queryset(variants, request)
        field = self.formfield_for_dbfield(db_field, request, **kwargs)
        field.error_messages["invalid_choice"] = "Choose an option of this batch's product."
        return field


def _batch_product(request, batch: PreorderBatch | None) -> tuple[bool, int | None]:
    """The batch's product for its option caps: the saved one when editing, else the one
    posted with the new batch (or given as ?product= on the add page). (False, None) when
    no product is chosen yet; (True, None) when the posted one is no id."""
    if batch is not None:
        return True, batch.product_id
    data = request.POST if request.method == "POST" else request.GET
    raw = data.get("product")
    if raw is None or (raw == "" and request.method != "POST"):
        return False, None
    try:
        product_id = PreorderBatch._meta.get_field("product").target_field.to_python(raw)
    except ValidationError:
        return True, None
    return True, product_id


class _EventInline(BrandScopedInline, admin.TabularInline):
    """The event log (who, when, from, to), oldest first: read-only."""

    model = PreorderEvent
    extra = 0
    can_delete = False
    fields = ["created_at", "actor", "from_status", "to_status", "note"]
    readonly_fields = fields
    actor_text = related_as_text("actor", "actor")

    def get_fields(self, request, obj=None):
        return as_text_for_operators(request, self.fields, ["actor"])

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")


class BatchEventInline(_EventInline):
    """The batch's own state changes. Each reservation's events are on its page: a batch
    with thousands of reservations would otherwise make this page unusable."""

    fk_name = "batch"
    verbose_name = "batch event"
    verbose_name_plural = "batch events"

    def get_queryset(self, request):
        return super().get_queryset(request).filter(reservation__isnull=True)


class ReservationEventInline(_EventInline):
    fk_name = "reservation"
    verbose_name = "event"
    verbose_name_plural = "events"


# --- the batch admin ----------------------------------------------------------------------------

# The operations and their buttons are the batch state machine's actions: a button shows when
# the machine allows its move from the batch's state now (BATCH_MACHINE.allowed_actions).
OPERATIONS = {action.name: action for action in BATCH_MACHINE.actions}


@admin.register(PreorderBatch)
class PreorderBatchAdmin(AuditedInlinesAdmin, BrandScopedAdmin):
    form = PreorderBatchForm
    audited_inlines = {
        PriceTier: ("min_quantity", "unit_price"),
        VariantCap: ("variant_id", "cap"),
    }

    def audited_brand_id(self, obj) -> int | None:
        return obj.product.brand_id

    list_display = [
        "title",
        "product",
        "status",
        "progress",
        "time_left",
        "price_now",
        "report_link",
    ]
    list_filter = ["status", ("product__brand", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["product"]
    search_fields = ["title", "slug", "product__name"]
    actions = ["publish", "close_now", "cancel", "mark_fulfilled"]
    change_form_template = "admin/preorders/preorderbatch/change_form.html"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("tiers")

    def get_inlines(self, request, obj):
        if obj is None:
            return [PriceTierInline, VariantCapInline]
        return [PriceTierInline, VariantCapInline, BatchEventInline]

    def get_fieldsets(self, request, obj=None):
        fieldsets = [
            (None, {"fields": ["product", "title", "slug", "description"]}),
            ("Window", {"fields": ["opens_at", "closes_at", "estimated_ship_date"]}),
            (
                "Quantities",
                {"fields": ["min_quantity", "cap", "per_customer_limit", "close_when_full"]},
            ),
            ("Deposit", {"fields": ["deposit_per_unit", "deposit_refundable"]}),
        ]
        if obj is not None:
            fieldsets.append(
                (
                    "Progress and settlement",
                    {
                        "fields": [
                            "status",
                            "progress",
                            "time_left",
                            "price_now",
                            "reserved_units",
                            "offered_units",
                            "final_unit_price",
                            "currency",
                            "closed_at",
                            "settled_at",
                            "created_at",
                        ]
                    },
                )
            )
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        shown = [*COUNTER_FIELDS, *SHOWN_FIELDS]
        if obj is None:
            return shown
        if obj.status in EDITABLE_STATUSES:
            return [*shown, "product"]  # a batch of another product is another batch
        if obj.status in FINISHED_STATUSES:
            return [*shown, *SETUP_FIELDS]
        return [*shown, *(name for name in SETUP_FIELDS if name not in NEWS_FIELDS)]

    def get_prepopulated_fields(self, request, obj=None):
        return {"slug": ["title"]} if _setup_editable(obj) else {}

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # drafts are deleted one at a time
        return actions

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and (
            obj is None or obj.status == BatchStatus.DRAFT
        )

    def save_model(self, request, obj, form, change):
        if not change:
            obj.save()
            return
        concrete = {field.name for field in obj._meta.concrete_fields}
        fields = [name for name in form.changed_data if name in concrete]
        if fields:
            obj.save(update_fields=fields)  # never the counters the services keep

    # --- what the list and the page show

    @admin.display(description="progress")
    def progress(self, obj: PreorderBatch) -> str:
        reserved, minimum = obj.reserved_units, obj.min_quantity
        top = obj.cap or max(minimum, reserved, 1)
        reached = reserved >= minimum
        return format_html(
            '<meter min="0" max="{}" low="{}" optimum="{}" value="{}" title="{}"></meter> '
            "{} / {} min{}{}",
            top,
            min(minimum, top),
            top,
            reserved,
            f"{reserved} of {minimum} units needed",
            reserved,
            minimum,
            f" · cap {obj.cap}" if obj.cap else "",
            " ✓" if reached else "",
        )

    @admin.display(description="time left")
    def time_left(self, obj: PreorderBatch) -> str:
        now = timezone.now()
        if obj.status == BatchStatus.DRAFT:
            return "not published"
        if obj.status == BatchStatus.SCHEDULED:
            return f"opens in {timeuntil(obj.opens_at, now)}" if obj.opens_at > now else "opening"
        if obj.status == BatchStatus.OPEN:
            if obj.closes_at > now:
                return timeuntil(obj.closes_at, now)
            return "due to close"
        return f"closed {timezone.localtime(obj.closed_at):%d %b %Y}" if obj.closed_at else "—"

    @admin.display(description="final price")
    def price_now(self, obj: PreorderBatch) -> str:
        if obj.final_unit_price is not None:
            return f"{money(obj.final_unit_price, obj.currency)}"
        price = ladder_price(tiers=list(obj.tiers.all()), units=obj.reserved_units)
        return f"{money(price, obj.currency)} so far" if price is not None else "—"

    @admin.display(description="report")
    def report_link(self, obj: PreorderBatch) -> str:
        return format_html(
            '<a href="{}">Production report</a>',
            reverse("admin:preorders_preorderbatch_production", args=[obj.pk]),
        )

    # --- extra pages: the production report and the operations

    def get_urls(self):
        return [
            path(
                "<int:pk>/production/",
                self.admin_site.admin_view(self.production_view),
                name="preorders_preorderbatch_production",
            ),
            path(
                "<int:pk>/production.csv",
                self.admin_site.admin_view(self.production_csv_view),
                name="preorders_preorderbatch_production_csv",
            ),
            path(
                "<int:pk>/operate/<str:operation>/",
                self.admin_site.admin_view(self.operate_view),
                name="preorders_preorderbatch_operate",
            ),
            *super().get_urls(),
        ]

    def _scoped_batch(self, request, pk: int) -> PreorderBatch:
        """Another brand's batch does not exist for this operator (404)."""
        batches = scope_queryset(PreorderBatch.objects.select_related("product"), request)
        return get_object_or_404(batches, pk=pk)

    def production_view(self, request, pk: int):
        batch = self._scoped_batch(request, pk)
        if not self.has_view_permission(request, batch):
            raise PermissionDenied
        lines = production_report(batch=batch)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "batch": batch,
            "lines": lines,
            "totals": production_report_totals(lines=lines),
            "title": f"Production report: {batch.title}",
            "change_url": reverse("admin:preorders_preorderbatch_change", args=[batch.pk]),
            "csv_url": reverse("admin:preorders_preorderbatch_production_csv", args=[batch.pk]),
            "reservations_url": reverse("admin:preorders_reservation_changelist")
            + f"?batch__id__exact={batch.pk}",
        }
        return TemplateResponse(request, "admin/preorders/preorderbatch/production.html", context)

    def production_csv_view(self, request, pk: int):
        """A worker writes the CSV (an export job of the batch's brand); the operator
        follows it on the exports page, which offers the file when it is ready."""
        batch = self._scoped_batch(request, pk)
        if not self.has_view_permission(request, batch):
            raise PermissionDenied
        if request.method != "POST":
            return redirect("admin:preorders_preorderbatch_production", pk=batch.pk)
        export_job_create(
            user=request.user,
            brand=batch.product.brand,
            kind="preorders.production",
            params={"batch_id": batch.pk},
            file_name=f"{batch.slug}-production.csv",
        )
        self.message_user(
            request,
            "The production CSV is being prepared; it can be downloaded here when it is ready.",
            messages.SUCCESS,
        )
        return redirect("admin:catalog_exportjob_changelist")

    def operate_view(self, request, pk: int, operation: str):
        batch = self._scoped_batch(request, pk)
        if operation not in OPERATIONS or not self.has_change_permission(request, batch):
            raise PermissionDenied
        change_url = reverse("admin:preorders_preorderbatch_change", args=[batch.pk])
        if request.method == "POST":
            self._operate(request, batch, operation, reason=request.POST.get("reason", ""))
            return redirect(change_url)
        [batch] = self._with_open_counts(PreorderBatch.objects.filter(pk=batch.pk))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "batch": batch,
            "batches": [batch],
            "operation": operation,
            "label": OPERATIONS[operation].label,
            "change_url": change_url,
            "title": f"{OPERATIONS[operation].label}: {batch.title}",
        }
        return TemplateResponse(request, "admin/preorders/preorderbatch/operate.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        batch = self.get_object(request, object_id)
        if batch is not None:
            extra_context = {
                **(extra_context or {}),
                "production_url": reverse(
                    "admin:preorders_preorderbatch_production", args=[batch.pk]
                ),
                "operations": [
                    (
                        action.label,
                        reverse(
                            "admin:preorders_preorderbatch_operate", args=[batch.pk, action.name]
                        ),
                    )
                    for action in BATCH_MACHINE.allowed_actions(batch)
                ]
                if self.has_change_permission(request, batch)
                else [],
            }
        return super().change_view(request, object_id, form_url, extra_context)

    # --- one service per batch, for the actions and the buttons

    def _operate(self, request, batch: PreorderBatch, operation: str, reason: str = "") -> bool:
        actor = request.user
        try:
            if operation == "publish":
                batch = batch_publish(batch=batch, actor=actor)
                done = f"published, now {batch.get_status_display().lower()}"
            elif operation == "close":
                status = batch.get_status_display().lower()
                if not batch_close(batch=batch, actor=actor, force=True):
                    raise ValidationError(
                        f"Only an open batch can be closed; this one is {status} "
                        "(or is being closed right now)."
                    )
                batch.refresh_from_db(fields=["status", "final_unit_price", "reserved_units"])
                price = money(batch.final_unit_price, batch.currency)
                done = f"closed with {batch.reserved_units} of {batch.min_quantity} units, " + {
                    BatchStatus.CONFIRMED: f"confirmed at {price} per unit",
                    BatchStatus.SETTLING: f"confirmed at {price} per unit; "
                    "the cards are being charged",
                    BatchStatus.CANCELLED: "below the minimum: cancelled, nobody is charged",
                    BatchStatus.CANCELLING: "below the minimum: the reservations are being "
                    "released, nobody is charged",
                }.get(batch.status, batch.get_status_display().lower())
            elif operation == "cancel":
                batch = batch_cancel(batch=batch, actor=actor, reason=reason.strip()[:300])
                batch.refresh_from_db(fields=["status"])
                done = (
                    "cancelled; nobody is charged"
                    if batch.status == BatchStatus.CANCELLED
                    else "cancelling: the reservations are being released, nobody is charged"
                )
            else:
                batch = batch_fulfil(batch=batch, actor=actor)
                done = "marked fulfilled"
        except (ValidationError, PaymentError) as exc:
            self.message_user(request, f"{batch.title}: {_errors(exc)}", messages.ERROR)
            return False
        self.message_user(request, f"{batch.title}: {done}.", messages.SUCCESS)
        return True

    def _run_each(self, request, queryset, operation: str, reason: str = "") -> None:
        for batch in queryset.select_related("product").order_by("pk"):
            self._operate(request, batch, operation, reason=reason)

    @staticmethod
    def _with_open_counts(queryset) -> list[PreorderBatch]:
        """For the confirmation page: what a close or a cancel would do to each batch."""
        batches = list(
            queryset.select_related("product")
            .prefetch_related("tiers")
            .annotate(
                held_count=Count(
                    "reservations", filter=Q(reservations__status=ReservationStatus.HELD)
                )
            )
        )
        for batch in batches:
            batch.price_at_close = ladder_price(
                tiers=list(batch.tiers.all()), units=batch.reserved_units
            )
        return batches

    def _confirm(self, request, queryset, operation: str):
        """The page that asks before a close or a cancel (they charge or release cards)."""
        batches = self._with_open_counts(queryset.order_by("pk"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "batches": batches,
            "operation": operation,
            "action": {"close": "close_now", "cancel": "cancel"}[operation],
            "label": OPERATIONS[operation].label,
            "selected_name": ACTION_CHECKBOX_NAME,
            "changelist_url": reverse("admin:preorders_preorderbatch_changelist"),
            "title": f"{OPERATIONS[operation].label}: are you sure?",
        }
        return TemplateResponse(request, "admin/preorders/preorderbatch/operate.html", context)

    @admin.action(
        description="Publish (schedule, or open if the window has started)",
        permissions=["change"],
    )
    def publish(self, request, queryset):
        self._run_each(request, queryset, "publish")

    @admin.action(
        description="Close now (charge if the minimum is reached)", permissions=["change"]
    )
    def close_now(self, request, queryset):
        if request.POST.get("confirm") != "yes":
            return self._confirm(request, queryset, "close")
        self._run_each(request, queryset, "close")

    @admin.action(description="Cancel batch (nobody is charged)", permissions=["change"])
    def cancel(self, request, queryset):
        if request.POST.get("confirm") != "yes":
            return self._confirm(request, queryset, "cancel")
        self._run_each(request, queryset, "cancel", reason=request.POST.get("reason", ""))

    @admin.action(description="Mark fulfilled (production delivered)", permissions=["change"])
    def mark_fulfilled(self, request, queryset):
        self._run_each(request, queryset, "fulfil")


# --- reservations and the waitlist: read-only -------------------------------------------------


class _ReadOnlyAdmin(BrandScopedAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    # Operators may not open the user or saved-card admin: those show as text, not 403 links.
    user_text = related_as_text("user", "user")
    saved_card_text = related_as_text("saved_card", "saved card")

    def get_fieldsets(self, request, obj=None):
        return [
            (
                title,
                {
                    **options,
                    "fields": as_text_for_operators(
                        request, options["fields"], ["user", "saved_card"]
                    ),
                },
            )
            for title, options in super().get_fieldsets(request, obj)
        ]

    def get_readonly_fields(self, request, obj=None):
        return flatten_fieldsets(self.get_fieldsets(request, obj))


@admin.register(Reservation)
class ReservationAdmin(_ReadOnlyAdmin):
    """Operators read reservations and export them; money and statuses move only through the
    services (the batch's close, the shopper's retry)."""

    list_display = [
        "id",
        "user_email",
        "batch",
        "option",
        "quantity",
        "status",
        "amount_charged",
        "created_at",
    ]
    list_filter = ["status", ("batch", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["user__email"]
    actions = ["export_csv"]
    inlines = [ReservationEventInline]
    fieldsets = [
        (None, {"fields": ["batch", "user", "variant", "quantity", "status", "order"]}),
        (
            "Money",
            {
                "fields": [
                    "saved_card",
                    "deposit_paid",
                    "deposit_refunded",
                    "deposit_refunds",
                    "deposit_due_at",
                    "unit_price",
                    "amount_charged",
                    "failure_message",
                    "grace_until",
                    "reminded_at",
                ]
            },
        ),
        (
            "Ship to",
            {
                "fields": [
                    "ship_name",
                    "ship_line1",
                    "ship_line2",
                    "ship_city",
                    "ship_postal_code",
                    "ship_country",
                    "ship_phone",
                ]
            },
        ),
        (None, {"fields": ["created_at", "updated_at"]}),
    ]

    def get_queryset(self, request):
        # Here rather than list_select_related, which the changelist skips when the
        # queryset already has a select_related.
        return super().get_queryset(request).select_related("user", "batch", "variant__product")

    @admin.display(description="customer", ordering="user__email")
    def user_email(self, obj: Reservation) -> str:
        return obj.user.email

    @admin.display(description="variant", ordering="variant__sku")
    def option(self, obj: Reservation) -> str:
        return obj.variant.option_label or obj.variant.sku

    @admin.display(description="deposit refunds pending")
    def deposit_refunds(self, obj: Reservation) -> str:
        """Refunds the provider refused or has not answered, retried by payments' sweep (an
        operator can abandon one in the payments admin)."""
        pending = deposit_refunds_pending(reservation=obj)
        if not pending:
            return "none"
        return "; ".join(
            f"deposit refund of {money(refund.amount, obj.batch.currency)} pending"
            + (f": {refund.failure_message}" if refund.failure_message else "")
            for refund in pending
        )

    @admin.action(description="Export selected reservations to CSV", permissions=["view"])
    def export_csv(self, request, queryset):
        """A worker writes the file (one export job a brand of the selection); the operator
        follows its progress on the exports page and downloads it there."""
        return export_selection(
            self,
            request,
            rows=queryset.values_list("pk", "batch__product__brand_id").order_by("pk"),
            kind="preorders.reservations",
            file_name="reservations.csv",
        )


@admin.register(WaitlistEntry)
class WaitlistEntryAdmin(_ReadOnlyAdmin):
    list_display = [
        "id",
        "user_email",
        "batch",
        "variant",
        "quantity",
        "status",
        "offer_expires_at",
        "created_at",
    ]
    list_filter = ["status", ("batch", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["user", "batch", "variant__product"]
    search_fields = ["user__email"]
    fields = ["batch", "user", "variant", "quantity", "status", "offer_expires_at", "created_at"]

    @admin.display(description="customer", ordering="user__email")
    def user_email(self, obj: WaitlistEntry) -> str:
        return obj.user.email
