from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms.models import BaseInlineFormSet
from django.utils.html import format_html

from audit.services import audited_save
from catalog.admin_scoping import (
    BrandScopedAdmin,
    BrandScopedInline,
    MembersAsTextMixin,
    related_as_text,
)
from catalog.search_words import search_words_add
from communities.feed_cache import community_changed, feed_changed
from communities.models import Community, Idea, Membership, MembershipStatus, Post, Report, Role
from communities.moderation import report_resolve, report_resolve_as_operator
from communities.services import (
    check_owners_remain,
    membership_remove_as_operator,
    membership_update_as_operator,
)
from markup.markdown import markdown_render
from uploads.images import image_verify_and_reencode


class MembershipFormSet(BaseInlineFormSet):
    """Refuses a save that would leave the community without an active owner, before
    anything is written; the writes then go through the services (CommunityAdmin.save_formset),
    which check the same rule again under a row lock."""

    def clean(self) -> None:
        super().clean()
        if any(form.errors for form in self.forms):
            return
        leaving, joining = set(), set()
        for form in self.initial_forms:
            stays = not self._should_delete_form(form) and (
                form.cleaned_data.get("role"),
                form.cleaned_data.get("status"),
            ) == (Role.OWNER, MembershipStatus.ACTIVE)
            (joining if stays else leaving).add(form.instance.pk)
        check_owners_remain(
            community_id=self.instance.pk, leaving=leaving, joining=joining
        )  # its ValidationError shows above the rows


class MembershipInline(MembersAsTextMixin, BrandScopedInline, admin.TabularInline):
    model = Membership
    member_fields = ("user",)
    user_text = related_as_text("user", "user")
    formset = MembershipFormSet
    extra = 0
    fields = ["user", "role", "status", "joined_at"]
    readonly_fields = ["user", "joined_at"]

    def has_add_permission(self, request, obj=None):
        return False


class CommunityForm(forms.ModelForm):
    """The cover is checked with Pillow and re-encoded, like every upload."""

    class Meta:
        model = Community
        fields = ["brand", "kind", "name", "slug", "description", "rules", "cover", "visibility"]

    def clean_cover(self):
        cover = self.cleaned_data.get("cover")
        if cover and "cover" in self.changed_data:
            try:
                return image_verify_and_reencode(cover, max_side=2400).content
            except ValidationError as exc:
                raise forms.ValidationError(exc.messages) from exc
        return cover


@admin.register(Community)
class CommunityAdmin(BrandScopedAdmin):
    form = CommunityForm
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
        # Who may see and join it (its visibility) is access: audited with its name and place.
        audited_save(
            obj=obj,
            actor=request.user,
            brand_id=obj.brand_id,
            fields=("brand_id", "kind", "name", "slug", "visibility"),
        )
        search_words_add(texts=[obj.name, obj.description])  # found by a mistyped search
        community_changed(community_id=obj.pk, slug_or_visibility=True)  # its cached page

    def save_formset(self, request, form, formset, change):
        if formset.model is not Membership:
            return super().save_formset(request, form, formset, change)
        # Through the services, new owners first: promoting B and demoting A in one save
        # never passes through "no owner".
        changes = [
            f for f in formset.initial_forms if f.has_changed() or formset._should_delete_form(f)
        ]
        changes.sort(key=lambda f: f.cleaned_data.get("role") != Role.OWNER)
        # What the admin's history message reads (formset.save() is not called).
        formset.new_objects = []
        formset.changed_objects = [
            (f.instance, f.changed_data) for f in changes if not formset._should_delete_form(f)
        ]
        formset.deleted_objects = [f.instance for f in changes if formset._should_delete_form(f)]
        for membership_form in changes:
            membership = membership_form.instance
            try:
                if formset._should_delete_form(membership_form):
                    membership_remove_as_operator(membership=membership, actor=request.user)
                else:
                    membership_update_as_operator(
                        membership=membership,
                        role=membership_form.cleaned_data["role"],
                        status=membership_form.cleaned_data["status"],
                        actor=request.user,
                    )
            except ValidationError as exc:  # a concurrent change since the form was checked
                self.message_user(request, " ".join(exc.messages), messages.ERROR)


@admin.register(Post)
class PostAdmin(MembersAsTextMixin, BrandScopedAdmin):
    member_fields = ("author",)
    author_text = related_as_text("author", "author")
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
        "image_link",
        "created_at",
        "like_count",
        "comment_count",
        "deleted_at",
    ]
    fields = [*readonly_fields, "is_pinned", "hidden_at"]

    def has_add_permission(self, request):
        return False

    @admin.display(description="Image")
    def image_link(self, obj: Post) -> str:
        # The permission-checked address: the file has no public URL (communities.media).
        return format_html('<a href="{}">image</a>', obj.image_url) if obj.image else "-"

    def save_model(self, request, obj, form, change):
        # Hiding, restoring or pinning a post is a moderation decision: audited.
        audited_save(
            obj=obj,
            actor=request.user,
            brand_id=obj.community.brand_id,
            fields=("hidden_at", "is_pinned"),
        )
        feed_changed(community_id=obj.community_id)  # a pin or a hide shows to visitors


@admin.register(Report)
class ReportAdmin(MembersAsTextMixin, BrandScopedAdmin):
    """Open reports across the operator's brand communities; deciding goes through the
    actions (which hide or restore the reported post or comment)."""

    list_display = [
        "community",
        "post",
        "comment",
        "reporter",
        "reason",
        "created_at",
        "resolved_at",
        "resolution",
    ]
    list_filter = [("resolved_at", admin.EmptyFieldListFilter)]
    list_select_related = ["community", "post", "comment", "reporter"]
    readonly_fields = [f.name for f in Report._meta.fields if f.name != "id"]
    fields = readonly_fields
    member_fields = ("reporter",)
    reporter_text = related_as_text("reporter", "reporter")
    actions = ["hide_reported", "restore_reported"]

    def has_add_permission(self, request):
        return False

    def _resolve(self, request, queryset, hide: bool) -> None:
        for report in queryset.filter(resolved_at__isnull=True):
            try:
                report_resolve(report=report, moderator=request.user, hide=hide)
            except PermissionDenied:
                # Operators moderate their brand's communities without being members.
                report_resolve_as_operator(report=report, hide=hide, actor=request.user)
        self.message_user(request, "Done.", messages.SUCCESS)

    @admin.action(description="Hide the reported content", permissions=["change"])
    def hide_reported(self, request, queryset):
        self._resolve(request, queryset, hide=True)

    @admin.action(description="Keep the content (dismiss the reports)", permissions=["change"])
    def restore_reported(self, request, queryset):
        self._resolve(request, queryset, hide=False)


@admin.register(Idea)
class IdeaAdmin(MembersAsTextMixin, BrandScopedAdmin):
    member_fields = ("author",)
    author_text = related_as_text("author", "author")
    list_display = ["title", "community", "author", "status", "vote_count", "created_at"]
    list_filter = ["status"]
    search_fields = ["title", "description"]
    list_select_related = ["community", "author"]
    readonly_fields = ["community", "author", "title", "description", "vote_count", "created_at"]
    fields = [*readonly_fields, "status", "response"]

    def has_add_permission(self, request):
        return False
