"""CSV import and export of products and variants (django-import-export), scoped to the
operator's brands.

Scoping: every lookup (the row's own product or variant, and the brand or product it names)
searches only the operator's brands, so another brand's slug or SKU answers exactly as one
that does not exist.

Errors: every bad value is a ValidationError naming its column, so the admin lists it under
the row's number; nothing reaches the page as a traceback, a constraint name or a
`decimal.ConversionSyntax`. A file whose header is wrong is refused before any row is read
(`import_file_problem`).
"""

from __future__ import annotations

import csv
import io
import json
import logging
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db.models import QuerySet
from import_export import fields, resources, widgets

from catalog.exports import FORMULA_STARTS
from catalog.models import Brand, Category, Product, ProductStatus, Variant
from catalog.services import (
    VARIANT_FIELDS,
    product_refresh_search,
    product_refresh_summary,
    variant_save,
)
from markup.markdown import markdown_render

logger = logging.getLogger(__name__)


def _scoped(queryset: QuerySet, user) -> QuerySet:
    """Rows of brands `user` operates (all for a superuser, or with no user: a script)."""
    if user is None or user.is_superuser:
        return queryset
    lookup = queryset.model.brand_lookup
    return queryset.filter(**{f"{lookup}__operators" if lookup else "operators": user}).distinct()


class ScopedForeignKeyWidget(widgets.ForeignKeyWidget):
    """Looks the related row up among the operator's brands; an unknown value and another
    brand's are the same "not found" message."""

    def __init__(self, model, field: str, *, label: str) -> None:
        super().__init__(model, field=field)
        self.label = label
        self.user = None

    def get_queryset(self, value, row, *args, **kwargs):
        queryset = self.model.objects.all()
        return _scoped(queryset, self.user) if hasattr(self.model, "brand_lookup") else queryset

    def clean(self, value, row=None, **kwargs):
        try:
            return super().clean(value, row, **kwargs)
        except ObjectDoesNotExist as exc:
            raise ValueError(f"No {self.label} {value!r} found.") from exc


class WholeNumberWidget(widgets.IntegerWidget):
    """A count: "1.5" is an error, not 1."""

    def clean(self, value, row=None, **kwargs):
        if self.is_empty(value):
            return None
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation as exc:
            raise ValueError(f"Enter a whole number (not {value!r}).") from exc
        if not number.is_finite() or number != number.to_integral_value():
            raise ValueError(f"Enter a whole number (not {value!r}).")
        return int(number)


class MoneyWidget(widgets.DecimalWidget):
    def clean(self, value, row=None, **kwargs):
        if self.is_empty(value):
            return None
        try:
            amount = Decimal(str(value).strip())
        except InvalidOperation as exc:
            raise ValueError(f"Enter an amount such as 12.50 (not {value!r}).") from exc
        if not amount.is_finite() or amount.as_tuple().exponent < -2:
            raise ValueError(f"Enter an amount such as 12.50 (not {value!r}).")
        return amount


class YesNoWidget(widgets.BooleanWidget):
    TRUE_VALUES = ["1", "true", "yes", "y", True, 1]
    FALSE_VALUES = ["0", "false", "no", "n", False, 0]

    def clean(self, value, row=None, **kwargs):
        if value is None or value == "":
            return None
        if isinstance(value, str):
            value = value.strip().lower()
        if value in self.TRUE_VALUES:
            return True
        if value in self.FALSE_VALUES:
            return False
        raise ValueError(f"Enter 1 or 0 (yes or no), not {value!r}.")


class OptionsWidget(widgets.JSONWidget):
    def clean(self, value, row=None, **kwargs):
        if value is None or (isinstance(value, str) and not value.strip()):
            return {}
        try:
            options = json.loads(value) if isinstance(value, str) else value
        except ValueError as exc:
            raise ValueError('Enter options as JSON, e.g. {"colour": "Red"}.') from exc
        return {} if options is None else options


class _ScopedResource(resources.ModelResource):
    """What both resources share: the operator's scope, and messages instead of tracebacks."""

    required_columns: tuple[str, ...] = ()

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.user = None

    def before_import(self, dataset, **kwargs):
        self.user = kwargs.get("user")
        for field in self.fields.values():
            if isinstance(field.widget, ScopedForeignKeyWidget):
                field.widget.user = self.user

    def get_queryset(self):
        # The instance loader finds the row's own object here: only in the operator's brands.
        return _scoped(super().get_queryset(), self.user)

    def import_row(self, row, instance_loader, **kwargs):
        # Our exports guard a cell that a spreadsheet would run as a formula with a leading
        # apostrophe (catalog.exports.csv_safe): the file imports as it was exported.
        for column, value in row.items():
            if isinstance(value, str) and value[:1] == "'" and value[1:2] in FORMULA_STARTS:
                row[column] = value[1:]
        result = super().import_row(row, instance_loader, **kwargs)
        if result.errors:
            # An unexpected failure (a race with another write, a database error): a message
            # for the operator; the traceback goes to the log, never to the page.
            error = result.errors[0]
            logger.error("import row failed: %s", error.error, exc_info=error.error)
            result.errors = []
            result.import_type = result.IMPORT_TYPE_INVALID
            result.validation_error = ValidationError(
                "This row could not be saved (it may clash with another row). "
                "Check it and import it again."
            )
        return result


def header_problem(headers: list[str], required: tuple[str, ...]) -> str | None:
    """One clear message for a file whose columns are wrong, else None."""
    names = [str(h or "").strip() for h in headers]
    if len(names) == 1 and any(sep in names[0] for sep in ";\t|"):
        return (
            "The file's columns must be separated by commas (this one uses another separator, "
            f"such as a semicolon). Expected the columns: {', '.join(required)}."
        )
    missing = [name for name in required if name not in names]
    if missing:
        return (
            f"The file lacks the column(s) {', '.join(missing)}. "
            f"Its first line must name the columns: {', '.join(required)}."
        )
    return None


def import_file_problem(data: bytes | str, required: tuple[str, ...]) -> str | None:
    """Check a CSV upload's header before the import reads its rows."""
    text = data.decode("utf-8-sig", errors="replace") if isinstance(data, bytes) else data
    first = next(csv.reader(io.StringIO(text.splitlines()[0] if text.strip() else "")), [])
    if not first:
        return "The file is empty."
    problem = header_problem(first, required)
    if problem:
        return problem
    reader = csv.reader(io.StringIO(text))
    try:
        for _ in reader:
            pass
    except csv.Error:  # a cell over csv's field limit (128 KiB), or broken quoting
        return (
            f"Row {reader.line_num}: a cell is too long (over 128 KiB) or its quotes are not "
            "closed. Fix that row and upload the file again."
        )
    return None


class ProductResource(_ScopedResource):
    required_columns = ("slug", "name", "brand", "category")

    brand = fields.Field(
        attribute="brand",
        column_name="brand",
        widget=ScopedForeignKeyWidget(Brand, field="slug", label="brand"),
    )
    category = fields.Field(
        attribute="category",
        column_name="category",
        widget=ScopedForeignKeyWidget(Category, field="path", label="category"),
    )

    class Meta:
        model = Product
        import_id_fields = ["slug"]
        fields = ["slug", "name", "brand", "category", "status", "description"]
        export_order = fields
        skip_unchanged = True
        clean_model_instances = True

    def before_import_row(self, row, **kwargs):
        status = row.get("status")
        if status and status not in ProductStatus.values:
            raise ValidationError(
                {"status": f"Choose one of {', '.join(ProductStatus.values)} (not {status!r})."}
            )

    def before_save_instance(self, instance, row, **kwargs):
        instance.description_html = markdown_render(instance.description)

    def after_save_instance(self, instance, row, **kwargs):
        if not kwargs.get("dry_run"):
            product_refresh_search(product_ids=[instance.pk])
            product_refresh_summary(product_id=instance.pk)


def _values(variant: Variant) -> dict[str, object]:
    return {
        name: getattr(variant, Variant._meta.get_field(name).attname) for name in VARIANT_FIELDS
    }


class VariantResource(_ScopedResource):
    required_columns = ("sku", "product")

    product = fields.Field(
        attribute="product",
        column_name="product",
        widget=ScopedForeignKeyWidget(Product, field="slug", label="product"),
    )
    options = fields.Field(attribute="options", column_name="options", widget=OptionsWidget())
    price = fields.Field(attribute="price", column_name="price", widget=MoneyWidget())
    compare_at_price = fields.Field(
        attribute="compare_at_price", column_name="compare_at_price", widget=MoneyWidget()
    )
    stock = fields.Field(attribute="stock", column_name="stock", widget=WholeNumberWidget())
    weight_grams = fields.Field(
        attribute="weight_grams", column_name="weight_grams", widget=WholeNumberWidget()
    )
    track_inventory = fields.Field(
        attribute="track_inventory", column_name="track_inventory", widget=YesNoWidget()
    )
    is_active = fields.Field(attribute="is_active", column_name="is_active", widget=YesNoWidget())

    class Meta:
        model = Variant
        import_id_fields = ["sku"]
        fields = [
            "sku",
            "product",
            "options",
            "price",
            "compare_at_price",
            "stock",
            "track_inventory",
            "weight_grams",
            "is_active",
        ]
        export_order = fields
        skip_unchanged = True
        # variant_save validates (full_clean) before it writes, and its ValidationError is the
        # row's error like any other: validating here too doubled the time of a large file.
        clean_model_instances = False

    def import_instance(self, instance, row, **kwargs):
        # What the row found in the database, to write back only the columns it changes.
        instance._loaded = _values(instance)
        super().import_instance(instance, row, **kwargs)

    def do_instance_save(self, instance, is_create):
        """Through the service, naming the changed fields: a sale between loading and saving
        keeps its stock unless the file sets the stock (a count; leave the column out of a
        price-only file)."""
        if is_create:
            variant_save(variant=instance)
            return
        loaded, now = getattr(instance, "_loaded", {}), _values(instance)
        # With the operator as the actor: each price or stock change is audited, as in the
        # admin's forms (the import's own entry has the counts).
        variant_save(
            variant=instance,
            fields=[n for n in now if now[n] != loaded.get(n)],
            actor=self.user,
        )

    def after_save_instance(self, instance, row, **kwargs):
        if not kwargs.get("dry_run"):
            product_refresh_summary(product_id=instance.product_id)
