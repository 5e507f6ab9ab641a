from django.contrib import admin

from storefront.info_pages import page_save
from storefront.models import Page


@admin.register(Page)
class PageAdmin(admin.ModelAdmin):
    """Help, contact, shipping, terms, privacy: the superuser's (operators run brands, not
    the site), so there is no brand to scope by and only superusers get the permission."""

    list_display = ["title", "slug", "updated_at"]
    fields = ["slug", "title", "summary", "body"]

    def has_module_permission(self, request) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_add_permission(self, request) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def save_model(self, request, obj: Page, form, change: bool) -> None:
        page_save(page=obj)
