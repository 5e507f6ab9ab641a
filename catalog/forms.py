import json
from decimal import Decimal

from django import forms
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from catalog.models import Variant
from catalog.selectors import SORTS
from catalog.services import VARIANT_FIELDS, variant_save


class ProductFilterForm(forms.Form):
    """The query string of /products/. Bad values give a message, never a 500."""

    q = forms.CharField(required=False, max_length=200, label="Search")
    brand = forms.SlugField(required=False)
    category = forms.CharField(required=False, max_length=255)
    price_min = forms.DecimalField(
        required=False, min_value=Decimal("0"), max_digits=10, decimal_places=2, label="Min price"
    )
    price_max = forms.DecimalField(
        required=False, min_value=Decimal("0"), max_digits=10, decimal_places=2, label="Max price"
    )
    in_stock = forms.BooleanField(required=False, label="In stock only")
    sort = forms.ChoiceField(required=False, choices=list(SORTS.items()))

    def clean(self):
        cleaned = super().clean()
        low, high = cleaned.get("price_min"), cleaned.get("price_max")
        if low is not None and high is not None and low > high:
            self.add_error("price_max", "The maximum price is below the minimum.")
        return cleaned


class OptionsWidget(forms.Widget):
    """The variant's options as rows of name and value ("colour" / "Black") instead of raw
    JSON. Posts as `<name>_name_<i>` / `<name>_value_<i>`; a post that sends `<name>`
    itself (JSON, as scripts and older forms do) is taken as it is. The same name twice
    posts a list of pairs, which the form refuses with a message."""

    template_name = "admin/catalog/options_widget.html"
    blank_rows = 2
    max_rows = 20

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        pairs: list[tuple[str, str]] = []
        try:
            loaded = json.loads(value) if isinstance(value, str) else value
        except ValueError:
            loaded = None
        if isinstance(loaded, dict):
            pairs = [(str(k), str(v)) for k, v in loaded.items()]
        elif isinstance(loaded, list):
            pairs = [(str(p[0]), str(p[1])) for p in loaded if isinstance(p, list) and len(p) == 2]
        pairs += [("", "")] * self.blank_rows
        context["widget"]["pairs"] = list(enumerate(pairs))
        return context

    def value_from_datadict(self, data, files, name):
        if name in data:
            return data[name]
        pairs = []
        for index in range(self.max_rows):
            key = f"{name}_name_{index}"
            if key not in data:
                break
            option, value = data.get(key, "").strip(), data.get(f"{name}_value_{index}", "").strip()
            if option or value:
                pairs.append([option, value])
        names = [option for option, _ in pairs]
        self.refused_rows = len(set(names)) != len(names) or any(not o or not v for o, v in pairs)
        if self.refused_rows:
            return json.dumps(pairs)  # refused in clean_options, and shown again as typed
        return json.dumps(dict(pairs))

    def value_omitted_from_data(self, data, files, name):
        return name not in data and f"{name}_name_0" not in data

    def _render(self, template_name, context, renderer=None):
        # The project's templates (templates/admin/...), not only the form renderer's own.
        return mark_safe(render_to_string(template_name, context))  # noqa: S308 - autoescaped


class VariantAdminForm(forms.ModelForm):
    """The admin's variant rows (change page, product inline, list edits). Every field also
    renders the value it showed (a hidden `initial-` input), so `changed_data` names what
    the operator changed, not what changed in the database since their page loaded (a sale
    moving `stock`), and `seen()` tells the stock they adjusted (catalog.services.variant_save).
    """

    class Meta:
        model = Variant
        fields = [
            "product",
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

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.show_hidden_initial = True
        if "options" in self.fields:  # not on the list's editable cells
            self.fields["options"].widget = OptionsWidget()

    def clean_options(self):
        # JSON `null` is "no options" (the column is not nullable).
        options = self.cleaned_data.get("options")
        if getattr(self.fields["options"].widget, "refused_rows", False):
            raise forms.ValidationError(
                "Give each option a name and a value, and each name once (colour, size...)."
            )
        return {} if options is None else options

    def seen(self, name: str):
        """The value the form showed for `name` when it loaded; None if it was not sent."""
        bound = self[name]
        raw = bound.field.hidden_widget().value_from_datadict(
            self.data, self.files, bound.html_initial_name
        )
        try:
            return bound.field.to_python(raw)
        except forms.ValidationError:
            return None

    def save_variant(self, *, actor=None) -> Variant:
        """Create the variant, or write only the fields the operator changed (`actor`: who,
        for the audit log)."""
        variant = self.instance
        if variant._state.adding:
            return variant_save(variant=variant)
        fields = [name for name in self.changed_data if name in VARIANT_FIELDS]
        return variant_save(
            variant=variant,
            fields=fields,
            stock_seen=self.seen("stock") if "stock" in fields else None,
            actor=actor,
        )
