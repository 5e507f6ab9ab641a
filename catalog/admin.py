from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from import_export.admin import ImportMixin
from import_export.forms import ImportForm

from accounts.admin_access import SuperuserOnlyAdminMixin
from catalog.admin_exports import export_selection
from catalog.admin_resources import ProductResource, VariantResource, import_file_problem
from catalog.admin_scoping import (
    BrandScopedAdmin,
    BrandScopedInline,
    related_as_text,
)
from catalog.forms import VariantAdminForm
from catalog.imports import (
    import_job_confirm,
    import_job_create,
    import_job_progress,
    import_job_summary,
    import_max_bytes,
)
from catalog.models import (
    Brand,
    BrandInvitation,
    BrandOperator,
    BrandRole,
    Category,
    ExportJob,
    ExportJobStatus,
    ImportJob,
    Product,
    ProductImage,
    ProductSpecification,
    ProductStatus,
    StockAlert,
    Variant,
)
from catalog.services import (
    brand_check_name,
    brand_save,
    category_save,
    product_refresh_summary,
    product_save,
    product_set_status,
)
from catalog.tasks import product_image_make_thumbnails
from catalog.team import (
    brand_invitation_create,
    brand_invitation_revoke,
    brand_operator_add,
    brand_operator_remove,
    brand_operator_set_role,
    brand_refund_limit_set,
    is_brand_owner,
    owned_brand_ids,
)
from uploads.forms import VerifiedImagesModelForm


class BrandAdminForm(VerifiedImagesModelForm):
    image_max_sides = {"logo": 512}

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        try:
            brand_check_name(name=name, brand_pk=self.instance.pk)
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["name"]) from exc
        return name


class TeamMemberForm(forms.ModelForm):
    class Meta:
        model = BrandOperator
        fields = ["brand", "user", "role"]

    def clean(self):
        cleaned = super().clean()
        operator = self.instance
        if (
            operator.pk
            and cleaned.get("role") != BrandRole.OWNER
            and BrandOperator.objects.filter(pk=operator.pk, role=BrandRole.OWNER).exists()
            and not BrandOperator.objects.filter(brand_id=operator.brand_id, role=BrandRole.OWNER)
            .exclude(pk=operator.pk)
            .exists()
        ):
            self.add_error("role", "The brand needs an owner: make someone else owner first.")
        return cleaned


@admin.register(BrandOperator)
class BrandOperatorAdmin(BrandScopedAdmin):
    """A brand's team. Owners change roles and remove members (colleagues join through an
    invitation); staff see the team, read-only; superusers also add anyone directly."""

    form = TeamMemberForm
    list_display = ["user_text", "brand", "role", "created_at"]
    list_filter = ["role", ("brand", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["user__email", "user__display_name"]
    list_select_related = ["user", "brand"]
    user_text = related_as_text("user", "member")

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["brand", "user", "role"]
        return ["brand", "user" if request.user.is_superuser else "user_text", "role", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["brand", "user", "user_text", "created_at"]

    def get_autocomplete_fields(self, request):
        return ["user"] if request.user.is_superuser else []

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        if not super().has_change_permission(request, obj):
            return False
        if obj is None:
            return request.user.is_superuser or bool(owned_brand_ids(user=request.user))
        return is_brand_owner(user=request.user, brand_id=obj.brand_id)

    def has_delete_permission(self, request, obj=None):
        if not super().has_delete_permission(request, obj):
            return False
        if obj is None:
            return request.user.is_superuser or bool(owned_brand_ids(user=request.user))
        return is_brand_owner(user=request.user, brand_id=obj.brand_id)

    def save_model(self, request, obj, form, change):
        if change:
            brand_operator_set_role(operator=obj, role=obj.role, actor=request.user)
        else:
            saved = brand_operator_add(
                brand=obj.brand, user=obj.user, role=obj.role, actor=request.user
            )
            obj.pk = saved.pk

    def delete_model(self, request, obj):
        brand_operator_remove(operator=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        owned = owned_brand_ids(user=request.user)
        for operator in queryset.order_by("pk"):
            if request.user.is_superuser or operator.brand_id in owned:
                brand_operator_remove(operator=operator, actor=request.user)


@admin.register(Brand)
class BrandAdmin(BrandScopedAdmin):
    """Owners edit their brands' name, story, logo, staff refund limit and team; staff see
    them; only superusers add or delete brands."""

    list_display = ["name", "slug", "staff_refund_limit", "created_at"]
    search_fields = ["name"]
    form = BrandAdminForm  # the logo is verified and re-encoded by the form

    def get_prepopulated_fields(self, request, obj=None):
        return {"slug": ["name"]} if request.user.is_superuser else {}

    def get_readonly_fields(self, request, obj=None):
        return [] if request.user.is_superuser else ["slug"]

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        if not super().has_change_permission(request, obj):
            return False
        if request.user.is_superuser:
            return True
        if obj is None:
            return bool(owned_brand_ids(user=request.user))
        return is_brand_owner(user=request.user, brand_id=obj.pk)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def save_model(self, request, obj, form, change):
        limit = obj.staff_refund_limit
        if change and "staff_refund_limit" in form.changed_data:
            obj.staff_refund_limit = form.initial["staff_refund_limit"]
        brand_save(brand=obj)
        if obj.staff_refund_limit != limit:
            brand_refund_limit_set(brand=obj, limit=limit, actor=request.user)
            obj.staff_refund_limit = limit


class InvitationAdminForm(forms.ModelForm):
    class Meta:
        model = BrandInvitation
        fields = ["brand", "email", "role"]

    def clean(self):
        cleaned = super().clean()
        brand, email = cleaned.get("brand"), (cleaned.get("email") or "").strip()
        if brand and email:
            if brand.team.filter(user__email__iexact=email).exists():
                self.add_error("email", f"{email} is already on {brand.name}'s team.")
            elif BrandInvitation.objects.filter(
                brand=brand, email__iexact=email, accepted_at=None, revoked_at=None
            ).exists():
                self.add_error(
                    "email",
                    f"{email} already has an open invitation to {brand.name}: revoke it to "
                    "send a new one.",
                )
        return cleaned


@admin.register(BrandInvitation)
class BrandInvitationAdmin(BrandScopedAdmin):
    """Owners invite colleagues by email (the link signs them up through allauth) and
    revoke open invitations. Staff do not see this page."""

    form = InvitationAdminForm
    list_display = ["email", "brand", "role", "status", "invited_by_text", "created_at"]
    list_filter = ["role", ("brand", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["email"]
    list_select_related = ["brand", "invited_by"]
    actions = ["revoke"]
    invited_by_text = related_as_text("invited_by", "invited by")

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(brand_id__in=owned_brand_ids(user=request.user))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "brand":
            brands = Brand.objects.all()
            if not request.user.is_superuser:
                brands = brands.filter(pk__in=owned_brand_ids(user=request.user))
            kwargs["queryset"] = brands
            if brands.count() == 1:  # the operator's one brand, preselected
                kwargs["initial"] = brands.get()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["brand", "email", "role"]
        return [
            "brand",
            "email",
            "role",
            "status",
            "link",
            "invited_by_text",
            "created_at",
            "expires_at",
            "accepted_at",
            "revoked_at",
        ]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.get_fields(request, obj)

    @admin.display(description="link to send again")
    def link(self, invitation: BrandInvitation) -> str:
        if invitation.status != "open":
            return "-"
        return settings.SITE_URL + invitation.accept_path()

    def has_module_permission(self, request):
        return super().has_module_permission(request) and (
            request.user.is_superuser or bool(owned_brand_ids(user=request.user))
        )

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request):
        return self.has_module_permission(request) and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        return False  # an invitation is sent or revoked, never edited

    def has_delete_permission(self, request, obj=None):
        return False

    def has_revoke_permission(self, request):
        return self.has_add_permission(request)

    def save_model(self, request, obj, form, change):
        invitation = brand_invitation_create(
            brand=obj.brand, email=obj.email, role=obj.role, actor=request.user
        )
        obj.pk, obj.token = invitation.pk, invitation.token
        obj._state.adding = False

    def response_add(self, request, obj, post_url_continue=None):
        self.message_user(request, f"Invitation sent to {obj.email}.", messages.SUCCESS)
        return redirect(reverse("admin:catalog_brandinvitation_changelist"))

    @admin.action(description="Revoke the selected open invitations", permissions=["revoke"])
    def revoke(self, request, queryset):
        count = 0
        for invitation in queryset.select_related("brand"):
            if invitation.status == "open":
                brand_invitation_revoke(invitation=invitation, actor=request.user)
                count += 1
        self.message_user(request, f"{count} invitation(s) revoked.", messages.SUCCESS)


@admin.register(Category)
class CategoryAdmin(SuperuserOnlyAdminMixin, admin.ModelAdmin):
    """The category tree is shared by all brands: superusers curate it."""

    list_display = ["full_name", "slug", "position"]
    search_fields = ["name", "full_name"]
    prepopulated_fields = {"slug": ["name"]}
    fields = ["name", "slug", "parent", "position"]

    def save_model(self, request, obj, form, change):
        category_save(category=obj)


class VerifiedImageForm(VerifiedImagesModelForm):
    """Refuses anything that is not a sane image, with a form error (never a 500)."""

    class Meta:
        model = ProductImage
        fields = ["image", "alt_text", "position"]


class ProductImageInline(BrandScopedInline, admin.TabularInline):
    model = ProductImage
    form = VerifiedImageForm
    extra = 1
    readonly_fields = ["preview"]

    @admin.display(description="preview")
    def preview(self, image: ProductImage):
        if not image.pk or not image.image:
            return "-"
        return format_html(
            '<img src="{}" alt="{}" class="admin-thumb" loading="lazy">',
            image.small_url,
            image.alt_text,
        )


class VariantInline(BrandScopedInline, admin.TabularInline):
    model = Variant
    form = VariantAdminForm
    extra = 1
    fields = [
        "sku",
        "options",
        "price",
        "compare_at_price",
        "stock",
        "track_inventory",
        "weight_grams",
        "is_active",
        "position",
    ]


class SpecificationInline(BrandScopedInline, admin.TabularInline):
    model = ProductSpecification
    extra = 1


class BackgroundImportMixin:
    """Every CSV import is checked and imported by a worker (an ImportJob), whatever its
    size: the request only validates the upload (size, type, header) and stores it; a page
    shows the progress, then the result (created, updated, unchanged; the problems by line)
    and the confirm button."""

    import_resource_name = ""

    def _url_name(self, view: str) -> str:
        return f"{self.opts.app_label}_{self.opts.model_name}_{view}"

    def get_urls(self):
        return [
            path(
                "import/jobs/<int:job_id>/",
                self.admin_site.admin_view(self.import_job_view),
                name=self._url_name("import_job"),
            ),
            *super().get_urls(),
        ]

    def import_action(self, request, **kwargs):
        if request.method == "POST" and self.has_import_permission(request):
            form = self.create_import_form(request)
            if form.is_valid():
                job = import_job_create(
                    user=request.user,
                    resource=self.import_resource_name,
                    data=form.text,
                    file_name=form.cleaned_data["import_file"].name,
                )
                return redirect(reverse(f"admin:{self._url_name('import_job')}", args=[job.pk]))
        # The form (again, with its errors for an invalid upload): valid ones left above.
        return super().import_action(request, **kwargs)

    def process_import(self, request, **kwargs):
        """import-export's in-request confirm step: unused, every file goes to a worker."""
        raise PermissionDenied

    def import_job_view(self, request, job_id: int):
        if not self.has_import_permission(request):
            raise PermissionDenied
        jobs = ImportJob.objects.filter(resource=self.import_resource_name)
        if not request.user.is_superuser:
            jobs = jobs.filter(user=request.user)  # another operator's job does not exist
        job = get_object_or_404(jobs, pk=job_id)
        if request.method == "POST" and "confirm" in request.POST:
            if not import_job_confirm(job=job, user=job.user):
                self.message_user(request, "This import was already confirmed.", messages.INFO)
            return redirect(request.path)
        job.refresh_from_db()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Import {job.file_name or ''}".strip(),
            "job": job,
            "progress": import_job_progress(job=job),
            "summary": import_job_summary(job=job),
            "changelist_url": reverse(f"admin:{self._url_name('changelist')}"),
        }
        template = (
            "admin/catalog/_import_job_status.html"
            if request.headers.get("HX-Request")
            else "admin/catalog/import_job.html"
        )
        return TemplateResponse(request, template, context)


class CatalogImportForm(ImportForm):
    """The upload's checks, before any row is read: its size, its type (a .csv file of
    UTF-8 text), and its header (another separator, missing columns), each one message."""

    def __init__(self, formats, resources, **kwargs) -> None:
        super().__init__(formats, resources, **kwargs)
        self.resource_classes = list(resources)

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("import_file")
        if upload is None:
            return cleaned
        try:
            resource = self.resource_classes[int(cleaned.get("resource") or 0)]
        except (ValueError, IndexError):
            resource = self.resource_classes[0]
        limit = import_max_bytes()
        if upload.size > limit:
            self.add_error(
                "import_file",
                f"The file is too large ({filesizeformat(upload.size)}); the limit is "
                f"{filesizeformat(limit)}. Split it into smaller files.",
            )
            return cleaned
        if not upload.name.lower().endswith(".csv"):
            self.add_error("import_file", "Upload a CSV file (its name ends in .csv).")
            return cleaned
        upload.seek(0)
        raw = upload.read()
        upload.seek(0)
        if b"\x00" in raw:  # a spreadsheet or another binary file renamed .csv
            self.add_error("import_file", "This is not a CSV text file. Save it as CSV (UTF-8).")
            return cleaned
        problem = import_file_problem(raw, resource.required_columns)
        if problem:
            self.add_error("import_file", problem)
            return cleaned
        try:
            self.text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            self.add_error("import_file", "Save the file as UTF-8 text (CSV) and upload it again.")
            return cleaned
        return cleaned


@admin.register(Product)
class ProductAdmin(BackgroundImportMixin, ImportMixin, BrandScopedAdmin):
    resource_classes = [ProductResource]
    import_form_class = CatalogImportForm
    import_resource_name = "product"
    list_display = [
        "name",
        "brand",
        "category",
        "status",
        "price_min",
        "in_stock",
        "rating_average",
        "rating_count",
        "updated_at",
    ]
    list_filter = ["status", "in_stock", ("brand", admin.RelatedOnlyFieldListFilter), "category"]
    list_select_related = ["brand", "category"]
    search_fields = ["name", "slug", "variants__sku"]
    prepopulated_fields = {"slug": ["name"]}
    # A plain select for the category: its admin is superuser-only, so an autocomplete would
    # refuse operators.
    inlines = [VariantInline, ProductImageInline, SpecificationInline]
    actions = ["make_active", "make_archived", "export_csv"]
    readonly_fields = ["price_min", "price_max", "in_stock", "rating_average", "rating_count"]
    fields = ["brand", "name", "slug", "category", "status", "description", *readonly_fields]

    def save_model(self, request, obj, form, change):
        product_save(product=obj, actor=request.user)

    def save_formset(self, request, form, formset, change):
        if formset.model is ProductImage:
            # New or replaced pictures get fresh thumbnails from a worker after the commit.
            replaced = {
                f.instance.pk for f in formset.forms if f.instance.pk and "image" in f.changed_data
            }
            for image in formset.save(commit=False):
                is_new = image.pk is None
                if image.pk in replaced:
                    image.thumbnail_small = image.thumbnail_large = None
                image.save()
                if is_new or image.pk in replaced:
                    product_image_make_thumbnails.delay_on_commit(image.pk)
            for removed in formset.deleted_objects:
                removed.delete()
        elif formset.model is Variant:
            # Each changed row writes only its changed fields (a sale may have moved stock).
            formset.save(commit=False)
            for variant_form in formset.saved_forms:
                variant_form.save_variant(actor=request.user)
            for removed in formset.deleted_objects:
                removed.delete()
            product_refresh_summary(product_id=form.instance.pk)
        else:
            formset.save()

    @admin.action(description="Activate (show on the site)", permissions=["change"])
    def make_active(self, request, queryset):
        count = product_set_status(
            product_ids=queryset.values_list("pk", flat=True),
            status=ProductStatus.ACTIVE,
            actor=request.user,
        )
        self.message_user(request, f"{count} product(s) activated.", messages.SUCCESS)

    @admin.action(description="Archive (hide from the site)", permissions=["change"])
    def make_archived(self, request, queryset):
        count = product_set_status(
            product_ids=queryset.values_list("pk", flat=True),
            status=ProductStatus.ARCHIVED,
            actor=request.user,
        )
        self.message_user(request, f"{count} product(s) archived.", messages.SUCCESS)

    @admin.action(description="Export selected products to CSV", permissions=["view"])
    def export_csv(self, request, queryset):
        """A worker writes the file (the import's columns), a job per brand."""
        return export_selection(
            self,
            request,
            rows=queryset.values_list("pk", "brand_id").order_by("pk"),
            kind="catalog.products",
            file_name="products.csv",
        )


@admin.register(Variant)
class VariantAdmin(BackgroundImportMixin, ImportMixin, BrandScopedAdmin):
    """Stock and price edits across products, and variant CSV import/export."""

    resource_classes = [VariantResource]
    import_form_class = CatalogImportForm
    import_resource_name = "variant"
    list_display = [
        "sku",
        "product",
        "option_label",
        "price",
        "stock",
        "track_inventory",
        "is_active",
    ]
    list_editable = ["price", "stock", "is_active"]
    list_filter = [
        "is_active",
        "track_inventory",
        ("product__brand", admin.RelatedOnlyFieldListFilter),
    ]
    list_select_related = ["product"]
    search_fields = ["sku", "product__name"]
    autocomplete_fields = ["product"]
    form = VariantAdminForm
    actions = ["export_csv"]

    def get_changelist_form(self, request, **kwargs):
        # The list edits too carry what each cell showed, so an unchanged stock is not written.
        return super().get_changelist_form(request, form=VariantAdminForm, **kwargs)

    def save_model(self, request, obj, form, change):
        form.save_variant(actor=request.user)

    @admin.action(description="Export selected variants to CSV", permissions=["view"])
    def export_csv(self, request, queryset):
        """A worker writes the file (the import's columns), a job per brand."""
        return export_selection(
            self,
            request,
            rows=queryset.values_list("pk", "product__brand_id").order_by("pk"),
            kind="catalog.variants",
            file_name="variants.csv",
        )


@admin.register(StockAlert)
class StockAlertAdmin(BrandScopedAdmin):
    """Who waits for which sold-out variant: the demand a restock would meet. Read-only:
    fans subscribe and cancel on the product page; the sweep tells them."""

    list_display = ["variant", "status", "created_at", "sent_at"]
    list_filter = ["status"]
    search_fields = ["variant__sku", "variant__product__name"]
    list_select_related = ["variant__product"]
    fields = ["variant", "status", "created_at", "sent_at"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ExportJob)
class ExportJobAdmin(BrandScopedAdmin):
    """Exports run by a worker: an operator sees only the jobs they asked for (of their
    brands) and downloads a file only of their own job; the list refreshes while one runs."""

    list_display = [
        "id",
        "file_name",
        "brand",
        "status",
        "progress",
        "created_at",
        "download",
        "failure",
    ]
    list_filter = ["status"]
    fields = [
        "file_name",
        "brand",
        "kind",
        "status",
        "progress",
        "created_at",
        "finished_at",
        "failure",
    ]
    readonly_fields = fields
    change_list_template = "admin/catalog/exportjob/change_list.html"

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("brand").defer("content", "params")
        if not request.user.is_superuser:
            queryset = queryset.filter(user=request.user)
        return queryset

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="progress")
    def progress(self, obj: ExportJob) -> str:
        return f"{obj.rows_done} / {obj.rows_total} rows"

    @admin.display(description="file")
    def download(self, obj: ExportJob) -> str:
        if obj.status != ExportJobStatus.DONE:
            return "-"
        url = reverse("admin:catalog_exportjob_download", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, "Download")

    def get_urls(self):
        return [
            path(
                "<int:pk>/download/",
                self.admin_site.admin_view(self.download_view),
                name="catalog_exportjob_download",
            ),
            *super().get_urls(),
        ]

    def download_view(self, request, pk: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        job = get_object_or_404(
            self.get_queryset(request).defer(None), pk=pk, status=ExportJobStatus.DONE
        )
        response = HttpResponse(job.content, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{job.file_name}"'
        return response

    def changelist_view(self, request, extra_context=None):
        running = self.get_queryset(request).filter(
            status__in=[ExportJobStatus.QUEUED, ExportJobStatus.RUNNING]
        )
        extra_context = {**(extra_context or {}), "export_running": running.exists()}
        return super().changelist_view(request, extra_context)
