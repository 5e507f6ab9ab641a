from django.contrib import admin, messages

from catalog.admin_scoping import (
    BrandScopedAdmin,
    BrandScopedInline,
    MembersAsTextMixin,
    related_as_text,
)
from reviews.models import Review, ReviewReport
from reviews.services import review_set_hidden


class ReviewReportInline(MembersAsTextMixin, BrandScopedInline, admin.TabularInline):
    model = ReviewReport
    member_fields = ("reporter",)
    reporter_text = related_as_text("reporter", "reporter")
    extra = 0
    can_delete = False
    readonly_fields = ["reporter", "reason", "created_at", "resolved_at"]

    def has_add_permission(self, request, obj=None):
        return False


class ReportedFilter(admin.SimpleListFilter):
    title = "reports"
    parameter_name = "reported"

    def lookups(self, request, model_admin):
        return [("yes", "Reported"), ("no", "Not reported")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(report_count__gt=0)
        if self.value() == "no":
            return queryset.filter(report_count=0)
        return queryset


@admin.register(Review)
class ReviewAdmin(MembersAsTextMixin, BrandScopedAdmin):
    """Moderation of the brand's product reviews: hide or restore; the text stays the
    author's."""

    list_display = [
        "product",
        "user",
        "rating",
        "title",
        "is_hidden",
        "report_count",
        "verified_purchase",
        "created_at",
    ]
    list_filter = ["is_hidden", ReportedFilter, "rating"]
    list_select_related = ["product", "user"]
    search_fields = ["title", "body", "product__name", "user__email"]
    readonly_fields = [
        "product",
        "user",
        "rating",
        "title",
        "body",
        "verified_purchase",
        "report_count",
        "created_at",
        "is_hidden",
    ]
    inlines = [ReviewReportInline]
    actions = ["hide", "restore"]
    member_fields = ("user",)
    user_text = related_as_text("user", "user")

    def has_add_permission(self, request):
        return False

    @admin.action(description="Hide from the product page", permissions=["change"])
    def hide(self, request, queryset):
        count = review_set_hidden(
            review_ids=list(queryset.values_list("pk", flat=True)), hidden=True
        )
        self.message_user(request, f"{count} review(s) hidden.", messages.SUCCESS)

    @admin.action(description="Restore on the product page", permissions=["change"])
    def restore(self, request, queryset):
        count = review_set_hidden(
            review_ids=list(queryset.values_list("pk", flat=True)), hidden=False
        )
        self.message_user(request, f"{count} review(s) restored.", messages.SUCCESS)
