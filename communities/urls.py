from django.urls import path

from communities import views

app_name = "communities"
urlpatterns = [
    path("c/", views.directory, name="index"),
    path("c/<slug:slug>/", views.detail, name="detail"),
    path("c/<slug:slug>/join/", views.join, name="join"),
    path("c/<slug:slug>/mentions/", views.mention_suggestions, name="mention_suggestions"),
    path("c/<slug:slug>/leaderboard/", views.leaderboard_view, name="leaderboard"),
    path("c/<slug:slug>/leave/", views.leave, name="leave"),
    path("c/<slug:slug>/requests/<int:membership_id>/", views.decide, name="decide"),
    path("c/<slug:slug>/ban/<int:user_id>/", views.ban, name="ban"),
    path("c/<slug:slug>/posts/new/", views.post_new, name="post_new"),
    path("c/<slug:slug>/posts/<int:pk>/", views.post_detail, name="post"),
    path("c/<slug:slug>/posts/<int:pk>/image/", views.post_image, name="post_image"),
    path("c/<slug:slug>/posts/<int:pk>/like/", views.post_like, name="post_like"),
    path("c/<slug:slug>/posts/<int:pk>/delete/", views.post_remove, name="post_delete"),
    path("c/<slug:slug>/posts/<int:pk>/pin/", views.post_pin, name="post_pin"),
    path("c/<slug:slug>/posts/<int:pk>/vote/", views.vote, name="vote"),
    path("c/<slug:slug>/posts/<int:pk>/edit/", views.post_edit, name="post_edit"),
    path("c/<slug:slug>/posts/<int:pk>/report/", views.report, name="report"),
    path("c/<slug:slug>/moderation/", views.moderation, name="moderation"),
    path("c/<slug:slug>/ideas/", views.ideas, name="ideas"),
    path("c/<slug:slug>/ideas/<int:pk>/upvote/", views.idea_upvote, name="idea_upvote"),
    path("c/<slug:slug>/ideas/<int:pk>/status/", views.idea_status, name="idea_status"),
    path("c/<slug:slug>/invites/", views.invite_new, name="invite_new"),
    path("c/invite/<str:token>/", views.invite, name="invite"),
    path("u/<str:handle>/", views.member, name="member"),
    path(
        "c/<slug:slug>/posts/<int:pk>/comments/<int:comment_id>/delete/",
        views.comment_remove,
        name="comment_delete",
    ),
]
