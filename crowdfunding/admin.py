"""The operators' side of campaigns: set a campaign up (story, goal, window, reward tiers,
stretch goals), launch it, watch it fill, close or cancel it, post updates, export the
fulfilment list, check reward tickets in, read pledges and the event log. Scoped to the
operator's brands by catalog.admin_scoping.

Every state change goes through crowdfunding.services (the actions); money, counters and
statuses are never edited by hand. The goal, the window and the tiers change only while a
campaign is a draft."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from audit.admin_edits import AuditedInlinesAdmin
from catalog.admin_exports import export_selection
from catalog.admin_scoping import (
    BrandScopedAdmin,
    BrandScopedInline,
    MembersAsTextMixin,
    as_text_for_operators,
    related_as_text,
)
from crowdfunding.models import (
    CAMPAIGN_MACHINE,
    Campaign,
    CampaignComment,
    CampaignEvent,
    CampaignStatus,
    CampaignUpdate,
    CommentReport,
    Pledge,
    RewardTicket,
    RewardTier,
    StretchGoal,
)
from crowdfunding.selectors import campaign_progress
from crowdfunding.services import (
    campaign_cancel,
    campaign_close,
    campaign_fulfil,
    campaign_launch,
    campaign_save,
    comment_hide,
    ticket_check_in,
    update_publish,
)
from formatting.formats import money, when
from uploads.forms import VerifiedImagesModelForm

SETUP_FIELDS = ("goal", "funding_model", "launch_at", "deadline")


def _editable(campaign: Campaign | None) -> bool:
    return campaign is None or campaign.status == CampaignStatus.DRAFT


def _errors(exc: Exception) -> str:
    return " ".join(getattr(exc, "messages", None) or [str(exc)])


class CampaignForm(VerifiedImagesModelForm):
    video_url = forms.URLField(
        required=False,
        assume_scheme="https",
        label=_("Video link"),
        help_text=_("Optional: a YouTube or Vimeo link to the campaign video."),
    )

    class Meta:
        model = Campaign
        fields = [
            "brand",
            "community",
            "title",
            "slug",
            "summary",
            "story",
            "cover",
            "video_url",
            *SETUP_FIELDS,
        ]

    def _value(self, name: str):
        if name in self.fields:
            return self.cleaned_data.get(name)
        return getattr(self.instance, name, None)

    def clean(self):
        cleaned = super().clean()
        launch, deadline = self._value("launch_at"), self._value("deadline")
        if launch and deadline and deadline <= launch and "deadline" in self.fields:
            self.add_error("deadline", _("The deadline must be after the launch."))
        brand, community = self._value("brand"), self._value("community")
        if brand and community and community.brand_id != brand.pk and "community" in self.fields:
            self.add_error("community", _("Choose a community of the campaign's brand."))
        video = self._value("video_url") or ""
        if video and not video.startswith("https://"):
            self.add_error("video_url", _("Use an https:// link (YouTube or Vimeo)."))
        return cleaned


class TierFormSet(BaseInlineFormSet):
    def clean(self):
        super().clean()
        brand_id = self.instance.brand_id
        for form in self.forms:
            data = getattr(form, "cleaned_data", None) or {}
            variant, kind = data.get("variant"), data.get("kind")
            if variant is not None and brand_id and variant.product.brand_id != brand_id:
                form.add_error("variant", _("Choose a product of the campaign's brand."))
            if variant is not None and kind and kind != "shipped":
                form.add_error("variant", _("Only shipped goods are a product variant."))
            limit = data.get("limit")
            if limit is not None and form.instance.pk and limit < form.instance.claimed:
                form.add_error(
                    "limit",
                    _("%(n)s backers already hold this reward.") % {"n": form.instance.claimed},
                )


class _SetupInline(BrandScopedInline, admin.TabularInline):
    extra = 0

    def get_extra(self, request, obj=None, **kwargs):
        return 2 if obj is None else 0

    def has_add_permission(self, request, obj=None):
        return _editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return _editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return _editable(obj) and super().has_delete_permission(request, obj)


class RewardTierInline(_SetupInline):
    model = RewardTier
    formset = TierFormSet
    fields = [
        "title",
        "description",
        "min_amount",
        "limit",
        "claimed",
        "kind",
        "variant",
        "estimated_delivery",
        "position",
    ]
    readonly_fields = ["claimed"]
    autocomplete_fields = ["variant"]


class StretchGoalInline(_SetupInline):
    model = StretchGoal
    fields = ["amount", "title", "description"]

    def has_add_permission(self, request, obj=None):  # may be added while live
        return super(_SetupInline, self).has_add_permission(request, obj)


class CampaignEventInline(BrandScopedInline, admin.TabularInline):
    """The campaign's own state changes (each pledge's are on its page)."""

    model = CampaignEvent
    fk_name = "campaign"
    extra = 0
    can_delete = False
    fields = ["created_at", "actor", "from_status", "to_status", "note"]
    readonly_fields = fields
    actor_text = related_as_text("actor", "actor")
    verbose_name_plural = _("events")

    def get_fields(self, request, obj=None):
        return as_text_for_operators(request, self.fields, ["actor"])

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).filter(pledge__isnull=True).select_related("actor")


@admin.register(Campaign)
class CampaignAdmin(AuditedInlinesAdmin, BrandScopedAdmin):
    form = CampaignForm
    audited_inlines = {
        RewardTier: ("title", "min_amount", "limit", "kind", "variant_id"),
        StretchGoal: ("amount", "title"),
    }
    list_display = ["title", "brand", "status", "progress", "backer_count", "deadline"]
    list_filter = ["status", "funding_model"]
    list_select_related = ["brand"]
    search_fields = ["title", "slug"]
    prepopulated_fields = {"slug": ["title"]}
    actions = ["launch", "close_now", "cancel", "mark_fulfilled", "fulfilment_csv"]
    readonly_fields = [
        "status",
        "progress",
        "pledged_total",
        "backer_count",
        "currency",
        "closed_at",
        "settled_at",
        "created_at",
        "actions_now",
        "fulfilment_link",
    ]

    def get_inlines(self, request, obj):
        if obj is None:
            return [RewardTierInline, StretchGoalInline]
        return [RewardTierInline, StretchGoalInline, CampaignEventInline]

    def get_fieldsets(self, request, obj=None):
        fieldsets = [
            (None, {"fields": ["brand", "community", "title", "slug", "summary"]}),
            (_("Story"), {"fields": ["story", "cover", "video_url"]}),
            (_("Funding"), {"fields": list(SETUP_FIELDS)}),
        ]
        if obj is not None:
            fieldsets.append((_("Progress"), {"fields": self.readonly_fields}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        fixed = [] if _editable(obj) else ["brand", *SETUP_FIELDS]
        return [*fixed, *self.readonly_fields]

    @admin.display(description=_("progress"))
    def progress(self, obj: Campaign) -> str:
        p = campaign_progress(campaign=obj)
        return f"{money(p.raised, p.currency)} / {money(p.goal, p.currency)} ({p.percent}%)"

    @admin.display(description=_("actions open now"))
    def actions_now(self, obj: Campaign) -> str:
        """What the state machine allows from here (the list's actions do them)."""
        labels = [action.label for action in CAMPAIGN_MACHINE.allowed_actions(obj)]
        return ", ".join(labels) or "–"

    @admin.display(description=_("fulfilment"))
    def fulfilment_link(self, obj: Campaign) -> str:
        """A button that posts the page's form (its CSRF token) to the export: a worker
        writes the file, offered on the exports page."""
        if not obj.pk:
            return "-"
        url = reverse("admin:crowdfunding_campaign_fulfilment", args=[obj.pk])
        return format_html(
            '<button type="submit" class="button" formaction="{}" formmethod="post" '
            "formnovalidate>{}</button>",
            url,
            _("Export the fulfilment list (CSV)"),
        )

    def save_model(self, request, obj, form, change):
        campaign_save(campaign=obj)

    def get_urls(self):
        return [
            path(
                "<int:pk>/fulfilment.csv",
                self.admin_site.admin_view(self.fulfilment_view),
                name="crowdfunding_campaign_fulfilment",
            ),
            *super().get_urls(),
        ]

    def fulfilment_view(self, request, pk: int):
        """POST: an export job of the campaign's brand, then the exports page. A GET only
        leads back to the campaign: it starts nothing."""
        campaign = self.get_queryset(request).filter(pk=pk).first()
        if campaign is None or not self.has_view_permission(request, campaign):
            return redirect("admin:crowdfunding_campaign_changelist")
        if request.method != "POST":
            return redirect("admin:crowdfunding_campaign_change", campaign.pk)
        return export_selection(
            self,
            request,
            rows=[(campaign.pk, campaign.brand_id)],
            kind="crowdfunding.fulfilment",
            file_name=f"{campaign.slug}-fulfilment.csv",
        )

    def _each(self, request, queryset, operation, done: str):
        for campaign in queryset:
            try:
                operation(campaign)
            except ValidationError as exc:
                self.message_user(request, f"{campaign}: {_errors(exc)}", messages.ERROR)
            else:
                self.message_user(request, f"{campaign}: {done}", messages.SUCCESS)

    @admin.action(description=_("Launch"), permissions=["change"])
    def launch(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda c: campaign_launch(campaign=c, actor=request.user),
            _("launched"),
        )

    @admin.action(description=_("Close now (settle at once)"), permissions=["change"])
    def close_now(self, request, queryset):
        def close(campaign):
            if not campaign_close(campaign=campaign, actor=request.user, force=True):
                raise ValidationError(_("Only a live campaign can be closed."))

        self._each(request, queryset, close, _("closed"))

    @admin.action(description=_("Cancel campaign (nobody is charged)"), permissions=["change"])
    def cancel(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda c: campaign_cancel(campaign=c, actor=request.user, reason="by the brand"),
            _("cancelled"),
        )

    @admin.action(description=_("Mark fulfilled (rewards delivered)"), permissions=["change"])
    def mark_fulfilled(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda c: campaign_fulfil(campaign=c, actor=request.user),
            _("fulfilled"),
        )

    @admin.action(description=_("Export the fulfilment list (CSV)"), permissions=["view"])
    def fulfilment_csv(self, request, queryset):
        """A worker writes the file (one export job a brand of the selection); the operator
        follows its progress on the exports page and downloads it there."""
        return export_selection(
            self,
            request,
            rows=queryset.values_list("pk", "brand_id").order_by("pk"),
            kind="crowdfunding.fulfilment",
            file_name="fulfilment.csv",
        )


class PledgeEventInline(CampaignEventInline):
    fk_name = "pledge"

    def get_queryset(self, request):
        return super(CampaignEventInline, self).get_queryset(request).select_related("actor")


@admin.register(Pledge)
class PledgeAdmin(MembersAsTextMixin, BrandScopedAdmin):
    list_display = ["pk", "campaign", "user_email", "tier", "amount", "status", "created_at"]
    list_filter = ["status"]
    list_select_related = ["campaign", "tier", "user"]
    search_fields = ["user__email", "=id"]
    member_fields = ("user",)
    user_text = related_as_text("user", "backer")
    fields = [
        "campaign",
        "user",
        "tier",
        "amount",
        "status",
        "amount_charged",
        "failure_message",
        "grace_until",
        "order",
        "ship_name",
        "ship_line1",
        "ship_line2",
        "ship_city",
        "ship_postal_code",
        "ship_country",
        "ship_phone",
        "created_at",
    ]
    readonly_fields = fields
    inlines = [PledgeEventInline]

    @admin.display(description=_("backer"), ordering="user__email")
    def user_email(self, obj: Pledge) -> str:
        return obj.user.email

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class CheckInForm(forms.Form):
    code = forms.CharField(label=_("Ticket code"), max_length=32)


@admin.register(RewardTicket)
class RewardTicketAdmin(BrandScopedAdmin):
    list_display = ["code", "campaign", "backer", "reward", "checked_in_at"]
    list_select_related = ["pledge__campaign", "pledge__user", "pledge__tier"]
    search_fields = ["=code", "pledge__user__email"]
    list_filter = ["checked_in_at"]
    fields = ["code", "campaign", "backer", "reward", "checked_in_at", "created_at"]
    readonly_fields = fields
    actions = ["check_in"]
    change_list_template = "admin/crowdfunding/rewardticket/change_list.html"

    @admin.display(description=_("campaign"))
    def campaign(self, obj: RewardTicket) -> str:
        return obj.pledge.campaign.title

    @admin.display(description=_("backer"))
    def backer(self, obj: RewardTicket) -> str:
        return obj.pledge.user.email

    @admin.display(description=_("reward"))
    def reward(self, obj: RewardTicket) -> str:
        return obj.pledge.tier.title if obj.pledge.tier else ""

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [
            path(
                "check-in/",
                self.admin_site.admin_view(self.check_in_view),
                name="crowdfunding_rewardticket_check_in",
            ),
            *super().get_urls(),
        ]

    def check_in_view(self, request):
        if not self.has_change_permission(request):
            return redirect("admin:index")
        form = CheckInForm(request.POST or None)
        result = None
        if request.method == "POST" and form.is_valid():
            try:
                result = ticket_check_in(code=form.cleaned_data["code"], actor=request.user)
            except ValidationError as exc:
                form.add_error("code", exc)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Check a ticket in"),
            "form": form,
            "result": result,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/crowdfunding/rewardticket/check_in.html", context)

    @admin.action(description=_("Check in"), permissions=["change"])
    def check_in(self, request, queryset):
        for ticket in queryset:
            try:
                done = ticket_check_in(code=ticket.code, actor=request.user)
            except ValidationError as exc:
                self.message_user(request, _errors(exc), messages.ERROR)
                continue
            if done.first_time:
                self.message_user(request, f"{ticket.code}: checked in", messages.SUCCESS)
            else:
                self.message_user(
                    request,
                    f"{ticket.code}: already checked in at {when(done.ticket.checked_in_at)}",
                    messages.WARNING,
                )


class CampaignUpdateForm(forms.ModelForm):
    class Meta:
        model = CampaignUpdate
        fields = ["campaign", "title", "body", "audience", "tiers"]

    def clean(self):
        cleaned = super().clean()
        campaign, tiers = cleaned.get("campaign"), cleaned.get("tiers")
        if campaign and tiers and any(t.campaign_id != campaign.pk for t in tiers):
            self.add_error("tiers", _("Choose rewards of this campaign."))
        if tiers and cleaned.get("audience") == "public":
            self.add_error("tiers", _("Rewards narrow a backers-only update; this one is public."))
        return cleaned


@admin.register(CampaignUpdate)
class CampaignUpdateAdmin(BrandScopedAdmin):
    form = CampaignUpdateForm
    list_display = ["title", "campaign", "audience", "created_at"]
    list_filter = ["audience"]
    list_select_related = ["campaign"]
    search_fields = ["title", "campaign__title"]
    filter_horizontal = ["tiers"]

    def save_model(self, request, obj, form, change):
        self._saved = update_publish(
            campaign=form.cleaned_data["campaign"],
            author=request.user,
            title=form.cleaned_data["title"],
            body=form.cleaned_data["body"],
            audience=form.cleaned_data["audience"],
            tier_ids=[tier.pk for tier in form.cleaned_data["tiers"]],
            update=obj,
        )

    def save_related(self, request, form, formsets, change):
        # The tiers were set by update_publish, before it chose whom to tell.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)


class CommentReportInline(MembersAsTextMixin, BrandScopedInline, admin.TabularInline):
    model = CommentReport
    extra = 0
    can_delete = False
    fields = ["reporter", "reason", "created_at", "resolved_at"]
    readonly_fields = fields
    member_fields = ("reporter",)
    reporter_text = related_as_text("reporter", "reporter")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(CampaignComment)
class CampaignCommentAdmin(MembersAsTextMixin, BrandScopedAdmin):
    list_display = ["pk", "campaign", "author_name", "created_at", "hidden_at", "report_count"]
    list_filter = ["hidden_at"]
    list_select_related = ["campaign", "author"]
    search_fields = ["body", "campaign__title"]
    fields = ["campaign", "author", "body", "created_at", "hidden_at"]
    readonly_fields = fields
    member_fields = ("author",)
    author_text = related_as_text("author", "author")
    inlines = [CommentReportInline]
    actions = ["hide", "unhide"]

    @admin.display(description=_("author"))
    def author_name(self, obj: CampaignComment) -> str:
        return obj.author.public_name

    @admin.display(description=_("reports"))
    def report_count(self, obj: CampaignComment) -> int:
        return obj.reports.count()

    def has_add_permission(self, request):
        return False

    @admin.action(description=_("Hide"), permissions=["change"])
    def hide(self, request, queryset):
        for comment in queryset:
            comment_hide(comment=comment, hidden=True)

    @admin.action(description=_("Show again"), permissions=["change"])
    def unhide(self, request, queryset):
        for comment in queryset:
            comment_hide(comment=comment, hidden=False)


@admin.register(CampaignEvent)
class CampaignEventAdmin(MembersAsTextMixin, BrandScopedAdmin):
    """The whole event log, searchable."""

    list_display = ["created_at", "campaign", "pledge", "from_status", "to_status", "note"]
    list_filter = ["to_status"]
    list_select_related = ["campaign"]
    search_fields = ["campaign__title", "note", "=pledge__id"]
    fields = ["created_at", "campaign", "pledge", "actor", "from_status", "to_status", "note"]
    readonly_fields = fields
    member_fields = ("actor",)
    actor_text = related_as_text("actor", "actor")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
