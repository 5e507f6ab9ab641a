from django.contrib import admin

from catalog.admin_scoping import BrandScopedAdmin, BrandScopedInline
from communities.models import Community, Membership, Post
from markup.markdown import markdown_render


class MembershipInline(BrandScopedInline, admin.TabularInline):
    model = Membership
    extra = 0
    fields = ["user", "role", "status", "joined_at"]
    readonly_fields = ["user", "joined_at"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Community)
class CommunityAdmin(BrandScopedAdmin):
    """Brand fan clubs for their brand's operators; standalone circles for superusers."""

    list_display = ["name", "kind", "brand", "visibility", "member_count", "created_at"]
    list_filter = ["kind", "visibility"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["member_count"]
    inlines = [MembershipInline]

    def save_model(self, request, obj, form, change):
        obj.description_html = markdown_render(obj.description)
        obj.rules_html = markdown_render(obj.rules)
        super().save_model(request, obj, form, change)


@admin.register(Post)
class PostAdmin(BrandScopedAdmin):
    list_display = [
        "title",
        "community",
        "author",
        "kind",
        "is_pinned",
        "hidden_at",
        "deleted_at",
        "created_at",
    ]
    list_filter = ["kind", "is_pinned"]
    search_fields = ["title", "author__email"]
    list_select_related = ["community", "author"]
    readonly_fields = [
        "community",
        "author",
        "title",
        "body",
        "kind",
        "image",
        "created_at",
        "like_count",
        "comment_count",
        "deleted_at",
    ]
    fields = [*readonly_fields, "is_pinned", "hidden_at"]

    def has_add_permission(self, request):
        return False
