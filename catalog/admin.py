from django.contrib import admin, messages
from import_export.admin import ImportExportModelAdmin
from import_export.forms import ImportForm

from accounts.admin_access import SuperuserOnlyAdminMixin
from catalog.admin_resources import ProductResource, VariantResource, import_file_problem
from catalog.admin_scoping import BrandScopedAdmin, BrandScopedInline
from catalog.forms import VariantAdminForm
from catalog.models import (
    Brand,
    Category,
    Product,
    ProductImage,
    ProductSpecification,
    ProductStatus,
    Variant,
)
from catalog.services import (
    brand_save,
    category_save,
    product_refresh_summary,
    product_save,
    product_set_status,
)
from catalog.tasks import product_image_make_thumbnails
from uploads.forms import VerifiedImagesModelForm


class BrandAdminForm(VerifiedImagesModelForm):
    image_max_sides = {"logo": 512}


@admin.register(Brand)
class BrandAdmin(BrandScopedAdmin):
    """Operators edit their own brands' name, story and logo; only superusers add or delete
    brands and choose who operates them."""

    list_display = ["name", "slug", "created_at"]
    search_fields = ["name"]
    filter_horizontal = ["operators"]
    form = BrandAdminForm  # the logo is verified and re-encoded by the form

    def get_prepopulated_fields(self, request, obj=None):
        return {"slug": ["name"]} if request.user.is_superuser else {}

    def get_readonly_fields(self, request, obj=None):
        return [] if request.user.is_superuser else ["operators", "slug"]

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def save_model(self, request, obj, form, change):
        brand_save(brand=obj)


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


class CatalogImportForm(ImportForm):
    """A file whose header is wrong (another separator, missing columns) gets one message
    here, before any row is read."""

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
        upload.seek(0)
        problem = import_file_problem(upload.read(), resource.required_columns)
        upload.seek(0)
        if problem:
            self.add_error("import_file", problem)
        return cleaned


@admin.register(Product)
class ProductAdmin(ImportExportModelAdmin, BrandScopedAdmin):
    resource_classes = [ProductResource]
    import_form_class = CatalogImportForm
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
    actions = ["make_active", "make_archived"]
    readonly_fields = ["price_min", "price_max", "in_stock", "rating_average", "rating_count"]
    fields = ["brand", "name", "slug", "category", "status", "description", *readonly_fields]

    def save_model(self, request, obj, form, change):
        product_save(product=obj)

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
                variant_form.save_variant()
            for removed in formset.deleted_objects:
                removed.delete()
            product_refresh_summary(product_id=form.instance.pk)
        else:
            formset.save()

    @admin.action(description="Activate (show on the site)", permissions=["change"])
    def make_active(self, request, queryset):
        count = product_set_status(
            product_ids=queryset.values_list("pk", flat=True), status=ProductStatus.ACTIVE
        )
        self.message_user(request, f"{count} product(s) activated.", messages.SUCCESS)

    @admin.action(description="Archive (hide from the site)", permissions=["change"])
    def make_archived(self, request, queryset):
        count = product_set_status(
            product_ids=queryset.values_list("pk", flat=True), status=ProductStatus.ARCHIVED
        )
        self.message_user(request, f"{count} product(s) archived.", messages.SUCCESS)


@admin.register(Variant)
class VariantAdmin(ImportExportModelAdmin, BrandScopedAdmin):
    """Stock and price edits across products, and variant CSV import/export."""

    resource_classes = [VariantResource]
    import_form_class = CatalogImportForm
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

    def get_changelist_form(self, request, **kwargs):
        # The list edits too carry what each cell showed, so an unchanged stock is not written.
        return super().get_changelist_form(request, form=VariantAdminForm, **kwargs)

    def save_model(self, request, obj, form, change):
        form.save_variant()
